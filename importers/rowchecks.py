"""Vectorised row validation that keeps the first failing check of each row.

Checks run column-wise over the whole frame (no Python loop over rows), in the order of
priority the importer chooses; a row that failed once is not checked again, so it gets exactly
one reason. Rejections go to the report in file order, which is what makes ``--strict`` stop at
the first bad row of the file rather than at the first failing check.
"""

from __future__ import annotations

import pandas as pd

from .report import ImportReport
from .sources import ROW


class RowChecks:
    """The verdicts on the rows of ``frame``: open (not failed yet) or failed with a reason."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.reason = pd.Series(None, index=frame.index, dtype=object)
        self.field = pd.Series(None, index=frame.index, dtype=object)
        self.value = pd.Series(None, index=frame.index, dtype=object)

    @property
    def open(self) -> pd.Series:
        """True for rows that have not failed any check so far."""
        return self.reason.isna()

    def fail(self, mask, field: str, reason: str | pd.Series, value: pd.Series | None = None) -> int:
        """Fail the open rows where ``mask`` holds; return how many failed now.

        ``reason`` is one text or a per-row series; the reported value is ``frame[field]``
        unless ``value`` gives it.
        """
        mask = pd.Series(mask, index=self.frame.index).eq(True) & self.open  # NA counts as False
        if not mask.any():
            return 0
        reasons = reason if isinstance(reason, pd.Series) else pd.Series(reason, index=self.frame.index)
        if value is None:
            value = self.frame[field] if field in self.frame.columns else pd.Series("", index=self.frame.index)
        self.reason[mask] = reasons[mask]
        self.field[mask] = field
        self.value[mask] = value[mask].astype(str)
        return int(mask.sum())

    def reject_into(self, report: ImportReport) -> pd.DataFrame:
        """Report every failed row in file order; return the rows that passed every check."""
        bad = ~self.open
        failed = pd.DataFrame(
            {"row": self.frame[ROW], "field": self.field, "value": self.value, "reason": self.reason}
        ).loc[bad]
        for row, field, value, reason in failed.sort_values("row").itertuples(index=False):
            report.reject(row, field, value, reason)
        return self.frame.loc[self.open]

    def fail_by(self, field: str, problem) -> int:
        """Fail the open rows for which ``problem(value of field)`` returns a reason (not None)."""
        reasons = self.frame.loc[self.open, field].map(problem).reindex(self.frame.index)
        return self.fail(reasons.notna(), field, reasons)
