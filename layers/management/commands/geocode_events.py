"""``geocode_events [--only-unlocated] [--since DATE] [--batch N] [--workers N]``: bulk re-geocoding."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from layers.services.regeocoding import events_geocode


def _since(text: str):
    try:
        value = parse_datetime(text) or parse_date(text)
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"--since {text!r}: expected an ISO date or date-time such as 2026-05-01")
    if not hasattr(value, "hour"):
        value = timezone.datetime.combine(value, timezone.datetime.min.time())
    return value if timezone.is_aware(value) else timezone.make_aware(value)


class Command(BaseCommand):
    help = (
        "Relink located events to the grids in force (polygon-driven SQL), and geocode events that have "
        "address text but no point, in batches; report counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only-unlocated", action="store_true", help="only events without a small grid")
        parser.add_argument("--since", help="only events received since this date or date-time (ISO 8601)")
        parser.add_argument("--batch", type=int, default=5000, help="address texts per geocoding batch (default 5000)")
        parser.add_argument("--workers", type=int, default=1, help="processes for address matching (default 1)")

    def handle(self, *args, **options) -> None:
        if options["batch"] < 1:
            raise CommandError(f"--batch must be 1 or more, got {options['batch']}")
        if options["workers"] < 1:
            raise CommandError(f"--workers must be 1 or more, got {options['workers']}")
        since = _since(options["since"]) if options["since"] else None
        bar = tqdm(desc="address geocoding", unit="event", file=sys.stderr, disable=options["verbosity"] == 0)
        try:
            counts = events_geocode(
                only_unlocated=options["only_unlocated"],
                since=since,
                batch=options["batch"],
                workers=options["workers"],
                on_batch=bar.update,
            )
        finally:
            bar.close()
        self.stdout.write(
            f"relinked {counts['relinked']:,} event(s); address geocoding: {counts['address_located']:,} of "
            f"{counts['address_tried']:,} located, {counts['dispatched']:,} dispatched; "
            f"{counts['still_unlocated']:,} event(s) still without a point"
        )
