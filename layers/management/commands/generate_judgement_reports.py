"""``generate_judgement_reports``: write the monthly situation reports (PDF and HTML) of the city
and its districts (and, asked, its streets) for a month, once; for a timer such as
``0 6 1-3 * * cd /srv/minqing && .venv/bin/python manage.py generate_judgement_reports``."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from layers.errors import InvalidInput
from layers.models import Region
from layers.protection.scope import CITY
from layers.selectors.judgement import report_area_get, report_month_check, report_month_default
from layers.services.judgement import judgement_report_publish


def _month(text: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(f"{text}-01")
    except ValueError as error:
        raise CommandError(f"--month {text!r}: expected a month as YYYY-MM") from error
    return value


def _instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--now {text!r}: expected an ISO 8601 date-time such as 2026-06-01T06:00+08:00") from error
    return value if timezone.is_aware(value) else timezone.make_aware(value)


class Command(BaseCommand):
    help = (
        "Write the monthly situation reports (研判报告) as PDF and HTML under MINQING_REPORT_DIR: the city "
        "and every district by default. A report already written for that area and month is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", help="YYYY-MM (default: the last whole month)")
        parser.add_argument(
            "--area",
            action="append",
            default=[],
            help="a 12-digit code of the city, a district or a street (repeatable)",
        )
        parser.add_argument("--streets", action="store_true", help="every street's report as well")
        parser.add_argument("--directory", help="where the files go (default: MINQING_REPORT_DIR)")
        parser.add_argument("--force", action="store_true", help="write reports that exist again")
        parser.add_argument("--language", default="zh-hans", choices=("zh-hans", "en"), help="default zh-hans")
        parser.add_argument("--now", help="the instant open cases are judged at (ISO 8601; default: now)")

    def handle(self, *args, **options) -> None:
        now = _instant(options["now"]) if options["now"] else timezone.now()
        try:
            month = (
                report_month_check(_month(options["month"]), now=now)
                if options["month"]
                else report_month_default(now=now)
            )
            codes = list(options["area"])
            if not codes:
                levels = ["city", "district"] + (["street"] if options["streets"] else [])
                codes = list(Region.objects.filter(level__in=levels).order_by("code").values_list("code", flat=True))
            elif options["streets"]:
                codes += list(Region.objects.filter(level="street").order_by("code").values_list("code", flat=True))
            areas = [report_area_get(code=code, reader_scope=CITY) for code in dict.fromkeys(codes)]
        except InvalidInput as error:
            raise CommandError(error.message) from error
        if not areas:
            raise CommandError("no area to report on: import the divisions first (import_divisions)")
        directory = Path(options["directory"]) if options["directory"] else None
        written = skipped = 0
        for n, area in enumerate(areas, start=1):
            started = time.monotonic()
            row, wrote = judgement_report_publish(
                area=area,
                month=month,
                now=now,
                directory=directory,
                force=options["force"],
                language=options["language"],
            )
            written += wrote
            skipped += not wrote
            state = f"written in {time.monotonic() - started:.1f} s" if wrote else "already written, skipped"
            self.stderr.write(f"[{n}/{len(areas)}] {area.name} ({area.code}) {month:%Y-%m}: {state}")
            self.stdout.write(f"{row.pdf_path}\n{row.html_path}")
        self.stderr.write(f"{month:%Y-%m}: {written} report(s) written, {skipped} skipped")
