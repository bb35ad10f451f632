"""What an import did: counts, and every rejected row with the field, value and reason."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.utils import timezone

from .sources import ROW


class StrictStop(Exception):
    """Raised under ``--strict`` at the first rejected row; nothing is written."""


@dataclass(frozen=True)
class RejectionLimit:
    """How many rejected rows a person accepts before an import counts as failed: a number of
    rows, or a percentage of the rows read. The default accepts none.

    >>> [RejectionLimit.parse(text).allows(rejected=3, rows=200) for text in ("0", "3", "2", "1.5%", "1%")]
    [False, True, False, True, False]
    >>> RejectionLimit.parse("2.5%").describe(), RejectionLimit.parse("40").describe()
    ('2.5% of the rows', '40 rows')
    """

    rows: int = 0
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> RejectionLimit:
        """``"25"`` (rows) or ``"2.5%"`` (of the rows read); ValueError names the expected form."""
        raw = "0" if text is None else str(text).strip()
        try:
            if raw.endswith("%"):
                percent = float(raw[:-1])
                if not 0 <= percent <= 100:
                    raise ValueError(raw)
                return cls(percent=percent)
            rows = int(raw)
            if rows < 0:
                raise ValueError(raw)
            return cls(rows=rows)
        except ValueError:
            raise ValueError(
                f"expected a number of rows (such as 25) or a percentage of the rows read (such as 2.5%), got {raw[:20]!r}"
            ) from None

    def allows(self, *, rejected: int, rows: int) -> bool:
        if self.percent is not None:
            return rejected * 100 <= self.percent * rows
        return rejected <= self.rows

    def describe(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}% of the rows"
        return f"{self.rows:,} row{'' if self.rows == 1 else 's'}"

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.rows)


@dataclass(frozen=True)
class Failure:
    """Why an import did not (or, in a dry run, would not) commit: ``exit_code`` is the status
    the command exits with (:data:`EXIT_CODES`), ``kind`` a machine word, ``message`` for people."""

    exit_code: int
    kind: str
    message: str


#: Exit status of the ``import_<kind>`` commands and the import worker's job, by outcome.
EXIT_CODES = {
    "ok": 0,
    # The file or the options cannot be used (also Django's status for a CommandError).
    "unusable": 1,
    # More rows rejected than the stated limit (--max-rejected); nothing was written.
    "rejected": 3,
    # A grid import would leave gaps, overlaps or grids outside their parent (--accept-topology).
    "topology": 4,
}


@dataclass(frozen=True)
class Rejection:
    row: int
    field: str
    value: str
    reason: str


@dataclass
class ImportReport:
    source: str
    strict: bool = False
    rejections: list[Rejection] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Personal fields whose rejected values are written masked (the report is a file anyone
    #: with shell access may read): field name → masking function.
    masks: dict = field(default_factory=dict)
    #: Set when the import did not (in a dry run: would not) commit; see :class:`Failure`.
    failure: Failure | None = None
    #: Whether the rows were written (a commit that no failure stopped).
    committed: bool = False
    #: Grid topology problems the import would leave (:class:`layers.selectors.topology.Problem`).
    topology: list = field(default_factory=list)
    #: Map preview of what the import touches: GeoJSON features (WGS84), when asked for.
    preview: list = field(default_factory=list)
    #: Where the rejection report was written, if any row was rejected.
    report_path: Path | None = None

    def fail(self, kind: str, message: str) -> None:
        """Mark the import failed; the first failure wins (it is the one to fix first)."""
        if self.failure is None:
            self.failure = Failure(EXIT_CODES[kind], kind, message)

    def reject(self, row: int, field_name: str, value: object, reason: str) -> None:
        text = "" if value is None else str(value)
        if text and field_name in self.masks:
            text = self.masks[field_name](text)
        rejection = Rejection(int(row), field_name, text, reason)
        self.rejections.append(rejection)
        if self.strict:
            raise StrictStop(self.describe(rejection))

    def reject_where(self, frame: pd.DataFrame, mask, field_name: str, reason: str) -> pd.DataFrame:
        """Reject the rows of ``frame`` where ``mask`` holds; return the remaining rows."""
        mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool)
        if mask.any():
            values = (
                frame.loc[mask, field_name] if field_name in frame.columns else pd.Series("", index=frame.index[mask])
            )
            for row, value in zip(frame.loc[mask, ROW], values, strict=True):
                self.reject(row, field_name, value, reason)
        return frame.loc[~mask]

    def reject_each(self, frame: pd.DataFrame, field_name: str, problem) -> pd.DataFrame:
        """Reject rows whose ``field_name`` value makes ``problem(value)`` return a reason."""
        reasons = frame[field_name].map(problem)
        bad = reasons.notna()
        for row, value, reason in zip(frame.loc[bad, ROW], frame.loc[bad, field_name], reasons[bad], strict=True):
            self.reject(row, field_name, value, reason)
        return frame.loc[~bad]

    def describe(self, rejection: Rejection) -> str:
        return f"{self.source}: row {rejection.row}, field {rejection.field} = {rejection.value!r}: {rejection.reason}"

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejections})

    def write_csv(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "field", "value", "reason"])
            for r in sorted(self.rejections, key=lambda r: (r.row, r.field)):
                writer.writerow([r.row, r.field, r.value, r.reason])
        return path

    def default_path(self, directory: Path, kind: str) -> Path:
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return directory / f"{kind}-{Path(self.source).stem}-{stamp}-rejected.csv"
