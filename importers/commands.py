"""The shared shape of the ``import_<kind>`` management commands."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .base import REGISTRY, Importer, ImportFailed, run_import


class ImportCommand(BaseCommand):
    """``import_<kind> PATH [--commit] [--strict] [--report CSV]``; dry-run unless ``--commit``."""

    kind = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="file to import")
        parser.add_argument("--commit", action="store_true", help="write to the database (default: dry run)")
        parser.add_argument("--strict", action="store_true", help="stop at the first bad row; write nothing")
        parser.add_argument("--report", type=Path, help="where to write the CSV of rejected rows")
        self.add_importer_arguments(parser)

    def add_importer_arguments(self, parser: CommandParser) -> None:
        """Options of this importer beyond the common ones."""

    def build_importer(self, options: dict) -> Importer:
        return REGISTRY[self.kind]()

    def handle(self, *args, **options) -> None:
        try:
            importer = self.build_importer(options)
        except ValueError as error:
            raise CommandError(str(error)) from error
        importer.show_progress = options["verbosity"] > 0
        try:
            report = run_import(
                importer,
                options["path"],
                commit=options["commit"],
                strict=options["strict"],
                report_path=options["report"],
            )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        mode = "committed" if options["commit"] else "dry run (nothing written; pass --commit to write)"
        counts = ", ".join(f"{name} {value:,}" for name, value in report.counts.items())
        self.stdout.write(f"{report.source}: {mode}: {counts}")
        for note in report.notes:
            self.stdout.write(f"  {note}")
        for rejection in report.rejections[:10]:
            self.stdout.write(f"  {report.describe(rejection)}")
        if len(report.rejections) > 10:
            self.stdout.write(f"  … and {len(report.rejections) - 10:,} more")


class TableImportCommand(ImportCommand):
    """Registry tables: a text encoding and the CRS of lon/lat columns."""

    def add_importer_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--encoding", help="text encoding of a CSV (default: UTF-8, then GBK/GB18030)")
        parser.add_argument("--crs", default="wgs84", help="CRS of lon/lat: wgs84, cgcs2000, gcj02 or bd09")

    def build_importer(self, options: dict) -> Importer:
        return REGISTRY[self.kind](encoding=options["encoding"], crs=options["crs"])
