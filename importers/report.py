"""What an import did: counts, and every rejected row with the field, value and reason."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .sources import ROW


class StrictStop(Exception):
    """Raised under ``--strict`` at the first rejected row; nothing is written."""


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
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return directory / f"{kind}-{Path(self.source).stem}-{stamp}-rejected.csv"
