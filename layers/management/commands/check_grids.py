"""``check_grids``: overlaps, gaps and grids outside their parent or community."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from layers.models import Grid, Region
from layers.selectors.topology import Problem, grid_topology_problems, problems_geojson

FORMATS = ("text", "csv", "geojson")


class Command(BaseCommand):
    help = "Check grid topology; fails (exit status 1) when problems are found, so scripts can stop on it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--level", choices=Grid.Level.values, help="only problems of grids of this level")
        parser.add_argument("--community", help="only the grids of this community (12-digit code)")
        parser.add_argument("--tolerance-m", type=float, default=1.0, help="ignore parts narrower than this (metres)")
        parser.add_argument("--report", type=Path, help="write every problem to this file")
        parser.add_argument(
            "--format", choices=FORMATS, help="report format (default: from the --report suffix, else text)"
        )

    def handle(self, *args, **options) -> None:
        community = options["community"]
        if community and not Region.objects.filter(code=community, level=Region.Level.COMMUNITY).exists():
            raise CommandError(f"--community {community}: no community with this code")
        if options["tolerance_m"] < 0:
            raise CommandError(f"--tolerance-m {options['tolerance_m']}: expected zero or more metres")
        problems = grid_topology_problems(
            level=options["level"], community_code=community, tolerance_m=options["tolerance_m"]
        )
        for problem in problems:
            self.stdout.write(problem.describe())
        target = options["report"]
        if target:
            fmt = options["format"] or {".csv": "csv", ".geojson": "geojson", ".json": "geojson"}.get(
                target.suffix.lower(), "text"
            )
            _write(target, fmt, problems)
            self.stdout.write(f"report written to {target}")
        if problems:
            where = target or "the lines above"
            raise CommandError(f"{len(problems)} topology problem(s) found; see {where}")
        self.stdout.write("no topology problems")


def _write(path: Path, fmt: str, problems: list[Problem]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        path.write_text(json.dumps(problems_geojson(problems), ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow(["kind", "level", "codes", "area_m2", "lon", "lat", "wkt"])
            for p in problems:
                writer.writerow(
                    [p.kind, p.level, " / ".join(p.codes), f"{p.area_m2:.1f}", f"{p.lon:.7f}", f"{p.lat:.7f}", p.wkt]
                )
    else:
        path.write_text("".join(p.describe() + "\n" for p in problems), encoding="utf-8")
