"""A tiny city for the HTTP edge: the region chain, one community's grids and one row of each
registry table inside the west small grid."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.gis.geos import Point, Polygon

from layers.models import Address, BoundaryVersion, Building, Compound, Dwelling, Grid, Person, Region, Unit
from layers.protection import personal
from layers.services import linking

from .factories import ORIGIN, box, grid_tree, region_chain

#: A point in the west small grid, and one in the east small grid.
WEST_POINT = (ORIGIN[0] + 0.002, ORIGIN[1] + 0.005)
EAST_POINT = (ORIGIN[0] + 0.008, ORIGIN[1] + 0.005)
ID_NUMBER = "62010219800101123X"
PHONE = "13912345678"


@dataclass
class City:
    regions: dict[str, Region]
    grids: dict[str, Grid]
    compound: Compound
    building: Building
    address: Address
    dwelling: Dwelling
    person: Person
    unit: Unit
    version: BoundaryVersion


def tiny_city() -> City:
    """The region chain, one community's grids, and one row of each registry table inside the
    west small grid, linked as the importers link them."""
    regions = region_chain()
    grids = grid_tree(regions["community"])
    lon, lat = WEST_POINT
    compound = Compound.objects.create(
        code="C001", name="畅家巷小区", boundary=box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    )
    footprint = Polygon.from_bbox((lon - 0.0002, lat - 0.0002, lon + 0.0002, lat + 0.0002))
    footprint.srid = 4326
    building = Building.objects.create(code="B001", name="1号楼", floors=6, compound=compound, footprint=footprint)
    address = Address.objects.create(
        code="A001",
        district_name="城关区",
        street_name="酒泉路街道",
        road="畅家巷",
        door_number="1号",
        building_number="1",
        entrance="1",
        room="101",
        full_text="城关区酒泉路街道畅家巷1号1号楼1单元101室",
        location=Point(lon, lat, srid=4326),
        building=building,
    )
    dwelling = Dwelling.objects.create(code="A001-101", building=building, address=address, area_m2=80.5)
    id_number, phone = personal.protect_id_number(ID_NUMBER), personal.protect_phone(PHONE)
    person = Person.objects.create(
        name="张三",
        id_number_digest=id_number.digest,
        id_number_cipher=id_number.cipher,
        id_number_masked=id_number.masked,
        phone_digest=phone.digest,
        phone_cipher=phone.cipher,
        phone_masked=phone.masked,
        gender="M",
        birth_date=dt.date(1980, 1, 1),
        residence="registered",
        dwelling=dwelling,
        address=address,
    )
    unit = Unit.objects.create(
        credit_code="91620102MA71234567", name="畅家巷便利店", address=address, location=Point(lon, lat, srid=4326)
    )
    version = BoundaryVersion.objects.create(
        subject="grid",
        code=grids["west"].code,
        level="small",
        boundary=grids["west"].boundary,
        valid_from=dt.date(2020, 1, 1),
        valid_to=dt.date(2024, 1, 1),
        source="test",
    )
    linking.relink_all()
    for row in (compound, building, address, dwelling, person, unit):
        row.refresh_from_db()
    return City(regions, grids, compound, building, address, dwelling, person, unit, version)
