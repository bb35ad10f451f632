"""Administrative regions (city › district › street › community) and the three-level grids.

Current boundaries live on the row itself (``boundary`` with ``valid_from``); when one is
redrawn the old shape moves to :class:`BoundaryVersion` with its ``valid_to``, so "which grid
held this point on that date" stays answerable without breaking foreign keys.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Region(models.Model):
    class Level(models.TextChoices):
        CITY = "city", _("City")
        DISTRICT = "district", _("District")
        STREET = "street", _("Street or township")
        COMMUNITY = "community", _("Community or village")

    #: The parent level each level hangs under; the city's parent is the province (not stored).
    PARENT_LEVEL = {Level.DISTRICT: Level.CITY, Level.STREET: Level.DISTRICT, Level.COMMUNITY: Level.STREET}

    code = models.CharField("统计用区划代码", max_length=12, unique=True, help_text="12-digit statistical code")
    name = models.CharField("名称", max_length=100)
    level = models.CharField("层级", max_length=10, choices=Level.choices, db_index=True)
    parent = models.ForeignKey("self", models.PROTECT, null=True, blank=True, related_name="children")
    boundary = models.MultiPolygonField("边界", srid=4326, null=True, blank=True)
    valid_from = models.DateField("边界生效日期", null=True, blank=True)
    boundary_source = models.CharField("边界来源", max_length=200, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = verbose_name_plural = "行政区划 Region"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Grid(models.Model):
    class Level(models.TextChoices):
        LARGE = "large", _("Large grid")
        MEDIUM = "medium", _("Medium grid")
        SMALL = "small", _("Small grid")

    PARENT_LEVEL = {Level.MEDIUM: Level.LARGE, Level.SMALL: Level.MEDIUM}

    code = models.CharField("网格编码", max_length=24, unique=True, help_text="community code + serial")
    name = models.CharField("名称", max_length=100)
    level = models.CharField("层级", max_length=6, choices=Level.choices, db_index=True)
    parent = models.ForeignKey("self", models.PROTECT, null=True, blank=True, related_name="children")
    community = models.ForeignKey(Region, models.PROTECT, related_name="grids", limit_choices_to={"level": "community"})
    boundary = models.MultiPolygonField("边界", srid=4326)
    valid_from = models.DateField("边界生效日期", null=True, blank=True)
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="grids", verbose_name="网格员"
    )

    class Meta:
        ordering = ["code"]
        verbose_name = verbose_name_plural = "网格 Grid"
        constraints = [
            models.CheckConstraint(
                name="grid_parent_by_level",
                condition=Q(level="large", parent__isnull=True)
                | Q(level__in=["medium", "small"], parent__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class BoundaryVersion(models.Model):
    """A boundary that was replaced: which region or grid it belonged to and when it held."""

    class Subject(models.TextChoices):
        REGION = "region", _("Region")
        GRID = "grid", _("Grid")

    subject = models.CharField(max_length=6, choices=Subject.choices)
    code = models.CharField(max_length=24)
    level = models.CharField(max_length=10)
    boundary = models.MultiPolygonField(srid=4326)
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField()
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subject", "code", "valid_to"])]
        verbose_name = verbose_name_plural = "历史边界 Boundary version"

    def __str__(self) -> str:
        return f"{self.subject} {self.code} until {self.valid_to}"
