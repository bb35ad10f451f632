"""The administrative hierarchy from a table of 12-digit statistical codes (统计用区划代码).

Input: CSV (UTF-8 or GBK/GB18030) or XLSX with columns ``code, name, level, parent_code``
(others, such as ``area_code`` and ``street_code``, are ignored), one row per city, district,
street or community, parents in the file or already in the database.
"""

from __future__ import annotations

import operator
from functools import reduce
from pathlib import Path

import pandas as pd
from django.utils.translation import gettext_noop

from layers.models import Region
from layers.services.areas import regions_upsert

from . import preview, sources
from .base import Importer, Option
from .report import ImportReport
from .rowchecks import RowChecks

COLUMNS = ("code", "name", "level", "parent_code")
#: Encodings the import page offers ("": UTF-8, then GBK/GB18030, detected).
ENCODING_CHOICES = ("", "utf-8", "gbk", "gb18030")
LEVELS = tuple(Region.Level.values)

#: How a code of each level looks, as told to the user when level and code disagree.
CODE_SHAPES = {
    "city": "4 digits + 00000000",
    "district": "6 digits + 000000",
    "street": "9 digits + 000, digits 7-9 not 000",
    "community": "12 digits, the last 3 not 000 and digits 7-9 not 000",
}


def code_level(code: str) -> str | None:
    """The level a 12-digit statistical code belongs to, or None if it fits none.

    >>> [code_level(c) for c in ("620100000000", "620102000000", "620102001000", "620102001002")]
    ['city', 'district', 'street', 'community']
    >>> [code_level(c) for c in ("620000000000", "620102000001", "62010200100")]
    [None, None, None]
    """
    if len(code) != 12 or not code.isdigit():
        return None
    if code[4:] == "00000000":
        return "city" if code[2:4] != "00" else None
    if code[6:] == "000000":
        return "district" if code[4:6] != "00" else None
    if code[6:9] == "000":
        return None
    return "street" if code[9:] == "000" else "community"


def _join(*parts: str | pd.Series) -> pd.Series:
    """Row-wise concatenation of texts and string columns (a vectorised f-string)."""
    return reduce(operator.add, parts)


class DivisionsImporter(Importer):
    """``import_divisions PATH [--encoding NAME]``: create or update Region rows by code."""

    kind = "divisions"
    formats = preview.TABLE_FORMATS
    options = (Option("encoding", gettext_noop("Text encoding of a CSV"), kind="choice", choices=ENCODING_CHOICES),)

    def __init__(self, *, encoding: str | None = None) -> None:
        sources.check_encoding(encoding)
        self.encoding = encoding

    def read(self, path: Path) -> pd.DataFrame:
        return sources.read_table(path, encoding=self.encoding, required=COLUMNS)

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        checks = RowChecks(frame)
        code, level = frame["code"], frame["level"]

        checks.fail(~code.str.fullmatch(r"\d{12}"), "code", "code must be exactly 12 digits")
        first_row = frame.groupby("code")[sources.ROW].transform("first")
        checks.fail(code.duplicated(), "code", "duplicate code, first seen on row " + first_row.astype(str))
        checks.fail(~level.isin(LEVELS), "level", f"level must be one of {', '.join(LEVELS)}")
        shape = code.map(code_level)
        described = shape.map(lambda s: f"a {s} code" if s else "no valid code of any level")
        shape_of_level = level.map(CODE_SHAPES).fillna("")
        mismatch = _join(
            "does not match code ", code, ": a ", level, " code is ", shape_of_level, "; this one is ", described
        )
        checks.fail(shape != level, "level", mismatch)
        checks.fail(frame["name"] == "", "name", "name is empty")

        self._check_parents(frame, checks)
        return checks.reject_into(report)

    def _check_parents(self, frame: pd.DataFrame, checks: RowChecks) -> None:
        """Parents must exist (in the file or the database), be of the level above, and be kept."""
        code, level, parent = frame["code"], frame["level"], frame["parent_code"]
        needs_parent = level != Region.Level.CITY
        expected = level.map(Region.PARENT_LEVEL)

        # The first row of each code speaks for it (later ones are duplicates).
        in_file = frame.drop_duplicates("code").set_index("code")["level"]
        outside = sorted(set(parent[needs_parent]) - set(in_file.index) - {""})
        in_db = pd.Series(dict(Region.objects.filter(code__in=outside).values_list("code", "level")), dtype=object)
        parent_level = parent.map(in_file).fillna(parent.map(in_db))

        checks.fail(needs_parent & (parent == ""), "parent_code", "parent_code is empty")
        checks.fail(
            needs_parent & parent_level.isna(),
            "parent_code",
            "parent " + parent + " is neither in the file nor in the database",
        )
        checks.fail(
            needs_parent & parent.isin(in_file.index) & ~parent.isin(code[checks.open]),
            "parent_code",
            "parent " + parent + " was rejected",
        )
        checks.fail(
            needs_parent & (parent_level != expected),
            "parent_code",
            _join(
                "parent ",
                parent,
                " is a ",
                parent_level.fillna(""),
                "; a ",
                level,
                " belongs to a ",
                expected.fillna(""),
            ),
        )
        # A rejected row takes its whole subtree with it (street → communities): repeat until
        # no new row fails; the depth of the hierarchy bounds the rounds.
        while True:
            rejected = set(code[~checks.open]) - set(code[checks.open])
            if not checks.fail(
                needs_parent & parent.isin(rejected), "parent_code", "parent " + parent + " was rejected"
            ):
                break

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        report.counts.update(regions_upsert(frame=frame))
