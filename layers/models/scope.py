"""A reader's data scope (数据范围): the part of the city whose rows they may read.

A user without a :class:`ReaderScope` row gets the default of their role (see
:mod:`layers.protection.scope`): the whole city for administrators, the command center, analysts, data
stewards and intake systems; the small grids they work (``Grid.worker``) for grid workers;
nothing for anyone else, street and community staff included until a row names their region.
A row, when present, is the whole answer: it narrows (or widens) whatever the role implies.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models

from .areas import Grid, Region


class ReaderScope(models.Model):
    """One user's scope: the city, or a set of districts, streets, communities or grids."""

    class Level(models.TextChoices):
        CITY = "city", "全市 city"
        DISTRICT = "district", "区县 district"
        STREET = "street", "街道 street"
        COMMUNITY = "community", "社区 community"
        GRIDS = "grids", "网格 grids"

    #: The region level each scope level names in ``regions`` (grids name ``grids`` instead).
    REGION_LEVEL = {Level.DISTRICT: "district", Level.STREET: "street", Level.COMMUNITY: "community"}

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="reader_scope", verbose_name="用户 user"
    )
    level = models.CharField("范围层级 level", max_length=10, choices=Level.choices)
    regions = models.ManyToManyField(
        Region,
        blank=True,
        related_name="+",
        verbose_name="区划 regions",
        help_text="The districts, streets or communities of the scope (all of the level chosen)",
    )
    grids = models.ManyToManyField(
        Grid,
        blank=True,
        related_name="+",
        verbose_name="网格 grids",
        help_text="For the level 'grids': small, medium or large grids (a larger grid means all its small grids)",
    )
    note = models.CharField("说明 note", max_length=200, blank=True)
    updated_at = models.DateTimeField("更新时间 updated", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "数据范围 Reader scope"

    def __str__(self) -> str:
        return f"{self.user} · {self.get_level_display()}"
