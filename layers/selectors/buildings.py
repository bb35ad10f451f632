"""楼盘表 — the building sheet: a building's dwellings as a floors × units matrix.

Each cell is a dwelling (户室) at its floor, entrance (单元) and room, with its use, occupancy,
household size (residents registered there) and — for readers who see them
(``Reader.reads_care_tags``: the grid's worker, community and street staff, the command centre) —
the household's care tags (关爱标签). Beside the matrix: the units (businesses) at the building's
addresses or inside its footprint, and the open cases matched to it or lying inside it.

**Masking by role.** A reader without the care tags gets no value derived from them at all —
no per-cell tag, no per-floor or per-building count — so what they see does not change when a
tag does, and no combination of their answers can rebuild one (a test changes the tags and
compares). No names, ID numbers or phones are in the sheet for anyone: the residents' list of
the tablet (masked, :mod:`layers.protection.personal`) is where people are named.

Rows come from three statements over any number of buildings (one building for the API, every
building of a grid for the tablet's offline package); the matrix is shaped in Python from those
rows (a building holds at most a few hundred dwellings).
"""

from __future__ import annotations

import re

from django.db import connection

from layers.protection.access import Reader
from layers.protection.scope import Scope, named_parameters

from ..models import Building
from ..services.events import OPEN_STATUSES

# Dwellings with their place in the building and their household, one row each. The care tags
# are read only when the reader may see them (the parameter turns the column into NULL in SQL).
_DWELLINGS_SQL = """
SELECT d.building_id, d.code, coalesce(a.entrance, ''), coalesce(a.floor, ''), coalesce(a.room, ''),
       d.use, d.occupancy, count(p.id) AS size,
       CASE WHEN %(care)s THEN (
           SELECT coalesce(array_agg(DISTINCT tag ORDER BY tag), '{}')
           FROM layers_person q, unnest(q.care_tags) AS tag WHERE q.dwelling_id = d.id) END
FROM layers_dwelling d
LEFT JOIN layers_address a ON a.id = d.address_id
LEFT JOIN layers_person p ON p.dwelling_id = d.id
WHERE d.building_id = ANY(%(buildings)s)
GROUP BY d.id, a.entrance, a.floor, a.room
"""

_UNITS_SQL = """
SELECT b.id, u.credit_code, u.name, u.kind, u.address_text, coalesce(a.floor, '')
FROM layers_building b
JOIN layers_unit u ON ST_Intersects(b.footprint, u.location)
                   OR u.address_id IN (SELECT x.id FROM layers_address x WHERE x.building_id = b.id)
LEFT JOIN layers_address a ON a.id = u.address_id
WHERE b.id = ANY(%(buildings)s)
ORDER BY b.id, u.name, u.credit_code
"""

_CASES_SQL = """
SELECT b.id, e.id, c.code, c.name, c.name_en, e.status, e.received_at, e.deadline,
       coalesce(a.entrance, ''), coalesce(a.floor, ''), coalesce(a.room, '')
FROM layers_building b
JOIN layers_event e ON e.status = ANY(%(open)s)
                   AND (ST_Intersects(b.footprint, e.location)
                        OR e.matched_address_id IN (SELECT x.id FROM layers_address x WHERE x.building_id = b.id))
JOIN layers_category c ON c.id = e.category_id
LEFT JOIN layers_address a ON a.id = e.matched_address_id
WHERE b.id = ANY(%(buildings)s)
ORDER BY b.id, e.received_at DESC, e.id
"""

_BUILDINGS_SQL = """
SELECT b.id, b.code, b.name, b.floors, b.use, m.name, g.code, g.name,
       (SELECT x.full_text FROM layers_address x WHERE x.building_id = b.id ORDER BY x.room <> '', x.floor <> '',
        x.code LIMIT 1)
FROM layers_building b
LEFT JOIN layers_compound m ON m.id = b.compound_id
LEFT JOIN layers_grid g ON g.id = b.grid_id
WHERE b.id = ANY(%(buildings)s)
"""

_NUMBER = re.compile(r"-?\d+")


def _order(text: str) -> tuple:
    """Sort key of a floor, entrance or room: by its number where it has one, then as text.

    >>> sorted(["10", "2", "B1", ""], key=_order)
    ['', '2', '10', 'B1']
    """
    found = _NUMBER.fullmatch(text)
    return (0, int(found.group()), "") if found else (0 if text == "" else 1, 0, text)


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def building_sheets(*, building_ids: list[int], care: bool) -> dict[int, dict]:
    """The sheets of these buildings by id (see the module docstring); ``care``: with the
    households' care tags."""
    from ..names import localized

    params = {"buildings": list(building_ids), "care": care, "open": [str(s) for s in OPEN_STATUSES]}
    sheets: dict[int, dict] = {}
    for bid, code, name, floors, use, compound, grid_code, grid_name, address in _rows(_BUILDINGS_SQL, params):
        sheets[bid] = {
            "building": {
                "code": code,
                "name": name,
                "floors": floors,
                "use": use,
                "compound": compound,
                "address": address,
                "grid": {"code": grid_code, "name": grid_name} if grid_code else None,
            },
            "care_visible": care,
            "entrances": [],
            "floors": [],
            "units": [],
            "cases": [],
            "totals": {"dwellings": 0, "occupied": 0, "vacant": 0, "residents": 0},
        }
    cells: dict[int, list[dict]] = {bid: [] for bid in sheets}
    for bid, dcode, entrance, floor, room, use, occupancy, size, tags in _rows(_DWELLINGS_SQL, params):
        cell = {
            "code": dcode,
            "entrance": entrance,
            "floor": floor,
            "room": room,
            "use": use,
            "occupancy": occupancy,
            "household_size": size,
            "open_cases": 0,
        }
        if care:
            cell["care_tags"] = list(tags or [])
        cells[bid].append(cell)
    for bid, eid, ccode, cname, cname_en, status, received, deadline, entrance, floor, room in _rows(
        _CASES_SQL, params
    ):
        sheets[bid]["cases"].append(
            {
                "id": eid,
                "category": ccode,
                "category_name": localized(cname, cname_en),
                "status": status,
                "received_at": received.isoformat(),
                "deadline": deadline.isoformat() if deadline else None,
                "entrance": entrance,
                "floor": floor,
                "room": room,
            }
        )
    for bid, credit, uname, kind, utext, floor in _rows(_UNITS_SQL, params):
        sheets[bid]["units"].append(
            {"credit_code": credit, "name": uname, "kind": kind, "address": utext, "floor": floor or "1"}
        )
    for bid, sheet in sheets.items():
        _shape(sheet, cells[bid])
    return sheets


def _shape(sheet: dict, cells: list[dict]) -> None:
    """Fill the matrix: floors top first, each with its cells by entrance and room."""
    rooms = {(c["entrance"], c["floor"], c["room"]): c for c in cells}
    for case in sheet["cases"]:
        cell = rooms.get((case["entrance"], case["floor"], case["room"]))
        if cell is not None:
            cell["open_cases"] += 1
    sheet["entrances"] = sorted({c["entrance"] for c in cells}, key=_order)
    by_floor: dict[str, list[dict]] = {}
    for cell in cells:
        by_floor.setdefault(cell["floor"], []).append(cell)
    sheet["floors"] = [
        {"floor": floor, "cells": sorted(by_floor[floor], key=lambda c: (_order(c["entrance"]), _order(c["room"])))}
        for floor in sorted(by_floor, key=_order, reverse=True)
    ]
    totals = sheet["totals"]
    totals["dwellings"] = len(cells)
    totals["vacant"] = sum(1 for c in cells if c["occupancy"] == "vacant")
    totals["occupied"] = totals["dwellings"] - totals["vacant"]
    totals["residents"] = sum(c["household_size"] for c in cells)
    totals["open_cases"] = len(sheet["cases"])
    totals["units"] = len(sheet["units"])


def building_in_scope(*, scope: Scope, code: str | None = None, lon: float | None = None, lat: float | None = None):
    """The id of the building with ``code``, or whose footprint holds the WGS84 point, within
    ``scope``; ``None`` when there is none (or none the reader may read)."""
    if code is not None:
        return Building.objects.filter(code=code).filter(scope.q()).values_list("id", flat=True).first()
    condition, values = named_parameters(*scope.linked("b"))
    rows = _rows(
        f"""SELECT b.id FROM layers_building b
            WHERE ST_Intersects(b.footprint, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)) AND {condition}
            ORDER BY ST_Area(b.footprint), b.id LIMIT 1""",
        {"lon": lon, "lat": lat, **values},
    )
    return rows[0][0] if rows else None


def sheet_labels() -> dict[str, dict[str, str]]:
    """Display names of the coded values a sheet carries (occupancy, care tags, unit kinds, case
    statuses), for the pages that fetch sheets one at a time (the grid package has its own)."""
    from ..models import Dwelling, Event, Person, Unit

    choices = {
        "occupancy": Dwelling.Occupancy,
        "care_tags": Person.CareTag,
        "unit_kind": Unit.Kind,
        "status": Event.Status,
    }
    return {key: {value: str(label) for value, label in values.choices} for key, values in choices.items()}


def building_sheet(*, reader: Reader, building_id: int) -> dict:
    """One building's sheet for ``reader`` (its id from :func:`building_in_scope`)."""
    return building_sheets(building_ids=[building_id], care=reader.reads_care_tags)[building_id]
