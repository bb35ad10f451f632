"""Data scope (layers/protection/scope.py): who gets which scope, and the SQL, ORM and in-process forms of a
scope keeping exactly the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import Group
from django.db import connection

from layers.admin import ReaderScopeForm
from layers.models import Address, Event, Grid, Person, ReaderScope, Unit
from layers.protection.access import ANONYMOUS, reader_of
from layers.protection.scope import CITY, NOTHING, Scope, ScopeRule, scope_describe
from layers.publishing import catalog
from layers.selectors import heat
from tests.worlds.scope import scope_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return scope_world()


def scope_row(user, level: str, *, regions=(), grids=()) -> ReaderScope:
    row = ReaderScope.objects.create(user=user, level=level)
    row.regions.add(*regions)
    row.grids.add(*grids)
    return row


# --- who gets which scope ---------------------------------------------------------------------


def test_defaults_by_role(world, django_user_model):
    """Without a scope row: city roles and intake systems read the city, a grid worker their
    grids, street staff and role-less users nothing."""
    users = world.users
    assert reader_of(users["analyst"]).scope == CITY
    assert reader_of(users["gridworker"]).scope == Scope("grids", grid_ids=(world.grids["west"].pk,))
    assert reader_of(users["nobody"]).scope == NOTHING
    for role in ("administrator", "command_center", "data_steward", "intake:hotline"):
        user = django_user_model.objects.create_user(f"u-{role}")
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        assert reader_of(user).scope == CITY, role
    superuser = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    assert reader_of(superuser).scope == CITY
    staff = django_user_model.objects.create_user("street-no-row")
    staff.groups.add(Group.objects.get_or_create(name="street_staff")[0])
    assert reader_of(staff).scope.is_empty
    assert ANONYMOUS.scope == NOTHING


def test_a_scope_row_is_the_whole_answer(world):
    """A row narrows a city role, gives a role-less user the city, and names regions by level."""
    users, regions = world.users, world.regions
    scope_row(users["analyst"], "district", regions=[regions["district"]])
    assert reader_of(users["analyst"]).scope == Scope("district", district_codes=("620102000000",))
    scope_row(users["nobody"], "city")
    assert reader_of(users["nobody"]).scope == CITY
    assert reader_of(users["street_a"]).scope == Scope("street", street_ids=(regions["street"].pk,))
    # A worker's row replaces their worked grids.
    scope_row(users["gridworker"], "community", regions=[regions["community_b"]])
    assert reader_of(users["gridworker"]).scope == Scope("community", community_ids=(regions["community_b"].pk,))


def test_larger_grids_mean_their_small_grids(world, django_user_model):
    """A medium or large grid, named in a scope row or worked (Grid.worker), stands for its
    small grids."""
    grids = world.grids
    leader = django_user_model.objects.create_user("leader")
    leader.groups.add(Group.objects.get_or_create(name="grid_worker")[0])
    Grid.objects.filter(pk=grids["medium"].pk).update(worker=leader)
    assert reader_of(leader).scope.grid_ids == tuple(sorted((grids["west"].pk, grids["east"].pk)))
    scope_row(world.users["nobody"], "grids", grids=[grids["large"], grids["north"]])
    assert reader_of(world.users["nobody"]).scope.grid_ids == tuple(
        sorted((grids["west"].pk, grids["east"].pk, grids["north"].pk))
    )


def test_a_grid_worker_without_grids_reads_nothing(world):
    Grid.objects.filter(worker=world.users["gridworker"]).update(worker=None)
    assert reader_of(world.users["gridworker"]).scope.is_empty


def test_scope_is_remembered_only_as_long_as_the_setting_says(world, settings):
    """With MINQING_READER_ROLES_SECONDS > 0 a change shows after that long, never across users."""
    settings.MINQING_READER_ROLES_SECONDS = 60
    worker = world.users["gridworker"]
    first = reader_of(worker).scope
    Grid.objects.filter(pk=world.grids["east"].pk).update(worker=worker)
    assert reader_of(worker).scope == first  # remembered
    assert reader_of(world.users["analyst"]).scope == CITY  # per user
    settings.MINQING_READER_ROLES_SECONDS = 0
    assert len(reader_of(worker).scope.grid_ids) == 2


def test_key_is_stable_and_tells_scopes_apart(world):
    west, east = world.grids["west"].pk, world.grids["east"].pk
    assert CITY.key == "city" and NOTHING.key == "none"
    assert Scope("grids", grid_ids=(west,)).key == Scope("grids", grid_ids=(west,)).key
    keys = {
        Scope("grids", grid_ids=(west,)).key,
        Scope("grids", grid_ids=(east,)).key,
        Scope("grids", grid_ids=(west, east)).key,
        Scope("street", street_ids=(west,)).key,
        Scope("community", community_ids=(west,)).key,
    }
    assert len(keys) == 5


def test_describe_names_codes(world):
    scope = reader_of(world.users["gridworker"]).scope
    assert scope_describe(scope) == {
        "level": "grids",
        "key": scope.key,
        "districts": [],
        "streets": [],
        "communities": [],
        "grids": [world.grids["west"].code],
    }


# --- the three forms agree --------------------------------------------------------------------


def scopes(world) -> dict[str, Scope]:
    r, g = world.regions, world.grids
    return {
        "city": CITY,
        "nothing": NOTHING,
        "district": Scope("district", district_codes=(r["district"].code,)),
        "street_a": Scope("street", street_ids=(r["street"].pk,)),
        "street_b": Scope("street", street_ids=(r["street_b"].pk,)),
        "community_a": Scope("community", community_ids=(r["community"].pk,)),
        "west": Scope("grids", grid_ids=(g["west"].pk,)),
        "east_north": Scope("grids", grid_ids=(g["east"].pk, g["north"].pk)),
    }


#: Which small grids' rows each scope keeps.
KEEPS = {
    "city": {"west", "east", "north"},
    "nothing": set(),
    "district": {"west", "east", "north"},
    "street_a": {"west", "east"},
    "street_b": {"north"},
    "community_a": {"west", "east"},
    "west": {"west"},
    "east_north": {"east", "north"},
}


@pytest.mark.parametrize("name", list(KEEPS))
@pytest.mark.parametrize("model", [Address, Person, Unit, Event])
def test_sql_q_and_mask_keep_the_same_rows(world, name, model):
    scope = scopes(world)[name]
    kind = {Address: "address", Person: "person", Unit: "unit", Event: "event"}[model]
    expected = world.ids(kind, *KEEPS[name])
    if model is Event:
        expected |= world.ids("dispute", *KEEPS[name])
    sql, params = scope.linked("t")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.id FROM {model._meta.db_table} t WHERE {sql}", params)
        by_sql = {row[0] for row in cursor.fetchall()}
    by_q = set(model.objects.filter(scope.q()).values_list("pk", flat=True))
    assert by_sql == by_q == expected
    rows = list(model.objects.values_list("pk", "grid_id", "community_id", "street_id", "district_code"))
    ids, grid, community, street, district = (np.array(column) for column in zip(*rows, strict=True))
    keep = scope.mask(
        grid_id=grid.astype(np.int64),
        community_id=community.astype(np.int64),
        street_id=street.astype(np.int64),
        district_code=district,
    )
    assert set(ids[keep].tolist()) == expected


@pytest.mark.parametrize("name", list(KEEPS))
def test_grid_condition_and_grid_q_keep_the_scopes_small_grids(world, name):
    scope = scopes(world)[name]
    expected = {world.grids[g].pk for g in KEEPS[name]}
    sql, params = scope.grids("t")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.id FROM layers_grid t WHERE t.level = 'small' AND {sql}", params)
        assert {row[0] for row in cursor.fetchall()} == expected
    assert set(Grid.objects.filter(scope.grid_q(), level="small").values_list("pk", flat=True)) == expected


def test_condition_follows_the_layers_rule(world):
    west = Scope("grids", grid_ids=(world.grids["west"].pk,))
    assert west.condition(catalog.layer_get("grids_small")) == ("TRUE", [])
    assert west.condition(catalog.layer_get("addresses")) == west.linked("t")
    assert west.condition(catalog.layer_get("grid_stats")) == west.grids("t")
    assert west.condition("e") == west.linked("e")
    with pytest.raises(ValueError, match="unknown scope rule 'rows'"):
        ScopeRule("rows")


def test_every_layer_of_registry_or_event_rows_declares_a_scope():
    """A new layer over people, places or events must say how it is scoped: only region and
    grid outlines may go unscoped."""
    registry = {"layers_address", "layers_building", "layers_compound", "layers_dwelling", "layers_person",
                "layers_unit", "layers_event"}  # fmt: skip
    for layer in catalog.LAYERS.values():
        reads_registry = bool(registry & set(layer.tables)) or any(t in layer.source for t in registry)
        if reads_registry:
            assert layer.scope is not None, f"layer {layer.id!r} reads registry or event rows but declares no scope"
        else:
            assert layer.scope is None and layer.id.startswith(("regions_", "grids_")), layer.id


def test_the_offline_basemap_draws_only_reference_layers():
    """Its tiles are cached and shared by every reader, so no scoped layer may be drawn there."""
    from basemaps.sources import OFFLINE_OUTLINES

    assert all(catalog.layer_get(layer_id).scope is None for layer_id, _, _ in OFFLINE_OUTLINES)


# --- caches -----------------------------------------------------------------------------------


def test_heat_point_sets_are_cached_per_scope(world):
    """The city's cached points are never served to a scope (and the other way round)."""
    west = reader_of(world.users["gridworker"]).scope
    city_points = heat.heat_point_set(family="hazard", since=None, until=None, scope=CITY)
    west_points = heat.heat_point_set(family="hazard", since=None, until=None, scope=west)
    assert (len(city_points.x), len(west_points.x)) == (3, 1)
    assert heat.heat_point_set(family="hazard", since=None, until=None, scope=CITY) is city_points
    assert west.key in west_points.key and CITY.key in city_points.key


def test_heat_cache_keeps_within_its_point_budget(world, monkeypatch):
    """Many small scoped sets fit beside each other; past the budget the least recent goes."""
    monkeypatch.setattr(heat, "_cache", type(heat._cache)())
    monkeypatch.setattr(heat, "CACHE_POINTS", 4)
    west, east = (Scope("grids", grid_ids=(world.grids[name].pk,)) for name in ("west", "east"))
    for scope in (CITY, west, east):  # 3 + 1 + 1 points
        heat.heat_point_set(family="hazard", since=None, until=None, scope=scope)
    assert [key[3] for key in heat._cache] == [west.key, east.key]


# --- the admin form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "regions", "grids", "errors"),
    [
        ("city", [], [], {}),
        ("street", ["street"], [], {}),
        ("grids", [], ["west"], {}),
        ("street", [], [], {"regions": ["choose at least one street"]}),
        (
            "street",
            ["community"],
            [],
            {"regions": ["not a street: 畅家巷社区 (620102001001)"]},
        ),
        ("grids", [], [], {"grids": ["choose at least one grid"]}),
        (
            "community",
            ["community"],
            ["west"],
            {"grids": ["grids only go with the level 'grids'"]},
        ),
        (
            "city",
            ["district"],
            [],
            {"regions": ["regions do not go with the level 'city'"]},
        ),
    ],
)
def test_scope_form_checks_what_the_level_names(world, level, regions, grids, errors):
    form = ReaderScopeForm(
        data={
            "user": world.users["nobody"].pk,
            "level": level,
            "regions": [world.regions[name].pk for name in regions],
            "grids": [world.grids[name].pk for name in grids],
        }
    )
    assert form.is_valid() == (not errors)
    assert dict(form.errors) == errors
