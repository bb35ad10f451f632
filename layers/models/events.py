"""Events (民情事件) and their closed loop: categories, departments, the keyword library, SLA
hours, the append-only transition log and the clusters that group duplicate reports.

An event is linked to its grids and regions like a registry row (:class:`GridLinked`); the
links are derived from its point by :mod:`layers.services.events`. The state machine, dispatch,
SLA deadlines and escalation live in that service module; the models only hold state.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .registry import Address, GridLinked


class Level(models.TextChoices):
    """Who is responsible for an event, lowest first; escalation climbs this list."""

    COMMUNITY = "community", _("Community")
    STREET = "street", _("Street")
    DISTRICT = "district", _("District")
    CITY = "city", _("City")


#: Responsible levels in escalation order.
LEVEL_ORDER = (Level.COMMUNITY, Level.STREET, Level.DISTRICT, Level.CITY)


class Family(models.TextChoices):
    """The top of the category taxonomy; disputes and hazards are the two heatmap families."""

    DISPUTE = "dispute", _("Dispute")
    HAZARD = "hazard", _("Safety hazard")
    ENVIRONMENT = "environment", _("Environment and sanitation")
    MUNICIPAL = "municipal", _("Municipal facility")
    CONSULTATION = "consultation", _("Consultation")
    SUGGESTION = "suggestion", _("Suggestion")


class AddressMatch(models.TextChoices):
    """The geocoder's verdict on a report's address text (stored with the event)."""

    MATCHED = "matched", _("Matched")
    AMBIGUOUS = "ambiguous", _("Ambiguous")
    UNMATCHED = "unmatched", _("Not matched")


class Department(models.Model):
    """职能部门: who handles an event. ``command_center`` handles joint cases no one department owns."""

    code = models.CharField("部门编码", max_length=32, unique=True)
    name = models.CharField("名称", max_length=50)
    name_en = models.CharField("英文名", max_length=80, blank=True)
    active = models.BooleanField("启用", default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = verbose_name_plural = "职能部门 Department"

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """A node of the event taxonomy. ``code`` is dotted (``dispute.neighbour``); a bare family
    code (``dispute``) is a category of its own meaning "subtype not yet known"."""

    code = models.CharField("分类编码", max_length=40, unique=True)
    family = models.CharField("大类", max_length=16, choices=Family.choices)
    name = models.CharField("名称", max_length=50)
    name_en = models.CharField("英文名", max_length=80, blank=True)
    department = models.ForeignKey(
        Department,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="categories",
        verbose_name="默认部门",
        help_text="Handles events of this category when no keyword rule decides",
    )
    # Severity as a floor on the responsible level: a gas leak is never left to a community.
    min_level = models.CharField("最低责任层级", max_length=10, choices=Level.choices, default=Level.COMMUNITY)

    class Meta:
        ordering = ["code"]
        verbose_name = verbose_name_plural = "事件分类 Category"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class SlaRule(models.Model):
    """Hours allowed to resolve an event of a family at a responsible level (the deadline is
    counted from receipt, and from escalation at the new level)."""

    family = models.CharField("大类", max_length=16, choices=Family.choices)
    level = models.CharField("责任层级", max_length=10, choices=Level.choices)
    hours = models.PositiveIntegerField("时限(小时)")

    class Meta:
        ordering = ["family", "level"]
        constraints = [models.UniqueConstraint(fields=["family", "level"], name="slarule_family_level_unique")]
        verbose_name = verbose_name_plural = "办理时限 SLA"

    def __str__(self) -> str:
        return f"{self.family}/{self.level}: {self.hours} h"


class KeywordRule(models.Model):
    """关键字库: a keyword found in an event's description proposes a department. The highest
    priority wins; several departments at the top priority make a joint case."""

    keyword = models.CharField("关键字", max_length=40)
    category = models.ForeignKey(
        Category,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="keyword_rules",
        verbose_name="限定分类",
        help_text="Only for events of this category or its subtypes; empty: any category",
    )
    department = models.ForeignKey(Department, models.PROTECT, related_name="keyword_rules", verbose_name="部门")
    priority = models.IntegerField("优先级", default=10, help_text="Higher wins")
    active = models.BooleanField("启用", default=True)

    class Meta:
        ordering = ["-priority", "keyword"]
        constraints = [
            models.UniqueConstraint(
                fields=["keyword", "category", "department"], name="keywordrule_unique", nulls_distinct=False
            ),
        ]
        verbose_name = verbose_name_plural = "关键字库 Keyword rule"

    def __str__(self) -> str:
        return f"{self.keyword} → {self.department}"


class EventCluster(models.Model):
    """A case: reports of the same category close in space and time, counted once on maps."""

    category = models.ForeignKey(Category, models.PROTECT, related_name="clusters")
    centroid = models.PointField("中心", srid=4326)
    first_seen = models.DateTimeField("首次")
    last_seen = models.DateTimeField("最近")
    event_count = models.PositiveIntegerField("事件数", default=0)

    class Meta:
        indexes = [models.Index(fields=["category", "last_seen"], name="eventcluster_category_seen")]
        verbose_name = verbose_name_plural = "事件聚类 Event cluster"

    def __str__(self) -> str:
        return f"cluster {self.pk} ({self.event_count})"


class Event(GridLinked):
    """民情事件: one report from one channel, from receipt to closure."""

    class Channel(models.TextChoices):
        HOTLINE = "hotline", _("12345 hotline")
        APP = "app", _("Xiaolan app")
        WEB = "web", _("Web message")
        MEDIATION = "mediation", _("Mediation")
        PETITION = "petition", _("Petition")
        GRID_PATROL = "grid_patrol", _("Grid patrol")
        DRONE_PATROL = "drone_patrol", _("Drone patrol")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        TRIAGED = "triaged", _("Triaged")
        ASSIGNED = "assigned", _("Assigned")
        IN_PROGRESS = "in_progress", _("In progress")
        RESOLVED = "resolved", _("Resolved")
        VERIFIED = "verified", _("Verified")
        CLOSED = "closed", _("Closed")
        RETURNED = "returned", _("Returned")
        SUSPENDED = "suspended", _("Suspended")
        REOPENED = "reopened", _("Reopened")

    class GeocodeMethod(models.TextChoices):
        COORDINATES = "coordinates", _("Coordinates")
        ADDRESS = "address", _("Address match")
        MANUAL = "manual", _("Located by hand")
        NONE = "none", _("Not located")

    channel = models.CharField("渠道", max_length=12, choices=Channel.choices)
    external_id = models.CharField("外部编号", max_length=64, blank=True)
    category = models.ForeignKey(Category, models.PROTECT, related_name="events", verbose_name="分类")
    #: The citizen's text with any ID number or phone in it masked (layers.protection.personal.mask_free_text);
    #: the text as written is in ``description_cipher`` when masking changed it (revealed like a
    #: reporter's phone: POST /api/events/<id>/reveal, field "description").
    description = models.TextField("描述")
    description_cipher = models.TextField(blank=True, default="", db_default="", editable=False)
    reporter_name_cipher = models.TextField(blank=True, editable=False)
    reporter_name_masked = models.CharField("反映人", max_length=50, blank=True, editable=False)
    reporter_phone_digest = models.CharField(max_length=64, blank=True, editable=False)
    reporter_phone_cipher = models.TextField(blank=True, editable=False)
    reporter_phone_masked = models.CharField("联系电话", max_length=20, blank=True, editable=False)

    location = models.PointField("位置", srid=4326, null=True, blank=True)
    #: The coordinates as the client sent them: {"lon": …, "lat": …, "crs": "gcj02"}.
    location_input = models.JSONField("原始坐标", null=True, blank=True, editable=False)
    address_text = models.CharField("地址", max_length=300, blank=True)
    geocode_method = models.CharField("定位方式", max_length=12, choices=GeocodeMethod.choices, default="none")
    geocode_confidence = models.FloatField("定位置信度", null=True, blank=True)
    geocode_precision = models.CharField("定位精度", max_length=12, blank=True)
    matched_address = models.ForeignKey(
        Address,
        models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="匹配地址",
        # Like the grid links, a cache of the geocoder's answer: addresses are reloaded in bulk.
        db_constraint=False,
    )
    needs_location = models.BooleanField("待人工定位", default=False)
    #: How the address text matched the standard addresses when it was geocoded: matched,
    #: ambiguous (equally likely candidates in several small grids) or unmatched; empty when no
    #: text was geocoded (a report with coordinates). Read by the registry tasks.
    address_match = models.CharField(
        "地址匹配", max_length=10, choices=AddressMatch.choices, blank=True, default="", db_default=""
    )
    #: Codes of the standard addresses the geocoder offered for an unconfident answer, best first.
    address_candidates = models.JSONField("候选地址", default=list, blank=True, db_default=[], editable=False)

    status = models.CharField("状态", max_length=12, choices=Status.choices, default=Status.RECEIVED)
    department = models.ForeignKey(
        Department, models.PROTECT, null=True, blank=True, related_name="events", verbose_name="责任部门"
    )
    responsible_level = models.CharField("责任层级", max_length=10, choices=Level.choices, default=Level.COMMUNITY)
    joint_handling = models.BooleanField("联合处置", default=False)
    escalation_level = models.PositiveSmallIntegerField("升级次数", default=0)
    deadline = models.DateTimeField("办理时限", null=True, blank=True)
    reported_at = models.DateTimeField("反映时间")
    received_at = models.DateTimeField("接收时间")
    resolved_at = models.DateTimeField("办结时间", null=True, blank=True)
    closed_at = models.DateTimeField("结案时间", null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField("满意度", null=True, blank=True)
    reopen_count = models.PositiveSmallIntegerField("重办次数", default=0)
    # A cache derived from place and time (layers.services.clusters), rebuilt wholesale after bulk
    # loads: without a constraint, a rebuild of a million events skips a million trigger checks.
    cluster = models.ForeignKey(
        EventCluster,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name="聚类",
        db_constraint=False,
    )
    #: Why dispatch decided as it did: {"rules": [...], "department": …, "level": …, "reason": …}.
    dispatch_trace = models.JSONField("分拨依据", default=dict, blank=True, editable=False)
    #: The number of the keyword library version (KeywordLibrary.number) that routed the case;
    #: empty when no approved version existed (or for demo data, which is not routed).
    rule_version = models.PositiveIntegerField("关键字库版本", null=True, blank=True, editable=False)
    #: Bumped by every transition; a client may send the version it saw (optimistic locking).
    version = models.PositiveIntegerField(default=0, editable=False)

    class Meta(GridLinked.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="event_channel_external_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="event_satisfaction_1_5",
            ),
        ]
        indexes = [
            *GridLinked.Meta.indexes,
            # Keyset pagination of the event list, newest first.
            models.Index(fields=["received_at", "id"], name="event_received_id"),
            models.Index(fields=["status"], name="event_status"),
            # The manual-location queue and the escalation scan read small slices of the table.
            models.Index(fields=["received_at"], condition=Q(needs_location=True), name="event_location_queue"),
            models.Index(
                fields=["deadline"],
                condition=Q(status__in=["received", "triaged", "assigned", "in_progress", "returned", "reopened"]),
                name="event_open_deadline",
            ),
            # Residents' reports per phone in a recent window (the per-phone limit of /report/).
            models.Index(
                fields=["reporter_phone_digest", "received_at"],
                condition=~Q(reporter_phone_digest=""),
                name="event_reporter_phone",
            ),
        ]
        verbose_name = verbose_name_plural = "民情事件 Event"

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.external_id or self.pk}"


class EventTransition(models.Model):
    """One step of an event's life. Append-only: the database refuses UPDATE and DELETE
    (a trigger from the migration), so the log is evidence, not a cache."""

    # DO_NOTHING without a constraint: deleting an event must not try to delete its log, which
    # the trigger would refuse; events are never deleted in practice.
    event = models.ForeignKey(Event, models.DO_NOTHING, related_name="transitions", db_constraint=False, db_index=False)
    from_status = models.CharField("原状态", max_length=12, blank=True)
    to_status = models.CharField("新状态", max_length=12)
    action = models.CharField("动作", max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    actor_label = models.CharField("操作人", max_length=100, blank=True)
    at = models.DateTimeField("时间")
    reason = models.TextField("原因", blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["event_id", "at", "id"]
        indexes = [models.Index(fields=["event", "at"], name="eventtransition_event_at")]
        verbose_name = verbose_name_plural = "流转记录 Event transition"

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status or '∅'} → {self.to_status}"
