"""``manage.py verify_audit_log [--batch N] [--anchor SEQ:HASH]``: walk the audit log's hash
chain and report the first altered, inserted or deleted row; exit status 1 when there is one."""

from __future__ import annotations

import re
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from layers.audit import audit_verify

_ANCHOR = re.compile(r"([1-9][0-9]{0,18}):([0-9a-f]{64})")


def _anchor(text: str) -> tuple[int, str]:
    match = _ANCHOR.fullmatch(text.strip().lower())
    if match is None:
        raise CommandError(
            f"--anchor: expected SEQ:HASH (a sequence number and a 64-digit hex hash), got {text[:80]!r}"
        )
    return int(match.group(1)), match.group(2)


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain; report the first altered, inserted or deleted row by sequence "
        "number (exit status 1). On success print the head: keep it elsewhere and pass it back as --anchor."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=10_000, help="rows read per statement (default 10,000)")
        parser.add_argument("--anchor", help="SEQ:HASH printed by an earlier run; that row must still hold that hash")

    def handle(self, *args, **options) -> None:
        if options["batch"] < 1:
            raise CommandError(f"--batch: must be at least 1, got {options['batch']}")
        anchor = _anchor(options["anchor"]) if options["anchor"] else None
        with tqdm(desc="audit log", unit="row", file=sys.stderr, disable=options["verbosity"] == 0, leave=False) as bar:
            result = audit_verify(batch=options["batch"], anchor=anchor, progress=lambda _: bar.update(1))
        if result.finding is not None:
            raise CommandError(f"审计日志校验失败 audit log check failed: {result.finding}")
        if result.rows == 0:
            self.stdout.write("审计日志为空 audit log is empty: nothing to verify")
            return
        self.stdout.write(
            f"审计日志完好 audit log intact: {result.rows:,} rows, sequence 1–{result.last_seq}; "
            f"head {result.head_seq}:{result.head_hash}"
        )
