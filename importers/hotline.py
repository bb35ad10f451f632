"""Importer of a 12345-hotline export (CSV or XLSX, Chinese headers) into events on channel
``hotline``.

Columns (Chinese export header → field): 工单编号 → ``external_id``, 来电时间 → ``reported_at``
(local time, Asia/Shanghai), 诉求内容 → ``description``, 事项分类 (or 诉求类别 when the export
has no 事项分类) → ``category``, 事发地址 → ``address``, 经度/纬度 → ``lon``/``lat`` (optional),
来电号码 → ``reporter_phone``, 联系人 → ``reporter_name``. The category may be our dotted code
(``hazard.fire``), a category's Chinese or English name (消防隐患), or the hotline's two-level
form ``安全隐患/消防隐患`` (also with ``-``, ``>`` or ``＞``), matched against the taxonomy in
the database, so a name edited in the admin is the name accepted.

Rows are checked in vectorised passes (:class:`~importers.rowchecks.RowChecks`), then each clean
row goes through :func:`layers.services.events.event_create`, which locates it (coordinates, else
the address, else the manual-location queue), dispatches it and clusters it, exactly as a live
report. That is a few queries per row: about 400 rows/s on the development machine, so a day of
a city's hotline (3,000 tickets) takes under 10 s. Re-importing a file changes nothing: tickets
already stored (same 工单编号 on the hotline channel) are counted as ``existing``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.utils import timezone

from layers.errors import InvalidInput
from layers.models import Category, Event
from layers.protection import personal
from layers.services.events import MAX_ADDRESS, MAX_DESCRIPTION, event_create

from .registry import TableImporter
from .report import ImportReport
from .rowchecks import RowChecks
from .sources import ROW, read_table, require_columns
from .validators import check_coordinates, in_wgs84, rename_aliases, require_values, unique_keys

CHANNEL = Event.Channel.HOTLINE

#: 来电时间 as hotline systems write it: 2025-03-01 08:15[:00], 2025/3/1 8:15, 2025年3月1日 8:15.
_WHEN = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
#: Separators of the two-level category form 安全隐患/消防隐患.
_LEVELS = re.compile(r"\s*[/>＞\-－]\s*")
#: A phone as callers give it: mobile or landline with area code, digits only after cleaning.
_PHONE = r"\+?\d{7,13}"


def category_lookup() -> dict[str, str]:
    """Accepted spellings → category code: codes, Chinese and English names (family names
    stand for the bare family, "subtype not yet known")."""
    lookup: dict[str, str] = {}
    for code, name, name_en in Category.objects.values_list("code", "name", "name_en"):
        lookup[code] = code
        lookup.setdefault(name, code)
        if name_en:
            lookup.setdefault(name_en.lower(), code)
    return lookup


def _category_code(value: str, lookup: dict[str, str]) -> str | None:
    """The code ``value`` names, or None. In the two-level form the most specific known part
    wins (安全隐患/消防隐患 → hazard.fire; 安全隐患/其他 → hazard)."""
    for part in reversed([value, *_LEVELS.split(value)]):
        code = lookup.get(part) or lookup.get(part.lower())
        if code:
            return code
    return None


def _reported_at(values: pd.Series) -> pd.Series:
    """Parsed 来电时间 as aware datetimes in the server's zone; NaT where unreadable."""
    parts = values.str.extract(f"^{_WHEN.pattern}$").fillna({3: "0", 4: "0", 5: "0"})
    frame = pd.DataFrame(
        {
            name: pd.to_numeric(parts[i], errors="coerce")
            for i, name in enumerate(("year", "month", "day", "hour", "minute", "second"))
        }
    )
    when = pd.to_datetime(frame, errors="coerce")
    return when.dt.tz_localize(settings.TIME_ZONE, ambiguous="NaT", nonexistent="NaT")


class HotlineImporter(TableImporter):
    kind = "hotline_events"
    masked_fields = {"reporter_phone": personal.mask_phone, "reporter_name": personal.mask_name}
    required = ("external_id", "reported_at", "description", "category")
    optional = ("address", "lon", "lat", "reporter_phone", "reporter_name")
    aliases = {
        "工单编号": "external_id",
        "工单号": "external_id",
        "来电时间": "reported_at",
        "诉求内容": "description",
        "事项分类": "category",
        "诉求类别": "category",
        "事发地址": "address",
        "经度": "lon",
        "纬度": "lat",
        "来电号码": "reporter_phone",
        "联系人": "reporter_name",
    }

    def read(self, path: Path) -> pd.DataFrame:
        frame = read_table(path, encoding=self.encoding)
        if "事项分类" in frame.columns:
            # 诉求类别 is then the kind of call (投诉, 求助, 咨询), not the subject.
            frame = frame.drop(columns=["诉求类别"], errors="ignore")
        frame = require_columns(path, rename_aliases(frame, self.aliases), self.required)
        for column in self.optional:
            if column not in frame.columns:
                frame[column] = ""
        return frame[[*self.required, *self.optional, ROW]]

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        lookup = category_lookup()
        frame = frame.assign(reporter_phone=frame["reporter_phone"].str.replace(r"[-\s]", "", regex=True))
        checks = RowChecks(frame)
        require_values(checks, "external_id", "reported_at", "description", "category")
        checks.fail(frame["external_id"].str.len() > 64, "external_id", "longer than 64 characters")
        unique_keys(checks, "external_id")
        when = _reported_at(frame["reported_at"])
        checks.fail(when.isna(), "reported_at", "not a date-time; expected YYYY-MM-DD HH:MM[:SS]")
        now = pd.Timestamp(timezone.now())
        checks.fail(when > now, "reported_at", "lies in the future")
        checks.fail(
            frame["description"].str.len() > MAX_DESCRIPTION, "description", f"longer than {MAX_DESCRIPTION} characters"
        )
        codes = frame["category"].map(lambda value: _category_code(value, lookup))
        example = "消防隐患, 安全隐患/消防隐患 or hazard.fire"
        checks.fail(codes.isna(), "category", f"unknown category; expected a category name or code such as {example}")
        checks.fail(frame["address"].str.len() > MAX_ADDRESS, "address", f"longer than {MAX_ADDRESS} characters")
        checks.fail(
            (frame["reporter_phone"] != "") & ~frame["reporter_phone"].str.fullmatch(_PHONE),
            "reporter_phone",
            "not a phone number",
        )
        checks.fail(frame["reporter_name"].str.len() > 50, "reporter_name", "longer than 50 characters")
        check_coordinates(checks, optional=True)
        clean = checks.reject_into(report)
        clean = clean.assign(category=codes[clean.index], reported_at=when[clean.index])
        return in_wgs84(clean, self.crs)

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        counts = dict.fromkeys(("created", "existing", "needs_location"), 0)
        with self.progress(len(frame), "hotline events") as bar:
            for row in frame.to_dict("records"):
                located = not pd.isna(row["lon"])
                try:
                    event, created = event_create(
                        channel=CHANNEL,
                        external_id=row["external_id"],
                        category_code=row["category"],
                        description=row["description"],
                        lon=float(row["lon"]) if located else None,
                        lat=float(row["lat"]) if located else None,
                        address=row["address"],
                        reported_at=row["reported_at"].to_pydatetime(),
                        reporter_name=row["reporter_name"],
                        reporter_phone=row["reporter_phone"],
                    )
                except InvalidInput as error:
                    # Checks the vectorised pass cannot make (the service's own rules).
                    report.reject(row[ROW], error.field, "", error.message)
                    continue
                finally:
                    bar.update(1)
                if not created:
                    counts["existing"] += 1
                    continue
                counts["created"] += 1
                counts["needs_location"] += event.needs_location
        report.counts.update(counts)
