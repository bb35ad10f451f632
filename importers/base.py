"""The importer contract, the registry of importers, and the run that wraps every import.

An importer reads a file into a frame (through :mod:`importers.sources`), validates it row by
row into a report, and writes the clean rows through the services in :mod:`layers.services`.
:func:`run_import` makes every import atomic and dry-run by default: the write happens inside a
transaction that is rolled back unless ``commit`` is set, so a dry run reports exactly what a
real one would do, database-level checks included.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pandas as pd
from django.conf import settings
from django.db import transaction
from tqdm import tqdm

from layers.audit import audit_record

from .report import ImportReport, StrictStop
from .sources import SourceError


class ImportFailed(Exception):
    """The import cannot go on; nothing was written. The message names the file (and row)."""


class Importer:
    """Base class of every importer; subclasses set :attr:`kind` and implement the three steps.

    Parameters of the importer (options other than the path) are checked in ``__init__``,
    before any data is read.
    """

    #: Registry name, also the ``import_<kind>`` command name.
    kind: ClassVar[str] = ""
    #: Whether to draw progress bars (commands turn them off at verbosity 0).
    show_progress: bool = True
    #: Personal fields masked in the rejection report: field name → masking function.
    masked_fields: ClassVar[dict] = {}

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

    @contextmanager
    def progress(self, total: int, description: str):
        bar = tqdm(
            total=total, desc=description, unit="row", file=sys.stderr, disable=not self.show_progress, leave=False
        )
        try:
            yield bar
        finally:
            bar.close()


REGISTRY: dict[str, type[Importer]] = {}


def register(importer: type[Importer]) -> type[Importer]:
    """Class decorator adding an importer to :data:`REGISTRY` under its ``kind``."""
    if not importer.kind or importer.kind in REGISTRY:
        raise ValueError(f"importer kind {importer.kind!r} is empty or registered twice")
    REGISTRY[importer.kind] = importer
    return importer


class _DryRun(Exception):
    pass


def run_import(
    importer: Importer, path: Path | str, *, commit: bool = False, strict: bool = False, report_path: Path | None = None
) -> ImportReport:
    """Read, validate and write one file atomically; write the rejection report if any row failed."""
    path = Path(path)
    report = ImportReport(source=path.name, strict=strict, masks=dict(importer.masked_fields))
    try:
        frame = importer.read(path)
        report.counts["rows"] = len(frame)
        clean = importer.validate(frame, report)
        try:
            with transaction.atomic():
                importer.write(clean, report)
                if not commit:
                    raise _DryRun
                # In the import's own transaction: the entry exists exactly when the rows do.
                audit_record(
                    action="import",
                    target=f"import:{importer.kind}",
                    detail={
                        "file": path.name,
                        "strict": strict,
                        "counts": {**report.counts, "rejected": report.rejected_rows},
                    },
                )
        except _DryRun:
            pass
    except StrictStop as stop:
        raise ImportFailed(f"{stop} (--strict: nothing was written)") from stop
    except SourceError as error:
        raise ImportFailed(f"{error}; nothing was written") from error
    report.counts["rejected"] = report.rejected_rows
    if report.rejections:
        target = report_path or report.default_path(settings.MINQING_REPORT_DIR, importer.kind)
        report.notes.append(f"rejected rows listed in {report.write_csv(target)}")
    return report
