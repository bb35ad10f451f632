"""``escalate_events``: raise overdue open cases one level (run it on a schedule, e.g. every 10 minutes)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from layers.services.events import events_escalate


def _instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--now {text!r}: expected an ISO 8601 date-time such as 2026-05-01T08:00+08:00") from error
    return value if timezone.is_aware(value) else timezone.make_aware(value)


class Command(BaseCommand):
    help = "Escalate overdue open events one level (community → street → district → city) and log each step."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", help="the instant to judge deadlines by (ISO 8601; default: now)")
        parser.add_argument("--dry-run", action="store_true", help="list what would be escalated, change nothing")

    def handle(self, *args, **options) -> None:
        now = _instant(options["now"]) if options["now"] else timezone.now()
        moved = events_escalate(now=now, dry_run=options["dry_run"])
        verb = "would escalate" if options["dry_run"] else "escalated"
        for (from_level, to_level), count in sorted(Counter((f, t) for _, f, t in moved).items()):
            self.stdout.write(f"{verb} {count} event(s) {from_level} → {to_level}")
        self.stdout.write(f"{verb} {len(moved)} overdue event(s) as of {now.isoformat()}")
