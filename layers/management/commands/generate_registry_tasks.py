"""``manage.py generate_registry_tasks``: make the registry tasks due now (from a timer, e.g.
hourly); idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils.dateparse import parse_datetime

from layers.services.registry_tasks import registry_tasks_generate


class Command(BaseCommand):
    help = "Make registry tasks: unmatched or ambiguous report addresses, addresses unconfirmed for a year."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--now", help="the moment to generate for (ISO 8601, with a zone); default: now")

    def handle(self, *args, now: str | None = None, **options) -> None:
        moment = None
        if now:
            moment = parse_datetime(now)
            if moment is None or moment.tzinfo is None:
                self.stderr.write("--now: must be an ISO 8601 date-time with a zone, e.g. 2026-05-01T08:00:00+08:00")
                raise SystemExit(2)
        made = registry_tasks_generate(now=moment)
        self.stdout.write(f"registry tasks made: {made['events']} from reports, {made['stale']} addresses to confirm")
