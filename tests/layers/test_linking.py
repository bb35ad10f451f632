"""Links of registry rows to their small grid and everything above it: addresses on the way in,
persons and dwellings through their address, units through their own point or their address."""

from __future__ import annotations

import pandas as pd
import pytest

from importers.base import run_import
from importers.registry import AddressImporter, PersonImporter, UnitImporter
from layers.models import Address, Dwelling, Person, Unit
from layers.services import linking
from layers.services.registry import dwellings_upsert
from tests.worlds.factories import ORIGIN, grid_tree, region_chain
from tests.worlds.registry_tables import (
    ADDRESS_HEADER,
    CREDIT_A,
    CREDIT_B,
    HALF,
    ID_F,
    ID_M,
    IN_EAST,
    IN_WEST,
    NO_GRID,
    address_row,
    write_csv,
)

pytestmark = pytest.mark.django_db

LINKS = ("grid", "grid_medium", "grid_large", "community", "street", "district_code")
UNLINKED = (None, None, None, None, None, "")


@pytest.fixture
def area():
    regions = region_chain()
    return regions | grid_tree(regions["community"])


def links_of(row) -> tuple:
    return tuple(getattr(row, name) for name in LINKS)


def chain(area, small: str) -> tuple:
    return (area[small], area["medium"], area["large"], area["community"], area["street"], area["district"].code)


def import_addresses(tmp_path, rows, name="addresses.csv"):
    return run_import(AddressImporter(), write_csv(tmp_path / name, ADDRESS_HEADER, rows), commit=True)


def test_every_address_gets_its_whole_chain_and_one_outside_the_grids_none(tmp_path, area):
    on_edge = (f"{HALF:.6f}", IN_WEST[1])
    report = import_addresses(
        tmp_path,
        [address_row("W", IN_WEST), address_row("E", IN_EAST), address_row("X", NO_GRID), address_row("B", on_edge)],
    )
    assert (report.counts["created"], report.counts["outside_grids"]) == (4, 1)
    addresses = {a.code: a for a in Address.objects.all()}
    assert links_of(addresses["W"]) == chain(area, "west")
    assert links_of(addresses["E"]) == chain(area, "east")
    assert links_of(addresses["X"]) == UNLINKED
    # On the shared edge both grids cover the point; the lowest grid id wins, whatever the plan.
    assert links_of(addresses["B"]) == chain(area, "west")


def test_a_corner_of_the_community_is_linked(tmp_path, area):
    import_addresses(tmp_path, [address_row("C", (f"{ORIGIN[0]:.6f}", f"{ORIGIN[1]:.6f}"))])
    assert links_of(Address.objects.get()) == chain(area, "west")


@pytest.fixture
def placed(tmp_path, area):
    """Addresses A1 (WEST), A2 (EAST) and X (no grid); dwelling D2 at A2."""
    import_addresses(tmp_path, [address_row("A1", IN_WEST), address_row("A2", IN_EAST), address_row("X", NO_GRID)])
    dwellings_upsert(
        frame=pd.DataFrame(
            [
                {
                    "code": "D2",
                    "building_code": "",
                    "address_code": "A2",
                    "use": "residential",
                    "occupancy": "owner",
                    "area_m2": 60.0,
                }
            ]
        )  # fmt: skip
    )
    return area


def import_persons(tmp_path, rows):
    header = ["name", "id_number", "residence", "address_code", "dwelling_code"]
    return run_import(PersonImporter(), write_csv(tmp_path / "persons.csv", header, rows), commit=True)


def test_persons_take_the_links_of_their_address_or_their_dwellings_address(tmp_path, placed):
    assert links_of(Dwelling.objects.get()) == chain(placed, "east")
    import_persons(
        tmp_path,
        [
            ["西", ID_F, "户籍", "A1", ""],
            ["东", ID_M, "户籍", "A1", "D2"],  # the dwelling's address wins over a stale address_code
            ["外", "62010219700101008X", "户籍", "X", ""],
        ],
    )
    people = {p.name: p for p in Person.objects.all()}
    assert (people["西"].address.code, links_of(people["西"])) == ("A1", chain(placed, "west"))
    assert (people["东"].address.code, people["东"].dwelling.code, links_of(people["东"])) == (
        "A2",
        "D2",
        chain(placed, "east"),
    )
    assert (people["外"].address.code, links_of(people["外"])) == ("X", UNLINKED)


def test_an_address_moved_by_a_reimport_takes_its_dwellings_and_residents_along(tmp_path, placed):
    import_persons(tmp_path, [["东", ID_M, "户籍", "", "D2"], ["东二", ID_F, "户籍", "A2", ""]])
    import_addresses(tmp_path, [address_row("A2", IN_WEST)], name="moved.csv")
    assert links_of(Dwelling.objects.get()) == chain(placed, "west")
    assert [links_of(p) for p in Person.objects.all()] == [chain(placed, "west")] * 2


def test_units_located_by_address_code_only_take_its_point_links_and_text(tmp_path, placed):
    header = ["credit_code", "name", "address_code", "lon", "lat"]
    rows = [[CREDIT_A, "按地址", "A2", "", ""], [CREDIT_B, "自带坐标", "A2", *IN_WEST]]
    run_import(UnitImporter(), write_csv(tmp_path / "units.csv", header, rows), commit=True)
    address = Address.objects.get(code="A2")
    by_address, own_point = Unit.objects.get(credit_code=CREDIT_A), Unit.objects.get(credit_code=CREDIT_B)
    assert (by_address.address, by_address.location, by_address.address_text) == (
        address,
        address.location,
        address.full_text,
    )
    assert links_of(by_address) == chain(placed, "east")
    # Its own lon/lat wins over the address's point, and the links follow the point.
    assert (own_point.address, own_point.location.coords) == (address, tuple(map(float, IN_WEST)))
    assert links_of(own_point) == chain(placed, "west")


def test_link_rewrites_only_rows_whose_links_changed(tmp_path, placed):
    assert linking.link(linking.ADDRESS) == 0
    Address.objects.filter(code="A1").update(grid=None, community=None, district_code="")
    assert linking.link(linking.ADDRESS) == 1
    assert links_of(Address.objects.get(code="A1")) == chain(placed, "west")
    assert linking.relink_all() == {table: 0 for table in
                                    ("layers_address", "layers_unit", "layers_building", "layers_compound",
                                     "layers_dwelling", "layers_person")}  # fmt: skip
