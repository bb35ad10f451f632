"""The 一标三实 registry: standard addresses, buildings and dwellings, persons, units, compounds.

Every row carries its links up the hierarchy (small grid → medium → large → community → street
→ district). They are derived from the row's location by set-based SQL in
:mod:`layers.services.linking` and redone for the affected rows whenever a grid is redrawn.
``district_code`` is the 12-digit code of the district, the distribution key should the large
tables ever be spread over Citus.
"""

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.utils.translation import gettext_lazy as _

from .areas import Grid, Region


class GridLinked(models.Model):
    # The six links are a cache derived from geometry by layers.services.linking, always written
    # from the grid chain itself, so they carry no foreign-key constraint: six deferred trigger
    # checks per row would triple the cost of a million-row import. Relinking repairs them.
    grid = models.ForeignKey(
        Grid,
        models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="小网格",
        limit_choices_to={"level": "small"},
        db_constraint=False,
    )
    # Scope filters go by small grid, community, street or district; the medium and large links
    # are read through joins, so they carry no index of their own (every index slows bulk loads).
    grid_medium = models.ForeignKey(
        Grid,
        models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
        db_constraint=False,
    )
    grid_large = models.ForeignKey(
        Grid,
        models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
        db_constraint=False,
    )
    community = models.ForeignKey(
        Region, models.DO_NOTHING, null=True, blank=True, related_name="+", editable=False, db_constraint=False
    )
    street = models.ForeignKey(
        Region, models.DO_NOTHING, null=True, blank=True, related_name="+", editable=False, db_constraint=False
    )
    district_code = models.CharField(max_length=12, blank=True, editable=False)

    class Meta:
        abstract = True
        # Plain btree indexes declared here, not db_index=True: the cluster runs in the C collation,
        # where a btree already serves LIKE 'prefix%', so Django's extra "_like" indexes are waste.
        indexes = [models.Index(fields=["district_code"], name="%(class)s_district")]


class Compound(GridLinked):
    """小区: a residential compound, the smallest governance cell inside a small grid."""

    code = models.CharField("小区编码", max_length=32)
    name = models.CharField("名称", max_length=100)
    boundary = models.MultiPolygonField("边界", srid=4326)

    class Meta(GridLinked.Meta):
        constraints = [models.UniqueConstraint(fields=["code"], name="compound_code_unique")]
        indexes = [*GridLinked.Meta.indexes]
        verbose_name = verbose_name_plural = "小区 Compound"

    def __str__(self) -> str:
        return self.name


class Building(GridLinked):
    """实有房屋: a building footprint; its dwellings are the 户室 inside it."""

    class Use(models.TextChoices):
        RESIDENTIAL = "residential", _("Residential")
        COMMERCIAL = "commercial", _("Commercial")
        MIXED = "mixed", _("Mixed")
        PUBLIC = "public", _("Public service")
        INDUSTRIAL = "industrial", _("Industrial")
        OTHER = "other", _("Other")

    code = models.CharField("房屋编码", max_length=32)
    name = models.CharField("名称", max_length=100, blank=True)
    footprint = models.PolygonField("轮廓", srid=4326)
    floors = models.PositiveSmallIntegerField("层数", null=True, blank=True)
    use = models.CharField("用途", max_length=12, choices=Use.choices, default=Use.RESIDENTIAL)
    compound = models.ForeignKey(Compound, models.SET_NULL, null=True, blank=True, related_name="buildings")

    class Meta(GridLinked.Meta):
        constraints = [models.UniqueConstraint(fields=["code"], name="building_code_unique")]
        indexes = [*GridLinked.Meta.indexes]
        verbose_name = verbose_name_plural = "房屋 Building"

    def __str__(self) -> str:
        return self.name or self.code


class Address(GridLinked):
    """标准地址: a structured address with one point and a stable code."""

    code = models.CharField("地址编码", max_length=32)
    district_name = models.CharField("区县", max_length=50, blank=True)
    street_name = models.CharField("街道", max_length=50, blank=True)
    road = models.CharField("道路", max_length=50, blank=True)
    door_number = models.CharField("门牌号", max_length=20, blank=True)
    compound_name = models.CharField("小区", max_length=100, blank=True)
    building_number = models.CharField("楼栋", max_length=20, blank=True)
    entrance = models.CharField("单元", max_length=10, blank=True)
    floor = models.CharField("楼层", max_length=10, blank=True)
    room = models.CharField("室", max_length=20, blank=True)
    full_text = models.CharField("规范全称", max_length=300)
    location = models.PointField("位置", srid=4326)
    building = models.ForeignKey(Building, models.SET_NULL, null=True, blank=True, related_name="addresses")
    #: When a grid worker last confirmed the address on the spot (a registry task or a visit);
    #: a report matched to it confirms it too (read from the events, not copied here).
    confirmed_at = models.DateTimeField("核实时间", null=True, blank=True)

    class Meta(GridLinked.Meta):
        constraints = [models.UniqueConstraint(fields=["code"], name="address_code_unique")]
        indexes = [*GridLinked.Meta.indexes, models.Index(fields=["road"], name="address_road")]
        verbose_name = verbose_name_plural = "标准地址 Address"

    def __str__(self) -> str:
        return self.full_text


class Dwelling(GridLinked):
    """户室: one dwelling (or shop) inside a building, at a room-level address."""

    class Use(models.TextChoices):
        RESIDENTIAL = "residential", _("Dwelling")
        COMMERCIAL = "commercial", _("Business")
        OFFICE = "office", _("Office")
        OTHER = "other", _("Other")

    class Occupancy(models.TextChoices):
        OWNER = "owner", _("Owner-occupied")
        RENTED = "rented", _("Rented")
        VACANT = "vacant", _("Vacant")
        OTHER = "other", _("Other")

    code = models.CharField("户室编码", max_length=40)
    building = models.ForeignKey(Building, models.SET_NULL, null=True, blank=True, related_name="dwellings")
    address = models.ForeignKey(Address, models.SET_NULL, null=True, blank=True, related_name="dwellings")
    use = models.CharField("用途", max_length=12, choices=Use.choices, default=Use.RESIDENTIAL)
    occupancy = models.CharField("居住状态", max_length=8, choices=Occupancy.choices, default=Occupancy.OWNER)
    area_m2 = models.FloatField("面积(m²)", null=True, blank=True)

    class Meta(GridLinked.Meta):
        constraints = [models.UniqueConstraint(fields=["code"], name="dwelling_code_unique")]
        indexes = [*GridLinked.Meta.indexes]
        verbose_name = verbose_name_plural = "户室 Dwelling"

    def __str__(self) -> str:
        return self.code


class Person(GridLinked):
    """实有人口: a resident. The ID number and phone are personal data: only their masked form,
    an AES-GCM ciphertext and a keyed digest (for exact lookup and upsert) are stored."""

    class Gender(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")

    class Residence(models.TextChoices):
        REGISTERED = "registered", _("Registered resident")
        FLOATING = "floating", _("Floating resident")

    class CareTag(models.TextChoices):
        ELDERLY_ALONE = "elderly_alone", _("Elderly living alone")
        DISABLED = "disabled", _("Disabled")
        LOW_INCOME = "low_income", _("Low income")
        LEFT_BEHIND_CHILD = "left_behind_child", _("Left-behind child")
        VETERAN = "veteran", _("Veteran")
        KEY_PERSON = "key_person", _("Key person")

    name = models.CharField("姓名", max_length=50)
    id_number_digest = models.CharField(max_length=64, editable=False)
    id_number_cipher = models.TextField(editable=False)
    id_number_masked = models.CharField("身份证号", max_length=18, editable=False)
    phone_digest = models.CharField(max_length=64, blank=True, editable=False)
    phone_cipher = models.TextField(blank=True, editable=False)
    phone_masked = models.CharField("电话", max_length=20, blank=True, editable=False)
    gender = models.CharField("性别", max_length=1, choices=Gender.choices)
    birth_date = models.DateField("出生日期")
    residence = models.CharField("户籍类型", max_length=10, choices=Residence.choices)
    care_tags = ArrayField(models.CharField(max_length=20, choices=CareTag.choices), default=list, blank=True)
    dwelling = models.ForeignKey(Dwelling, models.SET_NULL, null=True, blank=True, related_name="residents")
    address = models.ForeignKey(Address, models.SET_NULL, null=True, blank=True, related_name="residents")

    class Meta(GridLinked.Meta):
        constraints = [models.UniqueConstraint(fields=["id_number_digest"], name="person_id_number_digest_unique")]
        indexes = [*GridLinked.Meta.indexes, models.Index(fields=["phone_digest"], name="person_phone_digest")]
        verbose_name = verbose_name_plural = "实有人口 Person"

    def __str__(self) -> str:
        return f"{self.name} {self.id_number_masked}"


class Unit(GridLinked):
    """实有单位: a business or organisation, keyed by its unified social credit code."""

    class Kind(models.TextChoices):
        ENTERPRISE = "enterprise", _("Enterprise")
        INDIVIDUAL = "individual", _("Individual business")
        GOVERNMENT = "government", _("Government body")
        INSTITUTION = "institution", _("Public institution")
        SOCIAL = "social", _("Social organisation")
        OTHER = "other", _("Other")

    credit_code = models.CharField("统一社会信用代码", max_length=18)
    name = models.CharField("名称", max_length=200)
    kind = models.CharField("类型", max_length=12, choices=Kind.choices, default=Kind.ENTERPRISE)
    address = models.ForeignKey(Address, models.SET_NULL, null=True, blank=True, related_name="units")
    address_text = models.CharField("地址", max_length=300, blank=True)
    location = models.PointField("位置", srid=4326)

    class Meta(GridLinked.Meta):
        constraints = [models.UniqueConstraint(fields=["credit_code"], name="unit_credit_code_unique")]
        indexes = [*GridLinked.Meta.indexes]
        verbose_name = verbose_name_plural = "实有单位 Unit"

    def __str__(self) -> str:
        return self.name
