"""``generate_demo_events [--days 365] [--seed N] [--end ISO] [--replace]``: a year of demo events."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from importers.demo_events import DemoEventsError, demo_events_build, demo_events_exist, demo_events_write


class Command(BaseCommand):
    help = (
        "Generate a year of realistic events for the stored demo city (deterministic for --seed and --end) "
        "and write them in bulk. Refuses when events exist unless --replace (demo events only)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=365, help="days of events before --end (default 365)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument("--end", help="the instant the year ends (ISO 8601; default: today 00:00 local)")
        parser.add_argument("--replace", action="store_true", help="replace earlier demo events")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when events exist (for scripts)")

    def handle(self, *args, **options) -> None:
        if not 1 <= options["days"] <= 3660:
            raise CommandError(f"--days must be between 1 and 3660, got {options['days']}")
        if options["seed"] < 0:
            raise CommandError(f"--seed must be 0 or more, got {options['seed']}")
        if options["end"]:
            try:
                end = dt.datetime.fromisoformat(options["end"])
            except ValueError as error:
                raise CommandError(f"--end {options['end']!r}: expected an ISO 8601 date-time") from error
            end = end if timezone.is_aware(end) else timezone.make_aware(end)
        else:
            end = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        if demo_events_exist():
            if options["if_empty"]:
                self.stdout.write("demo events: events already exist; nothing to do")
                return
            if not options["replace"]:
                raise CommandError("events already exist; pass --replace to replace the demo events")
        started = time.monotonic()
        try:
            demo = demo_events_build(seed=options["seed"], end=end, days=options["days"])
            built = time.monotonic()
            counts = demo_events_write(demo=demo, replace=options["replace"])
        except DemoEventsError as error:
            raise CommandError(str(error)) from error
        finished = time.monotonic()
        statuses = demo.events["status"].value_counts().sort_index()
        self.stdout.write(
            f"demo events (seed {options['seed']}, {options['days']} days to {end.isoformat()}): "
            f"{counts['events']:,} events, {counts['transitions']:,} transitions, {counts['clusters']:,} clusters; "
            f"built in {built - started:.1f} s, written in {finished - built:.1f} s"
        )
        self.stdout.write("  " + ", ".join(f"{status} {n:,}" for status, n in statuses.items()))
