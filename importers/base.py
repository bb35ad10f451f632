"""The importer contract, the registry of importers, and the run that wraps every import.

An importer reads a file into a frame (through :mod:`importers.sources`), validates it row by
row into a report, and writes the clean rows through the services in :mod:`layers.services`.
:func:`run_import` makes every import atomic and dry-run by default: the write happens inside a
transaction that is rolled back unless ``commit`` is set, so a dry run reports exactly what a
real one would do, database-level checks included.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
from django.conf import settings
from django.db import transaction

from layers.protection.audit import audit_record

from .progress import Counter, Progress
from .report import ImportReport, RejectionLimit, StrictStop
from .sources import SourceError


class ImportFailed(Exception):
    """The import cannot go on; nothing was written. The message names the file (and row)."""


@dataclass(frozen=True)
class Option:
    """One parameter of an importer as the import page offers it: the keyword of the
    importer's ``__init__``, its label (an English msgid), and its form. ``kind`` is ``choice``
    (one of ``choices``; ``""`` means the importer's default), ``text``, ``date`` (YYYY-MM-DD)
    or ``bool``."""

    name: str
    label: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    required: bool = False
    default: str = ""


class Importer:
    """Base class of every importer; subclasses set :attr:`kind` and implement the three steps.

    Parameters of the importer (options other than the path) are checked in ``__init__``,
    before any data is read.
    """

    #: Its key in :data:`importers.kinds.IMPORTERS`, also the ``import_<kind>`` command name.
    kind: ClassVar[str] = ""
    #: File name suffixes the importer reads (lower case, with the dot), for uploads.
    formats: ClassVar[tuple[str, ...]] = ()
    #: The parameters the import page offers (a subset of ``__init__``'s keywords).
    options: ClassVar[tuple[Option, ...]] = ()
    #: Whether the importer checks grid topology and takes ``accept_topology`` in ``__init__``.
    checks_topology: ClassVar[bool] = False
    #: Personal fields masked in the rejection report: field name → masking function.
    masked_fields: ClassVar[dict] = {}
    #: Where stages are reported (commands set bars or lines; the worker adds its job row).
    reporter: Progress = Progress()

    def read(self, path: Path) -> pd.DataFrame:
        """Open ``path`` with :mod:`importers.sources` and return its rows; raise SourceError."""
        raise NotImplementedError

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        """Reject bad rows into ``report`` and return the rows fit to write."""
        raise NotImplementedError

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        """Write the rows through services, inside the transaction :func:`run_import` holds.

        Store counts in ``report.counts``; rows refused by database-level checks (a parent code
        that does not exist, say) are rejected into ``report`` as well.
        """
        raise NotImplementedError

    def preview(self, frame: pd.DataFrame, report: ImportReport) -> list[dict]:
        """GeoJSON features (WGS84) showing what the import touches, for the import page's map;
        called inside the transaction after :meth:`write`. Default: none."""
        return []

    def progress(self, total: int | None, description: str) -> AbstractContextManager[Counter]:
        """One stage of the import, reported by :attr:`reporter`; ``update(n)`` counts rows."""
        return self.reporter.stage(description, total)


class _RolledBack(Exception):
    pass


def run_import(
    importer: Importer,
    path: Path | str,
    *,
    commit: bool = False,
    strict: bool = False,
    report_path: Path | None = None,
    max_rejected: RejectionLimit | None = None,
    source_name: str | None = None,
    preview: bool = False,
    audit_detail: dict | None = None,
    before_commit: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Read, validate and write one file atomically; write the rejection report if any row failed.

    Nothing is written unless ``commit`` is set and the import did not fail: more rejected rows
    than ``max_rejected`` (``None``: no limit; the commands and the import page pass the limit
    their user stated, 0 by default) or a refusal by the importer (grid topology) sets
    ``report.failure`` and rolls everything back, in a dry run as in a commit, so a dry run
    answers exactly what a commit would do. ``source_name`` names the file in the report (an
    upload is stored under a name of our own); ``preview`` collects the importer's map
    preview; ``before_commit`` runs inside the transaction just before it commits (the import
    worker marks its job done there, so the job says committed exactly when the rows are).
    """
    path = Path(path)
    report = ImportReport(source=source_name or path.name, strict=strict, masks=dict(importer.masked_fields))
    try:
        with importer.progress(None, "read") as stage:
            frame = importer.read(path)
            stage.update(len(frame))
        report.counts["rows"] = len(frame)
        with importer.progress(len(frame), "check") as stage:
            clean = importer.validate(frame, report)
            stage.update(len(frame))
        try:
            with transaction.atomic():
                importer.write(clean, report)
                _check_rejections(report, max_rejected, commit=commit)
                if preview:
                    report.preview = importer.preview(clean, report)
                if not commit or report.failure is not None:
                    raise _RolledBack
                # In the import's own transaction: the entry exists exactly when the rows do.
                audit_record(
                    action="import",
                    target=f"import:{importer.kind}",
                    detail={
                        "file": report.source,
                        "strict": strict,
                        "max_rejected": None if max_rejected is None else str(max_rejected),
                        "counts": {**report.counts, "rejected": report.rejected_rows},
                        **(audit_detail or {}),
                    },
                )
                report.committed = True
                report.counts["rejected"] = report.rejected_rows
                if before_commit is not None:
                    before_commit(report)
        except _RolledBack:
            pass
    except StrictStop as stop:
        raise ImportFailed(f"{stop} (--strict: nothing was written)") from stop
    except SourceError as error:
        # Named as the person knows the file (an upload is stored under a name of our own).
        raise ImportFailed(f"{report.source}: {error.message}; nothing was written") from error
    report.counts["rejected"] = report.rejected_rows
    if report.rejections:
        target = report_path or report.default_path(settings.MINQING_REPORT_DIR, importer.kind)
        report.report_path = report.write_csv(target)
        report.notes.append(f"rejected rows listed in {report.report_path}")
    return report


def _check_rejections(report: ImportReport, limit: RejectionLimit | None, *, commit: bool) -> None:
    """Fail the import when more rows were rejected than ``limit`` accepts (after the write,
    which may refuse rows too)."""
    rejected, rows = report.rejected_rows, report.counts.get("rows", 0)
    if limit is None or limit.allows(rejected=rejected, rows=rows):
        return
    outcome = "nothing was written" if commit else "a commit would write nothing"
    report.fail(
        "rejected",
        f"{rejected:,} of {rows:,} rows rejected, more than the {limit.describe()} accepted; {outcome}",
    )
