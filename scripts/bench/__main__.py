"""Run the benchmarks: ``python -m scripts.bench [name …] [--repeats N] [--rows N]``."""

from __future__ import annotations

import argparse
import os
import sys

import django


def ensure_city() -> None:
    """The city-scale demo (seed 1) the realistic benchmarks read; generated once (~10 minutes)."""
    from django.core.management import call_command

    from layers.models import Grid

    if not Grid.objects.filter(level="small").exists():
        print("bench: generating the city-scale demo city (once, about ten minutes)", flush=True)
        call_command("generate_demo_city", scale="city", seed=1)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    django.setup()
    from django.conf import settings

    from . import (
        events_tiles,  # noqa: F401  (registers the clustered events tiles and the tiles beside tipg)
        exports,  # noqa: F401  (registers the full addresses export in every format)
        geocode,  # noqa: F401  (registers the address matching benchmark)
        geocode_noisy,  # noqa: F401  (registers the noisy-address families and the geocode API benchmarks)
        governance,  # noqa: F401  (registers the monthly report and the registry's task generation)
        heat,  # noqa: F401  (registers the heat tile benchmark)
        imports,  # noqa: F401  (registers the import benchmarks)
        intake,  # noqa: F401  (registers the intake load benchmark)
        locate,  # noqa: F401  (registers the point → grid benchmarks)
        ogc,  # noqa: F401  (registers the OGC items and GeoJSON export benchmarks)
        ogc_peer,  # noqa: F401  (registers the OGC pages over HTTP beside tipg)
        rules,  # noqa: F401  (registers the keyword library replay benchmark)
        stack,  # noqa: F401  (registers the production stack's benchmarks)
        tiles,  # noqa: F401  (registers the vector tile benchmark)
    )
    from .harness import BENCHMARKS, DATA, write_reports

    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(BENCHMARKS)})")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path; the median is reported")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the import benchmarks")
    parser.add_argument(
        "--data",
        choices=("city", "synthetic", "stack"),
        required=True,
        help="run the benchmarks of this data set (scripts/bench.sh gives each its own database)",
    )
    options = parser.parse_args()
    unknown = [name for name in options.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    results = []
    names = [name for name in options.names or BENCHMARKS if DATA[name] == options.data]
    if options.data == "city" and names:
        ensure_city()
    for name in names:
        print(f"bench: {name} …", flush=True)
        results += BENCHMARKS[name](repeats=options.repeats, rows=options.rows)
    json_path, md_path = write_reports(results, settings.VAR_DIR / "bench")
    print(md_path.read_text())
    print(f"bench: wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
