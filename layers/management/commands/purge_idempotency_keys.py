"""``purge_idempotency_keys``: delete Idempotency-Keys older than ``MINQING_IDEMPOTENCY_KEY_HOURS``
(run it daily, e.g. from cron)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from layers.services.idempotency import idempotency_keys_purge


class Command(BaseCommand):
    help = "Delete idempotency keys (and their stored first answers) older than MINQING_IDEMPOTENCY_KEY_HOURS."

    def handle(self, *args, **options) -> None:
        deleted = idempotency_keys_purge()
        hours = settings.MINQING_IDEMPOTENCY_KEY_HOURS
        self.stdout.write(f"deleted {deleted} idempotency key(s) older than {hours:g} h")
