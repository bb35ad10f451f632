"""Two streets for data-scope tests, drawn with the factories' tiny geometry.

Street A (酒泉路街道) holds community A, the factories' square at ``ORIGIN``, split into the WEST
and EAST small grids (one medium, one large grid). Street B (张掖路街道) holds community B, the
same-sized square just NORTH of it, with one small grid. Each small grid holds one row of every
registry table (compound, building, address, dwelling, person, unit) and two events (a hazard
and a dispute), all linked by the real linking code. Codes and names say where a row lies, so
a leak shows in an assertion's message.

Readers: ``gridworker`` works WEST; ``street_a`` is street staff of street A (a scope row);
``analyst`` reads the city; ``nobody`` has no role (reads nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point, Polygon

from layers.models import Address, Building, Compound, Dwelling, Event, Grid, Person, ReaderScope, Region, Unit
from layers.protection import personal
from layers.protection.checksums import id_number_check_char
from layers.services import linking
from tests.worlds.events import report
from tests.worlds.factories import ORIGIN, SIZE, box, grid_tree, region_chain

#: A point inside each small grid (their centres).
IN_WEST = (ORIGIN[0] + SIZE / 4, ORIGIN[1] + SIZE / 2)
IN_EAST = (ORIGIN[0] + 3 * SIZE / 4, ORIGIN[1] + SIZE / 2)
IN_NORTH = (ORIGIN[0] + SIZE / 2, ORIGIN[1] + 3 * SIZE / 2)
POINTS = {"west": IN_WEST, "east": IN_EAST, "north": IN_NORTH}
ROADS = {"west": "畅家巷", "east": "静宁路", "north": "张掖路"}


@dataclass
class ScopeWorld:
    regions: dict[str, Region]
    grids: dict[str, Grid]
    #: Per small grid ("west", "east", "north"): its rows by kind ("address", "person", "event" …).
    rows: dict[str, dict[str, object]]
    users: dict[str, object]

    def ids(self, kind: str, *grids: str) -> set[int]:
        return {self.rows[grid][kind].pk for grid in grids}


def _id_number(serial: int) -> str:
    first17 = f"62010219800101{serial:03d}"
    return first17 + id_number_check_char(first17)


def _north(street_a: Region) -> tuple[dict[str, Region], dict[str, Grid]]:
    lon, lat = ORIGIN
    district = street_a.parent
    street = Region.objects.create(code="620102002000", name="张掖路街道", level="street", parent=district)
    community = Region.objects.create(
        code="620102002001", name="北社区", level="community", parent=street,
        boundary=box(lon, lat + SIZE, lon + SIZE, lat + 2 * SIZE),
    )  # fmt: skip
    shape = box(lon, lat + SIZE, lon + SIZE, lat + 2 * SIZE)
    large = Grid.objects.create(code=community.code + "01", name="北大网格", level="large", community=community,
                                boundary=shape)  # fmt: skip
    medium = Grid.objects.create(code=community.code + "0101", name="北中网格", level="medium", parent=large,
                                 community=community, boundary=shape)  # fmt: skip
    north = Grid.objects.create(code=community.code + "010101", name="北小网格", level="small", parent=medium,
                                community=community, boundary=shape)  # fmt: skip
    return {"street_b": street, "community_b": community}, {"north": north, "north_medium": medium}


def _registry(name: str, serial: int) -> dict[str, object]:
    """One row of each registry table around the centre of small grid ``name``."""
    lon, lat = POINTS[name]
    d = 0.0005
    compound = Compound.objects.create(
        code=f"C-{name}", name=f"{name}小区", boundary=box(lon - d, lat - d, lon + d, lat + d)
    )
    footprint = Polygon.from_bbox((lon - d / 4, lat - d / 4, lon + d / 4, lat + d / 4))
    footprint.srid = 4326
    building = Building.objects.create(code=f"B-{name}", name=f"{name}楼", compound=compound, footprint=footprint)
    address = Address.objects.create(
        code=f"A-{name}",
        district_name="城关区",
        road=ROADS[name],
        door_number=f"{serial}号",
        full_text=f"城关区{ROADS[name]}{serial}号",
        location=Point(lon, lat, srid=4326),
        building=building,
    )
    dwelling = Dwelling.objects.create(code=f"A-{name}-101", building=building, address=address)
    id_number = personal.protect_id_number(_id_number(serial))
    person = Person.objects.create(
        name=f"{name}居民",
        id_number_digest=id_number.digest,
        id_number_cipher=id_number.cipher,
        id_number_masked=id_number.masked,
        gender="M",
        birth_date=dt.date(1980, 1, 1),
        residence="registered",
        dwelling=dwelling,
        address=address,
    )
    unit = Unit.objects.create(
        credit_code=f"91620102MA7123456{serial}",
        name=f"{name}商店",
        address=address,
        location=Point(lon, lat, srid=4326),
    )
    return {"compound": compound, "building": building, "address": address, "dwelling": dwelling, "person": person,
            "unit": unit}  # fmt: skip


def _user(username: str, *, role: str | None = None, staff: bool = False):
    user = get_user_model().objects.create_user(username, password="scope-password", is_staff=staff)  # noqa: S106
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def scope_world() -> ScopeWorld:
    """Build the world (the seed taxonomy included: call from a test with the database)."""
    from layers.taxonomy import taxonomy_seed

    taxonomy_seed()
    regions = region_chain()
    grids = grid_tree(regions["community"])
    more_regions, more_grids = _north(regions["street"])
    regions |= more_regions
    grids |= more_grids
    rows = {name: _registry(name, serial) for serial, name in enumerate(("west", "east", "north"), start=1)}
    linking.relink_all()
    for name in rows:
        for row in rows[name].values():
            row.refresh_from_db()
        rows[name]["event"] = report(category="hazard.fire", description=f"{name}楼道堆放杂物", at=POINTS[name])
        rows[name]["dispute"] = report(category="dispute", description=f"{name}邻里纠纷", at=POINTS[name])
    users = {
        "gridworker": _user("gridworker", role="grid_worker"),
        "street_a": _user("street_a", role="street_staff", staff=True),
        "analyst": _user("analyst", role="analyst"),
        "nobody": _user("nobody"),
    }
    Grid.objects.filter(pk=grids["west"].pk).update(worker=users["gridworker"])
    scope = ReaderScope.objects.create(user=users["street_a"], level="street")
    scope.regions.add(regions["street"])
    # The street staff may use the admin: view permission on the registry and events.
    from django.contrib.auth.models import Permission

    users["street_a"].user_permissions.add(
        *Permission.objects.filter(content_type__app_label="layers", codename__startswith="view_")
    )
    assert Event.objects.filter(grid__isnull=True).count() == 0, "every event lies in a small grid"
    return ScopeWorld(regions, grids, rows, users)
