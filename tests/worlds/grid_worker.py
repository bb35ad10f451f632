"""A grid worker and a populated small grid, for the tablet's API and browser tests.

:func:`populate` fills a small grid with buildings, room-level addresses, households (dwellings),
residents (some care-tagged; ID numbers and phones protected as the importers protect them) and
units, laid out on a lattice inside the grid's bounding box and linked by the real linking SQL.
"""

from __future__ import annotations

import datetime as dt
import math

from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point, Polygon

from layers.models import Address, Building, Dwelling, Grid, Person, Unit
from layers.protection import personal
from layers.services import linking

FAMILY = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CARE_CYCLE = ("elderly_alone", "disabled", "low_income", "left_behind_child", "veteran", "key_person")


def grid_worker(django_user_model, username: str, grid: Grid | None):
    """A user in the grid_worker group working ``grid`` (if any); password ``<username>-password``."""
    user = django_user_model.objects.create_user(username, f"{username}@example.org", f"{username}-password")
    user.groups.add(Group.objects.get_or_create(name="grid_worker")[0])
    if grid is not None:
        Grid.objects.filter(pk=grid.pk).update(worker=user)
    return user


def populate(
    grid: Grid,
    *,
    households: int,
    prefix: str,
    per_building: int = 24,
    units: int | None = None,
    first: tuple[str, str] | None = None,
) -> dict:
    """Fill ``grid`` with ``households`` dwellings (``per_building`` per building), 2–3 residents
    each (every 9th resident care-tagged), one room address per dwelling plus a door address per
    building, and ``units`` units (default one per ten households). Codes start with ``prefix``
    (one letter; it also keeps ID numbers and phones apart between calls); ``first`` gives the
    first resident's ID number and phone. Returns the counts."""
    region = f"62{ord(prefix[0]) % 100:02d}02"
    lon0, lat0, lon1, lat1 = grid.boundary.extent
    buildings_n = math.ceil(households / per_building)
    columns = math.ceil(math.sqrt(buildings_n))
    rows_n = math.ceil(buildings_n / columns)
    step_x, step_y = (lon1 - lon0) / (columns + 1), (lat1 - lat0) / (rows_n + 1)
    half = min(step_x, step_y) / 4
    buildings, doors = [], []
    for b in range(buildings_n):
        x, y = lon0 + step_x * (b % columns + 1), lat0 + step_y * (b // columns + 1)
        footprint = Polygon.from_bbox((x - half, y - half / 2, x + half, y + half / 2))
        footprint.srid = 4326
        buildings.append(Building(code=f"{prefix}B{b:03d}", name=f"{b + 1}号楼", floors=6, footprint=footprint))
    Building.objects.bulk_create(buildings)
    for b, building in enumerate(buildings):
        doors.append(
            Address(
                code=f"{prefix}A{b:03d}",
                road="南关巷",
                door_number=f"{b + 1}号",
                building_number=f"{b + 1}号楼",
                full_text=f"甘肃省兰州市城关区酒泉路街道南关巷{b + 1}号{b + 1}号楼",
                location=Point(*building.footprint.centroid.coords, srid=4326),
                building=building,
            )
        )
    rooms = []
    for h in range(households):
        building = buildings[h // per_building]
        entrance, floor, room = h % per_building // 12 + 1, h % 12 // 2 + 1, h % 2 + 1
        rooms.append(
            Address(
                code=f"{prefix}A{h:03d}R",
                road="南关巷",
                door_number=doors[h // per_building].door_number,
                building_number=building.name,
                entrance=f"{entrance}单元",
                floor=f"{floor}层",
                room=f"{floor}0{room}室",
                full_text=f"{doors[h // per_building].full_text}{entrance}单元{floor}0{room}室",
                location=doors[h // per_building].location,
                building=building,
            )
        )
    Address.objects.bulk_create(doors + rooms)
    dwellings = [
        Dwelling(code=f"{prefix}H{h:03d}", building=buildings[h // per_building], address=rooms[h], area_m2=60 + h % 50)
        for h in range(households)
    ]
    Dwelling.objects.bulk_create(dwellings)
    people, n = [], 0
    for h, dwelling in enumerate(dwellings):
        for _ in range(2 + h % 2):
            id_number = f"{region}{1940 + n % 70}{1 + n % 12:02d}{1 + n % 28:02d}{n:04d}"
            phone = f"139{ord(prefix[0]) % 100:02d}{n:06d}"
            if n == 0 and first is not None:
                id_number, phone = first
            ident, tel = personal.protect_id_number(id_number), personal.protect_phone(phone)
            people.append(
                Person(
                    name=FAMILY[n % len(FAMILY)] + GIVEN[n * 7 % len(GIVEN)] + GIVEN[n * 3 % len(GIVEN)],
                    id_number_digest=ident.digest,
                    id_number_cipher=ident.cipher,
                    id_number_masked=ident.masked,
                    phone_digest=tel.digest,
                    phone_cipher=tel.cipher,
                    phone_masked=tel.masked,
                    gender="MF"[n % 2],
                    birth_date=dt.date(1940 + n % 70, 1 + n % 12, 1 + n % 28),
                    residence=("registered", "floating")[n % 5 == 0],
                    care_tags=[CARE_CYCLE[n // 9 % len(CARE_CYCLE)]] if n % 9 == 4 else [],
                    dwelling=dwelling,
                    address=dwelling.address,
                )
            )
            n += 1
    Person.objects.bulk_create(people)
    units_n = households // 10 if units is None else units
    Unit.objects.bulk_create(
        Unit(
            credit_code=f"{prefix}U{u:03d}".ljust(18, "0"),
            name=f"南关巷{u + 1}号商铺",
            address_text=doors[u % len(doors)].full_text,
            location=Point(doors[u % len(doors)].location.x + half * 1.5, doors[u % len(doors)].location.y, srid=4326),
        )
        for u in range(units_n)
    )
    linking.relink_all()
    return {"buildings": buildings_n, "households": households, "residents": len(people), "units": units_n}
