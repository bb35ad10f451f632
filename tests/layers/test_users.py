"""Roles and demo logins: created once, the same on every later run."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from layers.models import Grid
from layers.services.users import DEMO_PASSWORD, DemoLogin, Role, demo_users_ensure, demo_users_list
from tests.worlds.factories import grid_tree, region_chain

pytestmark = pytest.mark.django_db

EXPECTED_ROLES = {
    "admin": "administrator",
    "command": "command_center",
    "analyst": "analyst",
    "leader": "leader",
    "steward": "data_steward",
    "gridworker": "grid_worker",
    "street": "street_staff",
    "community": "community_staff",
}


@pytest.fixture
def grids(db) -> dict[str, Grid]:
    return grid_tree(region_chain()["community"])


def test_demo_users_get_their_role_password_and_token(grids):
    logins = demo_users_ensure()
    assert [(login.username, login.role) for login in logins] == list(EXPECTED_ROLES.items())
    assert {group.name for group in Group.objects.all()} == {role.value for role in Role}
    users = get_user_model().objects
    for login in logins:
        user = users.get(username=login.username)
        assert login.password == DEMO_PASSWORD == "minqing-demo"  # noqa: S105 - the published demo password
        assert user.check_password(DEMO_PASSWORD)
        assert [group.name for group in user.groups.all()] == [EXPECTED_ROLES[login.username]]
        assert Token.objects.get(user=user).key == login.token
        assert len(login.token) == 40
    assert users.get(username="admin").is_superuser
    assert {user.username for user in users.filter(is_staff=True)} == {"admin", "steward"}
    assert not users.filter(is_superuser=True).exclude(username="admin").exists()


def test_grid_worker_works_the_first_small_grid_by_code(grids):
    logins = {login.username: login for login in demo_users_ensure()}
    west = Grid.objects.get(pk=grids["west"].pk)
    assert west.code < grids["east"].code
    assert west.worker.username == "gridworker"
    assert logins["gridworker"].grid_code == west.code
    assert {login.grid_code for name, login in logins.items() if name != "gridworker"} == {""}
    assert Grid.objects.filter(worker__isnull=False).count() == 1


def test_grid_worker_without_grids_has_no_grid(db):
    logins = {login.username: login for login in demo_users_ensure()}
    assert logins["gridworker"].grid_code == ""


def test_grid_worker_keeps_a_grid_given_by_hand(grids):
    """A worker already on a small grid keeps it: the demo does not move people around."""
    demo_users_ensure()
    Grid.objects.filter(pk=grids["west"].pk).update(worker=None)
    Grid.objects.filter(pk=grids["east"].pk).update(worker=get_user_model().objects.get(username="gridworker"))
    logins = {login.username: login for login in demo_users_ensure()}
    assert logins["gridworker"].grid_code == grids["east"].code
    assert Grid.objects.get(pk=grids["west"].pk).worker is None


def test_data_steward_may_edit_layers_but_not_delete(db):
    demo_users_ensure()
    steward = get_user_model().objects.get(username="steward")
    assert steward.has_perm("layers.change_grid")
    assert steward.has_perm("layers.add_address")
    assert steward.has_perm("layers.view_person")
    assert not steward.has_perm("layers.delete_grid")
    assert not steward.has_perm("auth.change_user")
    # Scopes decide who reads what: they stay with superusers.
    assert not steward.has_perm("layers.change_readerscope")
    assert not steward.has_perm("layers.view_readerscope")
    analyst = get_user_model().objects.get(username="analyst")
    assert not analyst.has_perm("layers.view_person")


def test_second_run_writes_nothing_and_returns_the_same(grids):
    first = demo_users_ensure()
    with CaptureQueriesContext(connection) as queries:
        second = demo_users_ensure()
    writes = [q["sql"] for q in queries if q["sql"].lstrip().split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []
    assert second == first


def test_a_changed_demo_user_is_put_back(grids):
    """A demo user whose password or flags drifted gets the demo definition again."""
    demo_users_ensure()
    user = get_user_model().objects.get(username="command")
    user.set_password("something-else")
    user.is_staff = True
    user.is_active = False
    user.save()
    user.groups.clear()
    demo_users_ensure()
    user.refresh_from_db()
    assert user.check_password(DEMO_PASSWORD)
    assert (user.is_staff, user.is_active) == (False, True)
    assert [group.name for group in user.groups.all()] == ["command_center"]


def test_list_shows_only_existing_demo_users(db):
    assert demo_users_list() == []
    get_user_model().objects.create_user("analyst", password="x")  # noqa: S106
    assert demo_users_list() == [
        DemoLogin(username="analyst", role="analyst", password=DEMO_PASSWORD, token="", grid_code="")
    ]


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("ensure_demo_users", *args, stdout=out)
    return out.getvalue()


def test_command_prints_the_logins_table_the_same_twice(grids, settings):
    settings.DEBUG = True
    first = run_command()
    assert run_command() == first
    tokens = {token.user.username: token.key for token in Token.objects.select_related("user")}
    west = grids["west"].code
    lines = first.splitlines()
    assert lines[0].split() == ["username", "role", "password", "token", "area"]
    # Columns line up: each value starts where its heading does.
    assert {line.index("minqing-demo") for line in lines[1:]} == {lines[0].index("password")}
    assert {line.index(tokens[line.split()[0]]) for line in lines[1:]} == {lines[0].index("token")}
    areas = {"gridworker": west, "street": "620102001000", "community": "620102001001"}
    assert [line.split() for line in lines[1:]] == [
        [name, role, "minqing-demo", tokens[name], areas.get(name, "-")] for name, role in EXPECTED_ROLES.items()
    ]


def test_street_and_community_staff_read_the_grid_workers_street_and_community(grids):
    """The demo lines up: the grid worker's grid lies in the community staff's community, which
    lies in the street staff's street; a scope set by hand is kept."""
    from layers.models import ReaderScope
    from layers.protection.access import reader_of

    logins = {login.username: login for login in demo_users_ensure()}
    users = {user.username: user for user in get_user_model().objects.all()}
    street, community = grids["west"].community.parent, grids["west"].community
    assert (logins["street"].area_code, logins["community"].area_code) == (street.code, community.code)
    assert reader_of(users["street"]).scope.street_ids == (street.pk,)
    assert reader_of(users["community"]).scope.community_ids == (community.pk,)
    assert reader_of(users["gridworker"]).scope.grid_ids == (grids["west"].pk,)
    assert {reader_of(users[name]).scope.key for name in ("admin", "command", "analyst", "steward")} == {"city"}
    ReaderScope.objects.filter(user=users["street"]).update(level="city")
    demo_users_ensure()
    assert ReaderScope.objects.get(user=users["street"]).level == "city"


def test_staff_without_grids_get_no_scope_row(db):
    from layers.models import ReaderScope
    from layers.protection.access import reader_of

    logins = {login.username: login for login in demo_users_ensure()}
    assert not ReaderScope.objects.exists()
    assert logins["street"].area_code == ""
    assert reader_of(get_user_model().objects.get(username="street")).scope.is_empty


def test_command_refuses_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError) as raised:
        run_command()
    assert str(raised.value) == (
        "ensure_demo_users: the demo users share a published password, so this runs only with DEBUG on "
        "(pass --allow-without-debug to run it anyway)"
    )
    assert not get_user_model().objects.exists()
    assert "gridworker" in run_command("--allow-without-debug")
