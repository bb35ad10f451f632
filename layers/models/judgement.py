"""研判: the versioned keyword library of dispatch and the monthly situation reports.

* :class:`KeywordLibrary`: one version of the keyword library (关键字库). A change is a *draft*
  (its rules as a JSON list) until someone other than its author approves it; the approved
  version gets the next ``number`` and becomes the live library (its rules are written into
  :class:`~layers.models.KeywordRule`, which dispatch reads), the one before it is *superseded*.
  A draft can be *discarded*. Every case keeps the number of the version that routed it
  (``Event.rule_version``). A draft is approved only after a replay of its present rules
  (``replay_digest`` equals the digest of ``rules``).
* :class:`JudgementReport`: one monthly situation report (研判报告) of the city, a district or a
  street: its figures, and where its PDF and HTML were written. One per (area, month): the
  scheduled command skips a report already written.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class KeywordLibrary(models.Model):
    """A version of the keyword library: a draft, the live (approved) version, an older
    (superseded) one, or a discarded draft."""

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        APPROVED = "approved", "现行"
        SUPERSEDED = "superseded", "已替换"
        DISCARDED = "discarded", "已放弃"

    #: 1, 2, 3 … in order of approval; empty for drafts and discarded drafts.
    number = models.PositiveIntegerField("版本号", null=True, blank=True, unique=True)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.DRAFT)
    #: The approved version the draft started from (approving refuses when another was approved since).
    base = models.ForeignKey("self", models.PROTECT, null=True, blank=True, related_name="+", verbose_name="基于")
    #: [{"keyword", "department", "priority", "category" (code or null), "active"}, …]
    rules = models.JSONField("规则", default=list)
    note = models.CharField("变更说明", max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="起草人"
    )
    author_label = models.CharField("起草人", max_length=150, blank=True)
    created_at = models.DateTimeField("起草时间")
    updated_at = models.DateTimeField("修改时间")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="审批人"
    )
    decided_by_label = models.CharField("审批人", max_length=150, blank=True)
    decided_at = models.DateTimeField("审批时间", null=True, blank=True)
    #: The last replay of this draft: its summary, and the digest of the rules it replayed.
    replay = models.JSONField("回放结果", null=True, blank=True)
    replay_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # At most one live version.
            models.UniqueConstraint(fields=["status"], condition=Q(status="approved"), name="keywordlibrary_one_live"),
            models.CheckConstraint(
                condition=Q(number__isnull=True) | Q(status__in=["approved", "superseded"]),
                name="keywordlibrary_number_when_approved",
            ),
        ]
        verbose_name = verbose_name_plural = "关键字库版本 Keyword library version"

    def __str__(self) -> str:
        return f"v{self.number}" if self.number else f"draft {self.pk}"


class JudgementReport(models.Model):
    """A monthly situation report as generated: area, month, figures and files."""

    #: The area's 12-digit code (the city, a district or a street).
    area_code = models.CharField("区划编码", max_length=12)
    area_name = models.CharField("区划名称", max_length=100)
    #: The first day of the month reported on.
    month = models.DateField("月份")
    generated_at = models.DateTimeField("生成时间")
    figures = models.JSONField("数据", default=dict)
    #: Paths under MINQING_REPORT_DIR ("" when generated on demand and not written).
    pdf_path = models.CharField(max_length=300, blank=True)
    html_path = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-month", "area_code"]
        constraints = [models.UniqueConstraint(fields=["area_code", "month"], name="judgementreport_area_month")]
        verbose_name = verbose_name_plural = "研判报告 Judgement report"

    def __str__(self) -> str:
        return f"{self.area_name} {self.month:%Y-%m}"
