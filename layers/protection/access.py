"""Access: what one reader may see and do, decided once per request.

A :class:`Reader` is the whole answer for one user at one moment: their roles (group names),
whether they are a superuser, the ``layers`` permissions they hold (revealing or exporting
personal data, reading the audit log), their data scope (:mod:`layers.protection.scope`) and so which
rows, fields and closed-loop actions are theirs. The HTTP edge builds it once per request
(``mapserver.auth``: the Django views, the DRF views, the admin and the asynchronous tile
server alike) and every surface asks it instead of looking anything up again.

**Who may act** on a case is one table, :data:`ACTIONS` (README "Security" prints it): each
closed-loop action names the roles that may take it, by the status the case is in where that
matters (``return`` refuses an assignment when the case is with a handler, a resolution when it
is resolved). Two rules hold for everyone, superusers included: the user who resolved a case
never verifies it or closes it, nor refuses their own resolution; and an action on a case
outside the reader's scope never reaches this table (the case is not found). A resident acts
without an account: :data:`RESIDENT_READER` holds the resident's duties (rate, reopen), and only
the residents' service builds it, after checking the case's follow-up token. Who writes and who
approves the public summaries is :data:`SUMMARY_DUTIES` (never the author).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings

from layers.database.memo import Remembered
from layers.database.reading import reading
from layers.protection.scope import CITY, NOTHING, SCOPE_SQL, Scope, scope_from_row

#: Roles by duty. The command center dispatches and checks; handlers work cases in the field or at
#: their level; checkers verify a resolution; intake systems relay what the citizen says back.
ADMINISTRATOR = "administrator"
COMMAND_CENTER = "command_center"
GRID_WORKER = "grid_worker"
STREET_STAFF = "street_staff"
COMMUNITY_STAFF = "community_staff"
DATA_STEWARD = "data_steward"
ANALYST = "analyst"
#: 领导: the city's or a district's leadership, who read the monthly situation report and approve
#: changes to the keyword library (the city by default; a scope row narrows a district's).
LEADER = "leader"
#: A group ``intake:<channel>`` is an intake system (the hotline's gateway, the citizen app …).
INTAKE = "intake:*"
#: The resident holding a case's follow-up link (小兰帮办). No user account holds it: only the
#: reader :data:`RESIDENT_READER`, which the residents' service builds after checking the link's
#: token, and which names no user (a group of this name gives a signed-in user nothing).
RESIDENT = "resident:follow-up-link"

_DISPATCH = frozenset({COMMAND_CENTER})
_HANDLE = frozenset({GRID_WORKER, COMMUNITY_STAFF, STREET_STAFF})
_CHECK = frozenset({COMMAND_CENTER, STREET_STAFF, COMMUNITY_STAFF})


@dataclass(frozen=True)
class Duty:
    """Who may take one action: ``roles`` (``intake:*`` stands for every intake system), and
    whether the user who resolved the case is excluded (separation of duties)."""

    roles: frozenset[str]
    not_the_resolver: bool = False
    #: What the action is for, as README "Security" prints it.
    meaning: str = ""


#: The role × action table of the closed loop. Keys are actions, or ``action@status`` where the
#: same action means different duties in different statuses (looked up first). Administrators
#: and superusers hold every role here (:meth:`Reader.has_any_role`); the separation rule binds
#: them too.
ACTIONS: dict[str, Duty] = {
    "triage": Duty(_DISPATCH, meaning="classify a new or reopened case"),
    "assign": Duty(_DISPATCH | {STREET_STAFF, COMMUNITY_STAFF}, meaning="send a case to a department and level"),
    "accept": Duty(_HANDLE, meaning="take an assigned case"),
    "start": Duty(_HANDLE, meaning="start work on an assigned case"),
    "note": Duty(_HANDLE, meaning="add a note to a case one handles (the tablet)"),
    "resolve": Duty(_HANDLE, meaning="report a case solved"),
    "verify": Duty(_CHECK, not_the_resolver=True, meaning="confirm a resolution on the spot or by phone"),
    "close": Duty(_DISPATCH, not_the_resolver=True, meaning="close a verified case"),
    "return@assigned": Duty(_DISPATCH | {GRID_WORKER}, meaning="refuse an assignment (not ours to handle)"),
    "return@in_progress": Duty(_DISPATCH | {GRID_WORKER}, meaning="refuse an assignment (not ours to handle)"),
    "return@resolved": Duty(_CHECK, not_the_resolver=True, meaning="refuse a resolution (redo it)"),
    "suspend": Duty(_DISPATCH, meaning="pause the deadline of a case that must wait"),
    "resume": Duty(_DISPATCH, meaning="resume a suspended case"),
    "escalate": Duty(_DISPATCH, meaning="raise a case one level by hand"),
    "reopen": Duty(_DISPATCH | {INTAKE, RESIDENT}, meaning="reopen a case the citizen says is not solved"),
    "rate": Duty(_DISPATCH | {INTAKE, RESIDENT}, meaning="record the citizen's satisfaction"),
    "locate": Duty(_DISPATCH | {DATA_STEWARD, GRID_WORKER}, meaning="place a case on the map"),
}


#: Who writes and who approves the public summary of a completed case (``/public/`` shows it
#: only once approved). The author never approves their own summary.
SUMMARY_DUTIES: dict[str, Duty] = {
    "propose": Duty(_CHECK, meaning="write the public summary of a completed case"),
    "moderate": Duty(_DISPATCH, meaning="approve or reject a public summary (not its author)"),
}


#: 研判: who reads the monthly situation report (the page, the API and the files) and who works
#: on the keyword library. A draft is never approved by its author (four eyes), whoever they are.
JUDGEMENT_DUTIES: dict[str, Duty] = {
    "report": Duty(frozenset({ANALYST, LEADER}), meaning="read the monthly situation report of an area in scope"),
    "rules_read": Duty(
        frozenset({ANALYST, LEADER, COMMAND_CENTER}), meaning="read the keyword library, its versions and replays"
    ),
    "rules_draft": Duty(
        frozenset({ANALYST, LEADER, COMMAND_CENTER}), meaning="draft a change to the keyword library and replay it"
    ),
    "rules_approve": Duty(
        frozenset({LEADER, COMMAND_CENTER}),
        meaning="approve (or discard) a draft of the keyword library, never one's own",
    ),
}


def duty_for(action: str, status: str) -> Duty | None:
    """The duty of ``action`` on a case in ``status`` (``None``: an action no one may take there).

    >>> duty_for("return", "resolved").not_the_resolver, duty_for("return", "assigned").not_the_resolver
    (True, False)
    >>> duty_for("fly", "received") is None
    True
    """
    return ACTIONS.get(f"{action}@{status}") or ACTIONS.get(action)


#: Who keeps the registry true (``layers.services.registry_tasks``): the grid's worker answers a
#: task in their grid (confirm, correct, merge, add); a data steward approves the answers that need
#: it — never the worker who gave the answer.
REGISTRY_DUTIES: dict[str, Duty] = {
    "answer": Duty(frozenset({GRID_WORKER}), meaning="confirm, correct, merge or add an address in one's grid"),
    "decide": Duty(frozenset({DATA_STEWARD}), meaning="approve or reject a registry change (not its author)"),
}

#: Who records household visits (走访) and reads the duty figures.
VISIT_DUTIES: dict[str, Duty] = {
    "record": Duty(frozenset({GRID_WORKER}), meaning="record a household visit in one's grid"),
    "figures": Duty(frozenset({ANALYST, COMMAND_CENTER}), meaning="read visits and duty figures per grid and worker"),
}

#: The building sheet (楼盘表): who sees each household's care tags (关爱标签). Everyone else who
#: may read the building sees occupancy and household sizes only, and nothing derived from the
#: tags (not even counts): an answer that does not depend on them cannot be combined into them.
CARE_READERS = frozenset({GRID_WORKER, COMMUNITY_STAFF, STREET_STAFF, COMMAND_CENTER})

#: Permissions (``layers.<codename>``) that change what a reader sees.
REVEAL = "reveal_personal_data"
EXPORT_PERSONAL = "export_personal_data"
VIEW_AUDIT = "view_auditentry"


@dataclass(frozen=True)
class Reader:
    """One user's access: ``user_id`` (``None``: nobody signed in), their group names (sorted),
    superuser flag, the ``layers`` permission codenames they hold, and their data scope."""

    user_id: int | None
    roles: tuple[str, ...] = ()
    superuser: bool = False
    scope: Scope = NOTHING
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def roles_key(self) -> str:
        """The role set as cache keys use it: ``*`` for a superuser, else the sorted roles."""
        return "*" if self.superuser else ",".join(self.roles)

    def has_role(self, role: str) -> bool:
        """Whether the reader holds ``role`` (``intake:*``: any intake system). The resident's
        role is held only by a reader that names no user (:data:`RESIDENT_READER`)."""
        if role == INTAKE:
            return self.is_intake
        if role == RESIDENT:
            return self.user_id is None and RESIDENT in self.roles
        return role in self.roles

    def has_any_role(self, *roles: str) -> bool:
        """Whether the reader holds one of ``roles``; administrators and superusers hold all."""
        return self.superuser or self.has_role(ADMINISTRATOR) or any(self.has_role(r) for r in roles)

    @property
    def is_intake(self) -> bool:
        return any(r.startswith("intake:") for r in self.roles)

    def holds(self, permission: str) -> bool:
        """Whether the reader holds the ``layers`` permission ``permission`` (a codename)."""
        return self.superuser or permission in self.permissions

    @property
    def may_reveal(self) -> bool:
        """May read an ID number or a phone in clear (each reveal audited)."""
        return self.holds(REVEAL)

    @property
    def may_export_personal(self) -> bool:
        return self.holds(EXPORT_PERSONAL)

    @cached_property
    def reads_description(self) -> bool:
        """May read events' free text (the catalog's ``events`` layer decides: citizens write
        names and phone numbers into descriptions)."""
        from layers.publishing.catalog import layer_get

        field_ = next(f for f in layer_get("events").fields if f.name == "description")
        return field_.readable_by(self.roles, superuser=self.superuser)

    def reads_layer(self, layer) -> bool:
        """May read the catalog layer ``layer`` (a :class:`layers.publishing.catalog.Layer`) at all."""
        return layer.readable_by(self.roles, superuser=self.superuser)

    def fields_of(self, layer) -> tuple:
        """The fields of ``layer`` the reader may read (personal fields never among them)."""
        return layer.fields_for(self.roles, superuser=self.superuser)

    @property
    def works_grids(self) -> bool:
        """Uses the grid worker's tablet API (their own small grids, within their scope)."""
        return self.has_any_role(GRID_WORKER)

    @property
    def reads_care_tags(self) -> bool:
        """Sees the care tags of households in the building sheet (within their scope)."""
        return self.has_any_role(*CARE_READERS)

    def may_take(self, duty: Duty) -> bool:
        """Whether the reader's roles hold ``duty`` (the separation rule aside)."""
        return self.has_any_role(*duty.roles)

    def may_act(self, action: str, status: str) -> bool:
        """Whether the reader's roles allow ``action`` on a case in ``status`` (the separation
        rule needs the case's history: :func:`layers.services.events.event_act` applies it)."""
        duty = duty_for(action, status)
        return duty is not None and self.may_take(duty)

    def actions_on(self, statuses_actions: Iterable[tuple[str, str]]) -> list[str]:
        """Of ``(action, status)`` pairs, the actions the reader's roles allow, sorted."""
        return sorted({action for action, status in statuses_actions if self.may_act(action, status)})


#: Nobody signed in.
ANONYMOUS = Reader(user_id=None)
#: The system itself (escalation timers, demo loads, management commands): every duty, the whole
#: city. Never built from a request.
SYSTEM = Reader(user_id=None, roles=(ADMINISTRATOR,), superuser=True, scope=CITY)
#: A resident acting on their own case through its follow-up link: the resident's duties only
#: (rate, reopen), no data scope. Built by :mod:`layers.services.residents` after the token is
#: checked, never from a request's credentials.
RESIDENT_READER = Reader(user_id=None, roles=(RESIDENT,), scope=NOTHING)

# One statement for a user's access: the scope statement's columns, then the ``layers``
# permission codenames held through a group or directly.
READER_SQL = f"""
WITH access AS ({SCOPE_SQL})
SELECT access.*, coalesce((
    SELECT array_agg(DISTINCT p.codename ORDER BY p.codename)
    FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
    WHERE ct.app_label = 'layers' AND p.id IN (
        SELECT up.permission_id FROM auth_user_user_permissions up WHERE up.user_id = %s
        UNION SELECT gp.permission_id FROM auth_group_permissions gp
              JOIN auth_user_groups ug ON ug.group_id = gp.group_id WHERE ug.user_id = %s)), '{{}}')
FROM access
"""


def reader_from_row(user_id: int, row: tuple) -> Reader:
    """The :class:`Reader` a :data:`READER_SQL` row describes."""
    return Reader(
        user_id=user_id,
        roles=tuple(row[1]),
        superuser=bool(row[0]),
        scope=scope_from_row(row[:8]),
        permissions=frozenset(row[8]),
    )


#: Access per (database, user id), remembered for MINQING_READER_ROLES_SECONDS: a group, scope,
#: permission or grid assignment change reaches every surface within that many seconds.
READERS: Remembered[Reader] = Remembered(lambda: settings.MINQING_READER_ROLES_SECONDS)


def reader_for_user(user_id: int, *, superuser: bool) -> Reader:
    """The access of an active user (``superuser`` as their user row says), resolved in one
    statement and remembered briefly in this process."""
    # The superuser flag comes with the user row on every request: keyed by it, a change counts
    # at once.
    source = reading()
    key = (source.settings_dict["NAME"], user_id, superuser)
    reader = READERS.get(key)
    if reader is None:
        with source.cursor() as cursor:
            cursor.execute(READER_SQL, [user_id, user_id, user_id])
            reader = reader_from_row(user_id, cursor.fetchone())
        READERS.put(key, reader)
    return reader


def reader_of(user) -> Reader:
    """The access of a Django user object (:data:`ANONYMOUS` for an anonymous or inactive one):
    the shell's and the tests' way in; requests use ``request.reader``."""
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    return reader_for_user(user.pk, superuser=bool(user.is_superuser))
