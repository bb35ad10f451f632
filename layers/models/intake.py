"""Durable intake: the ``Idempotency-Key`` a client sent with a write and the answer it got.

A row is written in the same transaction as the event it created, so "the key is stored" and
"the event is stored" are one fact: a retry after a lost answer finds the row and gets the first
answer again, never a second event (``layers.services.idempotency``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .events import Event


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` on one endpoint and the first answer given to it.

    Keys are per user and endpoint: two intake accounts (two channels) may pick the same key.
    ``status`` and ``response`` are empty only inside the transaction that is still producing the
    first answer; nobody else ever sees such a row."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="用户")
    #: Which write the key belongs to, e.g. ``events.create`` or ``open311.requests``.
    endpoint = models.CharField("接口", max_length=40)
    key = models.CharField("幂等键", max_length=255)
    #: SHA-256 (hex) of the canonical request (path and body): the same key with another body is refused.
    request_digest = models.CharField("请求摘要", max_length=64)
    created_at = models.DateTimeField("时间")
    status = models.PositiveSmallIntegerField("状态码", null=True, blank=True)
    #: The first answer's body as JSON text (text, not jsonb, which would reorder its keys); the
    #: endpoint renders it again (JSON or XML) on a replay.
    response = models.TextField("首次应答", blank=True)
    # No constraint: the answer stands even if the event is later merged away or deleted.
    event = models.ForeignKey(
        Event, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False, verbose_name="事件"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "endpoint", "key"], name="idempotencykey_owner_endpoint_key")
        ]
        # The purge deletes by age.
        indexes = [models.Index(fields=["created_at"], name="idempotencykey_created")]
        verbose_name = verbose_name_plural = "幂等键 Idempotency key"

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"
