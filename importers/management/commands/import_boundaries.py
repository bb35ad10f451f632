"""``import_boundaries PATH --level LEVEL [options] [--commit] [--strict] [--report CSV]``."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandParser

from importers.boundaries import BoundariesImporter
from importers.commands import ImportCommand


class Command(ImportCommand):
    help = "Set region boundaries from GeoJSON, Shapefile or GeoPackage polygons keyed by region code."
    kind = BoundariesImporter.kind

    def add_importer_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--level", required=True, help="level of the regions: city, district, street or community")
        parser.add_argument(
            "--code-field", default="adcode", help="field with the 6-digit adcode or 12-digit code (default adcode)"
        )
        parser.add_argument(
            "--name-field",
            default="name",
            help="field with the name, used in notes; ignored when absent (default name)",
        )
        parser.add_argument("--source-crs", help="CRS of a file that declares none, e.g. EPSG:4490")
        parser.add_argument("--convert", help="undo a Chinese web-map offset: gcj02 (AMap, DataV) or bd09 (Baidu)")
        parser.add_argument("--valid-from", help="date the boundaries take effect, YYYY-MM-DD (default today)")
        parser.add_argument("--layer", help="layer to read from a GeoPackage (default the first)")
        parser.add_argument(
            "--repair",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="repair invalid polygons with make_valid (default); --no-repair rejects them",
        )

    def build_importer(self, options: dict) -> BoundariesImporter:
        return BoundariesImporter(
            level=options["level"],
            code_field=options["code_field"],
            name_field=options["name_field"],
            source_crs=options["source_crs"],
            convert=options["convert"],
            valid_from=options["valid_from"],
            layer=options["layer"],
            repair=options["repair"],
        )
