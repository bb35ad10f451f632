"""``manage.py anchor_audit_log``: keep the audit log's chain head outside the database
(``MINQING_AUDIT_ANCHOR_FILE``), for ``verify_audit_log`` to check the log against later. Run it
from a timer (every few minutes): a log cut or rewritten by someone with the database owner's
rights is then found back to the last anchor."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from layers.protection.audit import audit_anchor_write


class Command(BaseCommand):
    help = "Append the audit log's chain head to the anchor file kept outside the database."

    def handle(self, *args, **options) -> None:
        if not settings.MINQING_AUDIT_ANCHOR_FILE:
            raise CommandError("MINQING_AUDIT_ANCHOR_FILE is empty: there is nowhere to keep anchors")
        head = audit_anchor_write()
        if head is None:
            self.stdout.write("审计日志为空 audit log is empty: nothing to anchor")
            return
        self.stdout.write(f"锚点已记录 anchored head {head[0]}:{head[1]} in {settings.MINQING_AUDIT_ANCHOR_FILE}")
