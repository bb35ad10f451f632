"""``manage.py rotate_personal_data_key [--dry-run] [--batch N]``: rewrite every ciphertext and
lookup digest of personal data under the current ``MINQING_PERSONAL_DATA_KEY``, reading what
was written under ``MINQING_PERSONAL_DATA_KEY_PREVIOUS`` (``layers/services/key_rotation.py``).
Resumable: rows already under the current key are skipped. Prints rows per table and key; a value
no configured key opens is named by table, id and column (never its value), a person whose ID
number another person holds under the current key is named with that person, and the exit status
is 1. A real run records one audit entry, signs the audit anchor file again under the current key
and anchors the head."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from layers.protection import personal
from layers.protection.audit import AnchorFileError, audit_anchors_read
from layers.services.key_rotation import PROTECTED, UNREADABLE, RotationReport, personal_data_rotate

#: How many unreadable values the report names one by one (the rest are counted).
SHOWN = 1_000


class Command(BaseCommand):
    help = (
        "Rewrite every personal-data ciphertext and lookup digest under the current key, reading the previous "
        "keys; report rows per table and key, and every value no key opens (exit status 1)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count rows per key; write nothing")
        parser.add_argument("--batch", type=int, default=5_000, help="rows per transaction (default 5,000)")

    def handle(self, *args, **options) -> None:
        if options["batch"] < 1:
            raise CommandError(f"--batch: must be at least 1, got {options['batch']}")
        labels = personal.key_labels()  # a bad key setting stops here, before anything is read
        if not options["dry_run"]:
            try:
                audit_anchors_read()  # an anchor file that cannot be signed again stops here too
            except AnchorFileError as error:
                raise CommandError(f"审计日志锚点文件不可信 audit anchor file untrusted: {error}") from None
        self.stdout.write(
            f"密钥 keys: current and {len(labels) - 1} previous"
            + (" (dry run: nothing is written)" if options["dry_run"] else "")
        )
        bars = {}
        quiet = options["verbosity"] == 0
        with connection.cursor() as cursor:
            for spec in PROTECTED:
                cursor.execute(f"SELECT count(*) FROM {spec.table}")  # a name from PROTECTED, never input
                (total,) = cursor.fetchone()
                bars[spec.table] = tqdm(
                    desc=spec.table, total=total, unit="row", file=sys.stderr, disable=quiet, leave=False
                )
        try:
            report = personal_data_rotate(
                batch=options["batch"],
                dry_run=options["dry_run"],
                progress=lambda table, rows: bars[table].update(rows),
            )
        finally:
            for bar in bars.values():
                bar.close()
        self._print(report, labels)
        problems = []
        if report.unreadable_rows:
            problems.append(
                f"{report.unreadable_rows:,} rows hold values no configured key opens (listed above); "
                "nothing of them was lost: set the key they were written under in MINQING_PERSONAL_DATA_KEY_PREVIOUS "
                "and run again"
            )
        if report.duplicates:
            problems.append(
                f"{len(report.duplicates):,} rows hold the same value as another row under the current key (listed "
                "above) and were left under the old key: merge each pair, then run again"
            )
        if problems:
            raise CommandError("; ".join(problems))

    def _print(self, report: RotationReport, labels: list[str]) -> None:
        verb = "would rewrite" if report.dry_run else "rewritten"
        for table in report.tables:
            counts = ", ".join(
                f"{label} {table.by_key[label]:,}" for label in [*labels, *sorted(set(table.by_key) - set(labels))]
            )
            self.stdout.write(f"{table.table}: {table.rows:,} rows ({counts}); {verb} {table.rewritten:,}")
        for found in report.unreadable[:SHOWN]:
            self.stdout.write(f"{UNREADABLE}: {found}")
        for found in report.duplicates[:SHOWN]:
            self.stdout.write(f"duplicate: {found}")
        if len(report.unreadable) > SHOWN:
            self.stdout.write(
                f"{UNREADABLE}: the first {SHOWN:,} values are listed; {report.unreadable_rows:,} rows in all"
            )
        if report.dry_run:
            return
        anchors = settings.MINQING_AUDIT_ANCHOR_FILE
        if report.anchored is not None:
            self.stdout.write(
                f"锚点 audit anchors: {report.anchors_resigned:,} signed again under the current key; "
                f"head {report.anchored[0]}:{report.anchored[1]} anchored in {anchors}"
            )
        elif not anchors:
            self.stdout.write("锚点 audit anchors: MINQING_AUDIT_ANCHOR_FILE is empty: none kept")
        self.stdout.write(
            f"完成 done: {report.rewritten:,} rows rewritten under the current key; "
            "run verify_audit_log, then remove MINQING_PERSONAL_DATA_KEY_PREVIOUS"
            if not report.unreadable_rows and not report.duplicates
            else f"完成 done: {report.rewritten:,} rows rewritten under the current key"
        )
