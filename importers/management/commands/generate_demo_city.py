"""``generate_demo_city --scale tiny|demo|city [--seed N] [--replace]``: always writes."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from importers.demo_city import SCALES, DemoCityError, demo_city_build, demo_city_exists, demo_city_write


class Command(BaseCommand):
    help = (
        "Build the deterministic demo city (real Lanzhou names and codes, synthetic grids, addresses, "
        "people and units) and write it. Refuses when grids exist unless --replace."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", choices=sorted(SCALES), default="demo", help="how much city (default demo)")
        parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same city")
        parser.add_argument("--replace", action="store_true", help="wipe an earlier demo city first")

    def handle(self, *args, **options) -> None:
        if options["seed"] < 0:
            raise CommandError(f"--seed must be 0 or more, got {options['seed']}")
        # Checked before the (long) build so a refusal costs nothing.
        if not options["replace"] and demo_city_exists():
            raise CommandError("grids already exist; pass --replace to wipe the demo city and build it again")
        quiet = options["verbosity"] == 0
        started = time.monotonic()
        bar = tqdm(total=5, desc="build", unit="stage", file=sys.stderr, disable=quiet, leave=False)

        def built(stage: str) -> None:
            bar.set_description(f"build: {stage}")
            bar.update(1 if bar.n < bar.total else 0)

        try:
            city = demo_city_build(scale=SCALES[options["scale"]], seed=options["seed"], progress=built)
            bar.close()
            built_at = time.monotonic()
            bars: list[tqdm] = []

            def stage(name: str, total: int):
                for old in bars:
                    old.close()
                bars[:] = [
                    tqdm(total=total, desc=f"write: {name}", unit="row", file=sys.stderr, disable=quiet, leave=False)
                ]
                return bars[0].update

            counts = demo_city_write(city=city, replace=options["replace"], on_stage=stage)
            for old in bars:
                old.close()
        except DemoCityError as error:
            raise CommandError(str(error)) from error
        finished = time.monotonic()
        self.stdout.write(
            f"demo city (scale {city.scale}, seed {city.seed}): built in {built_at - started:.1f} s, "
            f"written in {finished - built_at:.1f} s, {finished - started:.1f} s in all"
        )
        for name, value in city.counts.items():
            self.stdout.write(f"  {name:<12} {value:>10,}")
        if "wiped" in counts:
            wiped = ", ".join(f"{table} {n:,}" for table, n in counts["wiped"].items())
            self.stdout.write(f"  replaced an earlier demo city ({wiped})")
        outside = counts["addresses"].get("outside_grids", 0)
        if outside:
            self.stdout.write(f"  warning: {outside:,} addresses outside every small grid")
