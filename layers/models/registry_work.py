"""Work on the registry in the field: tasks that keep the standard addresses true, and the grid
workers' household visits (走访).

A :class:`RegistryTask` is one thing a grid worker is asked to check: a report whose address
matched no standard address or matched ambiguously, or a standard address nobody has confirmed
in a year. Tasks are made in bulk by :mod:`layers.services.registry_tasks`; the worker's answer
(confirm, correct, merge, add) is applied at once when it is small and waits for a data steward
otherwise. A :class:`Visit` is one household visit recorded on the tablet.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .areas import Grid
from .events import Event
from .registry import Address, Dwelling


class RegistryTask(models.Model):
    """One check of the registry for the worker of a small grid."""

    class Kind(models.TextChoices):
        UNMATCHED = "unmatched", _("Address not found")
        AMBIGUOUS = "ambiguous", _("Address ambiguous")
        STALE = "stale", _("Address not confirmed for a year")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        AWAITING = "awaiting", _("Awaiting approval")
        DONE = "done", _("Done")
        REJECTED = "rejected", _("Rejected")

    class Resolution(models.TextChoices):
        CONFIRM = "confirm", _("Confirm")
        CORRECT = "correct", _("Correct")
        MERGE = "merge", _("Merge duplicates")
        ADD = "add", _("Add the missing address")

    kind = models.CharField("类型", max_length=10, choices=Kind.choices)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.OPEN)
    # The worker of this small grid answers the task; empty when no grid could be named (the
    # stewards' page lists those).
    grid = models.ForeignKey(
        Grid, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False, verbose_name="小网格"
    )
    event = models.ForeignKey(
        Event, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False, verbose_name="事件"
    )
    address = models.ForeignKey(
        Address, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False, verbose_name="地址"
    )
    #: Codes of the standard addresses the geocoder offered (ambiguous or not confident), best first.
    candidates = models.JSONField("候选地址", default=list, blank=True)
    created_at = models.DateTimeField("生成时间")
    resolution = models.CharField("处理方式", max_length=10, choices=Resolution.choices, blank=True)
    #: What the worker proposed: {"address": code, "lon", "lat", "fields": {...}, "into": code, ...}.
    proposal = models.JSONField("提议", default=dict, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    answered_at = models.DateTimeField("处理时间", null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    decided_at = models.DateTimeField("审核时间", null=True, blank=True)
    reason = models.CharField("审核意见", max_length=300, blank=True)

    class Meta:
        constraints = [
            # One live task per report and per address: generation inserts with ON CONFLICT DO NOTHING.
            models.UniqueConstraint(
                fields=["event"], condition=Q(status__in=["open", "awaiting"]), name="registrytask_event_live"
            ),
            models.UniqueConstraint(
                fields=["address"],
                condition=Q(status__in=["open", "awaiting"], kind="stale"),
                name="registrytask_address_live",
            ),
        ]
        indexes = [
            models.Index(fields=["grid", "status"], name="registrytask_grid_status"),
            models.Index(fields=["status", "answered_at"], name="registrytask_status_answered"),
        ]
        verbose_name = verbose_name_plural = "地址核查任务 Registry task"

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.status})"


class Visit(models.Model):
    """走访: a grid worker's visit to a household, recorded on the tablet (offline first)."""

    class Source(models.TextChoices):
        GPS = "gps", _("GPS")
        TAP = "tap", _("Tap on the map")

    worker = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name="网格员")
    grid = models.ForeignKey(Grid, models.PROTECT, related_name="+", verbose_name="小网格")
    dwelling = models.ForeignKey(
        Dwelling, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False, verbose_name="户室"
    )
    #: The tablet's id for the visit: a resend of a queued visit is stored once.
    client_id = models.CharField(max_length=64)
    visited_at = models.DateTimeField("走访时间")
    location = models.PointField("位置", srid=4326)
    location_source = models.CharField("定位方式", max_length=4, choices=Source.choices)
    accuracy_m = models.FloatField("定位精度(米)", null=True, blank=True)
    notes = models.TextField("走访记录", blank=True)
    follow_up = models.TextField("后续事项", blank=True)
    follow_up_due = models.DateField("后续期限", null=True, blank=True)
    created_at = models.DateTimeField("上传时间")
    district_code = models.CharField(max_length=12, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "client_id"], name="visit_worker_client_id")]
        indexes = [
            models.Index(fields=["grid", "visited_at"], name="visit_grid_at"),
            models.Index(fields=["worker", "visited_at"], name="visit_worker_at"),
        ]
        verbose_name = verbose_name_plural = "走访记录 Visit"

    def __str__(self) -> str:
        return f"visit {self.pk}"
