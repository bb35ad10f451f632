"""The shared shape of the ``import_<kind>`` management commands.

Exit status (:data:`importers.report.EXIT_CODES`): 0 when the import did (or, dry, would)
commit; 1 when the file or an option cannot be used; 3 when more rows were rejected than
``--max-rejected`` accepts (default none) and 4 when a grid import would break the topology
(``--accept-topology`` takes it anyway). In every failing case nothing was written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .base import Importer, ImportFailed, run_import
from .kinds import IMPORTERS
from .progress import progress_for
from .report import RejectionLimit

#: How the command tells a person to accept what stopped the import, by failure kind.
_ACCEPT_HINTS = {
    "rejected": "fix the rows listed in the report, or accept them with --max-rejected N (rows) or N%",
    "topology": "fix the grids, or commit them anyway with --accept-topology",
}


def rejection_limit(text: str) -> RejectionLimit:
    """``--max-rejected``: a number of rows or a percentage (argparse type)."""
    try:
        return RejectionLimit.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


class ImportCommand(BaseCommand):
    """``import_<kind> PATH [--commit] [--strict] [--report CSV] [--max-rejected N|N%]``; dry-run
    unless ``--commit``."""

    kind = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="file to import")
        parser.add_argument("--commit", action="store_true", help="write to the database (default: dry run)")
        parser.add_argument("--strict", action="store_true", help="stop at the first bad row; write nothing")
        parser.add_argument("--report", type=Path, help="where to write the CSV of rejected rows")
        parser.add_argument(
            "--max-rejected",
            type=rejection_limit,
            default=RejectionLimit(),
            help="rejected rows accepted before the import fails (exit status 3, nothing written): "
            "a number of rows or a percentage such as 2%%; default 0",
        )
        self.add_importer_arguments(parser)

    def add_importer_arguments(self, parser: CommandParser) -> None:
        """Options of this importer beyond the common ones."""

    def build_importer(self, options: dict) -> Importer:
        return IMPORTERS[self.kind]()

    def handle(self, *args, **options) -> None:
        try:
            importer = self.build_importer(options)
        except ValueError as error:
            raise CommandError(str(error)) from error
        # Bars only on a terminal; a log (make run, cron, a pipe) gets one line per stage.
        stream = getattr(self.stderr, "_out", self.stderr)
        importer.reporter = progress_for(stream, verbosity=options["verbosity"], label=options["path"].name)
        try:
            report = run_import(
                importer,
                options["path"],
                commit=options["commit"],
                strict=options["strict"],
                report_path=options["report"],
                max_rejected=options["max_rejected"],
            )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        if report.failure is not None:
            mode = "failed, nothing written" if options["commit"] else "dry run, would fail"
        elif options["commit"]:
            mode = "committed"
        else:
            mode = "dry run (nothing written; pass --commit to write)"
        counts = ", ".join(f"{name} {value:,}" for name, value in report.counts.items())
        self.stdout.write(f"{report.source}: {mode}: {counts}")
        for note in report.notes:
            self.stdout.write(f"  {note}")
        for problem in report.topology[:10]:
            self.stdout.write(f"  {problem.describe()}")
        if len(report.topology) > 10:
            self.stdout.write(f"  … and {len(report.topology) - 10:,} more topology problems")
        for rejection in report.rejections[:10]:
            self.stdout.write(f"  {report.describe(rejection)}")
        if len(report.rejections) > 10:
            self.stdout.write(f"  … and {len(report.rejections) - 10:,} more")
        if report.failure is not None:
            failure = report.failure
            raise CommandError(
                f"{report.source}: {failure.message}; {_ACCEPT_HINTS[failure.kind]}", returncode=failure.exit_code
            )


class TableImportCommand(ImportCommand):
    """Registry tables: a text encoding and the CRS of lon/lat columns."""

    def add_importer_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--encoding", help="text encoding of a CSV (default: UTF-8, then GBK/GB18030)")
        parser.add_argument("--crs", default="wgs84", help="CRS of lon/lat: wgs84, cgcs2000, gcj02 or bd09")

    def build_importer(self, options: dict) -> Importer:
        return IMPORTERS[self.kind](encoding=options["encoding"], crs=options["crs"])
