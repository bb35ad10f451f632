"""The residents' side (小兰帮办): a resident's follow-up ticket and the city's public summaries.

* :class:`ResidentTicket`: what a resident who reported on ``/report/`` holds — a ticket number
  to quote on the phone and a private follow-up link. The link carries a token that is never
  stored: only its SHA-256 is (``token_digest``), so a copy of the database opens no case.
* :class:`PublicSummary`: the text the city publishes about a completed case on the public map
  (``/public/``), written by staff and approved by another staff member; nothing is public
  before it is approved.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .events import Event


class ResidentTicket(models.Model):
    """A resident's report: its ticket number and the digest of its follow-up token."""

    class Answer(models.TextChoices):
        RATE = "rate", "评价"
        REOPEN = "reopen", "重新办理"

    event = models.OneToOneField(Event, models.CASCADE, related_name="resident_ticket", verbose_name="事件")
    #: Quoted on the phone (12345): not a secret, so a date and the event id are enough.
    ticket = models.CharField("受理编号", max_length=24, unique=True)
    #: SHA-256 (hex) of the follow-up token; the token itself is never stored.
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField("提交时间")
    #: The resident's one answer to the latest resolution: a rating, or a reopening.
    answered_at = models.DateTimeField("评价时间", null=True, blank=True)
    answer = models.CharField("评价", max_length=8, choices=Answer.choices, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "居民受理单 Resident ticket"

    def __str__(self) -> str:
        return self.ticket


class PublicSummary(models.Model):
    """A public summary of a completed case: pending until a moderator (not its author)
    approves or rejects it. Shown only while the case stays completed."""

    class Status(models.TextChoices):
        PENDING = "pending", "待审核"
        APPROVED = "approved", "已发布"
        REJECTED = "rejected", "未通过"

    event = models.OneToOneField(Event, models.CASCADE, related_name="public_summary", verbose_name="事件")
    text = models.CharField("公开摘要", max_length=300)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.PENDING)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="撰写人"
    )
    written_at = models.DateTimeField("撰写时间")
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="审核人"
    )
    moderated_at = models.DateTimeField("审核时间", null=True, blank=True)
    #: Why a moderator refused it (staff text, never published).
    reason = models.CharField("审核意见", max_length=300, blank=True)

    class Meta:
        indexes = [
            # The public list: approved summaries, newest first.
            models.Index(fields=["moderated_at"], condition=Q(status="approved"), name="publicsummary_published"),
            models.Index(fields=["written_at"], condition=Q(status="pending"), name="publicsummary_queue"),
        ]
        verbose_name = verbose_name_plural = "公开摘要 Public summary"

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.text[:20]}"
