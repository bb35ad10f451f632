"""Roles and the demo logins.

A role is a Django group; the API and the pages decide what a user may see from the groups
they are in. The demo users share one published password, ``minqing-demo``, so they are for a
demo or development database only (``ensure_demo_users`` refuses to run with DEBUG off unless
told otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from rest_framework.authtoken.models import Token

from layers.models import Grid

#: The one password of every demo user (documented in README.md and printed by ensure_demo_users).
DEMO_PASSWORD = "minqing-demo"  # noqa: S105 - a published demo password, not a secret


class Role(StrEnum):
    """The groups a user can belong to, one per kind of user in DESIGN.md §2."""

    ADMINISTRATOR = "administrator"
    COMMAND_CENTER = "command_center"
    ANALYST = "analyst"
    GRID_WORKER = "grid_worker"
    DATA_STEWARD = "data_steward"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    superuser: bool = False
    #: Staff may open /admin/ (what they can do there follows from their permissions).
    staff: bool = False


DEMO_USERS = (
    DemoUser("admin", Role.ADMINISTRATOR, superuser=True, staff=True),
    DemoUser("command", Role.COMMAND_CENTER),
    DemoUser("analyst", Role.ANALYST),
    DemoUser("steward", Role.DATA_STEWARD, staff=True),
    DemoUser("gridworker", Role.GRID_WORKER),
)


@dataclass(frozen=True)
class DemoLogin:
    """One line of the demo logins table."""

    username: str
    role: str
    password: str
    token: str
    grid_code: str


def roles_ensure() -> dict[Role, Group]:
    """Create the role groups if missing; the data steward may add, change and view every
    layers model in the admin (deletions stay with administrators)."""
    groups = {role: Group.objects.get_or_create(name=role.value)[0] for role in Role}
    steward_permissions = Permission.objects.filter(
        content_type__app_label="layers", codename__regex=r"^(add|change|view)_"
    )
    missing = steward_permissions.exclude(group=groups[Role.DATA_STEWARD])
    if missing.exists():
        groups[Role.DATA_STEWARD].permissions.add(*missing)
    return groups


@transaction.atomic
def demo_users_ensure() -> list[DemoLogin]:
    """Create the role groups and the demo users, each with its role, the demo password and an
    API token; the grid worker works the first small grid by code (if any grid exists).

    Idempotent: what exists is left as it is (a second run writes nothing and returns the same
    logins); only what is missing or different from the definition above is set.
    """
    groups = roles_ensure()
    user_model = get_user_model()
    for demo in DEMO_USERS:
        user, created = user_model.objects.get_or_create(username=demo.username)
        changed = created
        if not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            changed = True
        for field, wanted in (("is_superuser", demo.superuser), ("is_staff", demo.staff), ("is_active", True)):
            if getattr(user, field) != wanted:
                setattr(user, field, wanted)
                changed = True
        if changed:
            user.save()
        if not user.groups.filter(pk=groups[demo.role].pk).exists():
            user.groups.add(groups[demo.role])
        Token.objects.get_or_create(user=user)
        if demo.role == Role.GRID_WORKER:
            _grid_assign(user=user)
    return demo_users_list()


def _grid_assign(*, user) -> None:
    """Give the grid worker a small grid unless they already work one."""
    if Grid.objects.filter(worker=user, level=Grid.Level.SMALL).exists():
        return
    grid = Grid.objects.filter(level=Grid.Level.SMALL).order_by("code").first()
    if grid is not None:
        Grid.objects.filter(pk=grid.pk).update(worker=user)


def demo_users_list() -> list[DemoLogin]:
    """The demo users that exist, in the order of :data:`DEMO_USERS`, with role, password,
    token and (for grid workers) the code of their first small grid."""
    user_model = get_user_model()
    users = {
        user.username: user
        for user in user_model.objects.filter(username__in=[demo.username for demo in DEMO_USERS]).select_related(
            "auth_token"
        )
    }
    grid_codes: dict[int, str] = {}
    for worker_id, code in (
        Grid.objects.filter(worker__in=users.values(), level=Grid.Level.SMALL)
        .order_by("-code")
        .values_list("worker_id", "code")
    ):
        grid_codes[worker_id] = code  # ordered descending, so the lowest code wins
    logins = []
    for demo in DEMO_USERS:
        user = users.get(demo.username)
        if user is None:
            continue
        token = getattr(user, "auth_token", None)
        logins.append(
            DemoLogin(
                username=demo.username,
                role=demo.role.value,
                password=DEMO_PASSWORD,
                token=token.key if token else "",
                grid_code=grid_codes.get(user.pk, ""),
            )
        )
    return logins
