"""``ensure_demo_users``: create the role groups and the demo logins; print them as a table."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from layers.services.users import demo_users_ensure

#: ``area``: the grid a grid worker works, or the street / community a staff user's scope names.
COLUMNS = ("username", "role", "password", "token", "area")


class Command(BaseCommand):
    help = "Create (idempotently) the role groups and the demo users; print username, role, password, token, area."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="run even with DEBUG off (the demo password is public: never on a production database)",
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["allow_without_debug"]:
            raise CommandError(
                "ensure_demo_users: the demo users share a published password, so this runs only with DEBUG on "
                "(pass --allow-without-debug to run it anyway)"
            )
        logins = demo_users_ensure()
        rows = [COLUMNS] + [
            (login.username, login.role, login.password, login.token, login.grid_code or login.area_code or "-")
            for login in logins
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
