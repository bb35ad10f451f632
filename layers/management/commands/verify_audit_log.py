"""``manage.py verify_audit_log [--batch N] [--anchor SEQ:HASH] [--no-anchor]``: walk the audit
log's hash chain, check it against every anchor kept outside the database
(``MINQING_AUDIT_ANCHOR_FILE``) and any given by hand, and report the first altered, inserted or
deleted row; exit status 1 when there is one. An intact log's head is anchored (unless
``--no-anchor``)."""

from __future__ import annotations

import re
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from layers.protection.audit import AnchorFileError, audit_anchor_write, audit_anchors_read, audit_verify

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
        "Verify the audit log's hash chain against the anchors kept outside the database; report the first "
        "altered, inserted or deleted row by sequence number (exit status 1). An intact log's head is anchored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=10_000, help="rows read per statement (default 10,000)")
        parser.add_argument("--anchor", help="SEQ:HASH printed by an earlier run; that row must still hold that hash")
        parser.add_argument("--no-anchor", action="store_true", help="do not anchor the head of an intact log")

    def handle(self, *args, **options) -> None:
        if options["batch"] < 1:
            raise CommandError(f"--batch: must be at least 1, got {options['batch']}")
        try:
            anchors = audit_anchors_read()
        except AnchorFileError as error:
            raise CommandError(f"审计日志锚点文件不可信 audit anchor file untrusted: {error}") from None
        if options["anchor"]:
            anchors.append(_anchor(options["anchor"]))
        with tqdm(desc="audit log", unit="row", file=sys.stderr, disable=options["verbosity"] == 0, leave=False) as bar:
            result = audit_verify(batch=options["batch"], anchors=anchors, progress=lambda _: bar.update(1))
        if result.finding is not None:
            raise CommandError(f"审计日志校验失败 audit log check failed: {result.finding}")
        if result.rows == 0:
            self.stdout.write("审计日志为空 audit log is empty: nothing to verify")
            return
        kept = (
            ""
            if options["no_anchor"] or audit_anchor_write() is None
            else f"; anchored in {settings.MINQING_AUDIT_ANCHOR_FILE}"
        )
        self.stdout.write(
            f"审计日志完好 audit log intact: {result.rows:,} rows, sequence 1–{result.last_seq}, "
            f"{len(anchors):,} anchors checked; head {result.head_seq}:{result.head_hash}{kept}"
        )
