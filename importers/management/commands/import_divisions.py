"""``import_divisions PATH [--encoding NAME] [--commit] [--strict] [--report CSV]``."""

from __future__ import annotations

from django.core.management.base import CommandParser

from importers.commands import ImportCommand
from importers.divisions import DivisionsImporter


class Command(ImportCommand):
    help = "Import the city › district › street › community hierarchy from a CSV/XLSX of 12-digit codes."
    kind = DivisionsImporter.kind

    def add_importer_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--encoding", help="encoding of a CSV file (default: try UTF-8, then GB18030/GBK)")

    def build_importer(self, options: dict) -> DivisionsImporter:
        return DivisionsImporter(encoding=options["encoding"])
