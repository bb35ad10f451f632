"""``import_grids PATH [--accept-topology] …``: the three-level grids from GeoJSON, Shapefile or
GeoPackage; refuses (exit status 4) grids that would bring gaps, overlaps or grids outside their
parent unless told to accept them."""

from __future__ import annotations

from django.core.management.base import CommandParser

from importers.commands import ImportCommand
from importers.grids import CONVERSIONS, GridImporter


class Command(ImportCommand):
    help = "Import grids (code, name, level, parent_code, community_code + polygon); dry run unless --commit."
    kind = GridImporter.kind

    def add_importer_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--valid-from", help="date the boundaries hold from, YYYY-MM-DD (default: today)")
        parser.add_argument("--source-crs", help="CRS of a file that declares none, e.g. EPSG:4490")
        parser.add_argument("--convert", choices=CONVERSIONS, help="the file was digitised on GCJ-02 or BD-09 maps")
        parser.add_argument("--layer", help="layer of a GeoPackage holding several")
        parser.add_argument("--no-repair", action="store_true", help="reject invalid polygons instead of repairing")
        parser.add_argument(
            "--accept-topology",
            action="store_true",
            help="commit even when the grids bring gaps, overlaps or grids outside their parent (default: exit 4)",
        )
        for name, default in (
            ("code", "code"),
            ("name", "name"),
            ("level", "level"),
            ("parent", "parent_code"),
            ("community", "community_code"),
        ):
            parser.add_argument(
                f"--{name}-field", default=default, help=f"attribute holding the {name} (default {default})"
            )

    def build_importer(self, options: dict) -> GridImporter:
        return GridImporter(
            valid_from=options["valid_from"],
            source_crs=options["source_crs"],
            convert=options["convert"],
            layer=options["layer"],
            repair=not options["no_repair"],
            code_field=options["code_field"],
            name_field=options["name_field"],
            level_field=options["level_field"],
            parent_field=options["parent_field"],
            community_field=options["community_field"],
            accept_topology=options["accept_topology"],
        )
