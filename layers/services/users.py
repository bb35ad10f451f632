"""Roles and the demo logins.

A role is a Django group; the API and the pages decide what a user may see from the groups
they are in, and which part of the city from their data scope (:mod:`layers.protection.scope`: a
``ReaderScope`` row, else the default of the role). The demo users share one published password, ``minqing-demo``, so they are for a
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

from layers.models import Grid, ReaderScope

#: The one password of every demo user (documented in README.md and printed by ensure_demo_users).
DEMO_PASSWORD = "minqing-demo"  # noqa: S105 - a published demo password, not a secret


class Role(StrEnum):
    """The groups a user can belong to, one per kind of user in DESIGN.md §2."""

    ADMINISTRATOR = "administrator"
    COMMAND_CENTER = "command_center"
    ANALYST = "analyst"
    #: 领导: reads the monthly situation report, approves keyword library changes.
    LEADER = "leader"
    GRID_WORKER = "grid_worker"
    DATA_STEWARD = "data_steward"
    #: 街道 / 社区工作人员: read their street or community, named by a ReaderScope row.
    STREET_STAFF = "street_staff"
    COMMUNITY_STAFF = "community_staff"


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
    DemoUser("leader", Role.LEADER),
    DemoUser("steward", Role.DATA_STEWARD, staff=True),
    DemoUser("gridworker", Role.GRID_WORKER),
    DemoUser("street", Role.STREET_STAFF),
    DemoUser("community", Role.COMMUNITY_STAFF),
)

#: The scope level a staff role's demo user is given, over the grid worker's street or community.
STAFF_SCOPES = {Role.STREET_STAFF: ReaderScope.Level.STREET, Role.COMMUNITY_STAFF: ReaderScope.Level.COMMUNITY}


@dataclass(frozen=True)
class DemoLogin:
    """One line of the demo logins table."""

    username: str
    role: str
    password: str
    token: str
    grid_code: str
    #: The code of the street or community a staff demo user's scope names ("" for others).
    area_code: str = ""


#: Personal data in clear and the audit log, per role (README "Security"): administrators reveal
#: and export personal data and read the audit log; the command center reveals a reporter's or
#: resident's contact to call them back. Grid workers, analysts, data stewards and street and
#: community staff see masked values only (an administrator may grant a user more in the admin,
#: which the audit log records). Superusers hold every permission.
PERSONAL_DATA_GRANTS: dict[Role, tuple[str, ...]] = {
    Role.ADMINISTRATOR: ("reveal_personal_data", "export_personal_data", "view_auditentry"),
    Role.COMMAND_CENTER: ("reveal_personal_data",),
}


def roles_ensure() -> dict[Role, Group]:
    """Create the role groups if missing; the data steward may add, change and view every
    layers model in the admin but the data scopes and the audit log (deletions and scopes stay
    with administrators); personal-data permissions as :data:`PERSONAL_DATA_GRANTS` says."""
    groups = {role: Group.objects.get_or_create(name=role.value)[0] for role in Role}
    steward_permissions = Permission.objects.filter(
        content_type__app_label="layers", codename__regex=r"^(add|change|view)_"
    ).exclude(content_type__model__in=["readerscope", "auditentry"])
    missing = steward_permissions.exclude(group=groups[Role.DATA_STEWARD])
    if missing.exists():
        groups[Role.DATA_STEWARD].permissions.add(*missing)
    for role, codenames in PERSONAL_DATA_GRANTS.items():
        granted = Permission.objects.filter(content_type__app_label="layers", codename__in=codenames)
        missing = granted.exclude(group=groups[role])
        if missing.exists():
            groups[role].permissions.add(*missing)
    return groups


@transaction.atomic
def demo_users_ensure() -> list[DemoLogin]:
    """Create the role groups and the demo users, each with its role, the demo password and an
    API token; the grid worker works the first small grid by code (if any grid exists), and the
    street and community staff read that grid's street and community.

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
        if demo.role in STAFF_SCOPES:
            _scope_assign(user=user, level=STAFF_SCOPES[demo.role])
    return demo_users_list()


def _grid_assign(*, user) -> None:
    """Give the grid worker a small grid unless they already work one."""
    if Grid.objects.filter(worker=user, level=Grid.Level.SMALL).exists():
        return
    grid = Grid.objects.filter(level=Grid.Level.SMALL).order_by("code").first()
    if grid is not None:
        Grid.objects.filter(pk=grid.pk).update(worker=user)


def _scope_assign(*, user, level: str) -> None:
    """Give a staff user the street or community of the first small grid by code, unless they
    have a scope already (one set by hand stays)."""
    if ReaderScope.objects.filter(user=user).exists():
        return
    grid = Grid.objects.filter(level=Grid.Level.SMALL).select_related("community").order_by("code").first()
    if grid is None:
        return
    region = grid.community if level == ReaderScope.Level.COMMUNITY else grid.community.parent
    scope = ReaderScope.objects.create(user=user, level=level, note="demo")
    scope.regions.add(region)


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
    area_codes = dict(
        ReaderScope.regions.through.objects.filter(readerscope__user__in=users.values())
        .order_by("-region__code")
        .values_list("readerscope__user_id", "region__code")
    )
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
                area_code=area_codes.get(user.pk, ""),
            )
        )
    return logins
