"""Data scope (数据范围): the one place that says which rows a reader may read.

Every read surface takes the reader's scope (``request.reader.scope``, resolved once per request
by :mod:`layers.protection.access`) and narrows its rows with the answer: the JSON
API, Open311, OGC API Features, exports and print maps, heat tiles and hot spots, locate and
geocode, the pages' APIs, the admin, and the vector tiles. A :class:`Scope` is immutable and
says the same thing in the three forms those surfaces need:

* SQL with psycopg ``%s`` parameters (:meth:`Scope.condition`), for the hand-written statements
  (features, tiles, heat, Open311): a condition on a registry-linked row's link columns
  (``grid_id``, ``community_id``, ``street_id``, ``district_code``; see ``GridLinked``), or on
  a small grid row itself (per-grid aggregates);
* a Django ``Q`` (:meth:`Scope.q`, :meth:`Scope.grid_q`), for ORM reads and the admin;
* a numpy mask (:meth:`Scope.mask`), for in-process indexes (the address matcher).

Which catalog layers are narrowed, and how, is declared on the layer (``Layer.scope`` in
:mod:`layers.publishing.catalog`): region and grid outlines are reference data every reader sees whole.

**Who gets which scope.** A :class:`~layers.models.ReaderScope` row, when the user has one, is
the whole answer (an administrator can narrow an analyst to a district, or give a street's staff
their street). Without a row: a superuser, an administrator, the command center, an analyst, a leader, a
data steward or an intake system (a group ``intake:<channel>``) reads the city; a grid worker
reads the small grids they work (``Grid.worker``; a medium or large grid means its small grids);
anyone else, street and community staff included, reads nothing until a row names their area.

**Scope key.** :attr:`Scope.key` is short, stable and changes whenever the resolved areas do: put
it into every cache key and ETag of scoped data (``city`` for the whole city, ``none`` for
nothing). Two readers with the same key see the same rows.

**Staleness.** A user's scope is remembered in this process for ``MINQING_READER_ROLES_SECONDS``
(with their roles, :mod:`layers.protection.access`): a new scope row or grid assignment reaches the hot
paths within that many seconds. :data:`SCOPE_SQL` resolves a scope in one statement, so an
asynchronous server can run it through its own driver and build the same :class:`Scope` with
:func:`scope_from_row`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from django.db import connection
from django.db.models import Q

if TYPE_CHECKING:
    from layers.publishing.catalog import Layer

#: Roles that read the whole city unless a scope row narrows them (intake groups too, by prefix).
CITY_ROLES = frozenset({"administrator", "command_center", "analyst", "leader", "data_steward"})
INTAKE_PREFIX = "intake:"
GRID_WORKER = "grid_worker"

# One statement, one parameter (the user id): the superuser flag, the group names, the scope
# row's level, its regions by level, its grids and the grids the user works, both expanded to
# small grid ids. Every lookup is an index probe (user id, scope id, grid parent id).
SCOPE_SQL = """
WITH me AS (SELECT %s::bigint AS id),
row AS (SELECT s.id, s.level FROM layers_readerscope s JOIN me ON s.user_id = me.id),
named AS (
    SELECT r.id, r.code, r.level FROM layers_readerscope_regions x
    JOIN row ON x.readerscope_id = row.id JOIN layers_region r ON r.id = x.region_id),
chosen AS (SELECT x.grid_id AS id FROM layers_readerscope_grids x JOIN row ON x.readerscope_id = row.id),
worked AS (SELECT g.id FROM layers_grid g JOIN me ON g.worker_id = me.id)
SELECT
    coalesce((SELECT u.is_superuser FROM auth_user u JOIN me ON u.id = me.id), false),
    coalesce((SELECT array_agg(g.name ORDER BY g.name) FROM auth_group g
              JOIN auth_user_groups ug ON ug.group_id = g.id JOIN me ON ug.user_id = me.id), '{}'),
    (SELECT level FROM row),
    coalesce((SELECT array_agg(code ORDER BY code) FROM named WHERE level = 'district'), '{}'),
    coalesce((SELECT array_agg(id ORDER BY id) FROM named WHERE level = 'street'), '{}'),
    coalesce((SELECT array_agg(id ORDER BY id) FROM named WHERE level = 'community'), '{}'),
    ({smalls_of_chosen}),
    ({smalls_of_worked})
"""

# The small grids among, under or two levels under the grids of a CTE: three index probes (id,
# parent id), not one OR over the whole grid table.
_SMALLS_OF = """SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM (
        SELECT s.id FROM layers_grid s WHERE s.level = 'small' AND s.id IN (SELECT id FROM {cte})
        UNION SELECT s.id FROM layers_grid s WHERE s.level = 'small' AND s.parent_id IN (SELECT id FROM {cte})
        UNION SELECT s.id FROM layers_grid m JOIN layers_grid s ON s.parent_id = m.id
              WHERE s.level = 'small' AND m.parent_id IN (SELECT id FROM {cte})) smalls"""
SCOPE_SQL = SCOPE_SQL.replace("{smalls_of_chosen}", _SMALLS_OF.format(cte="chosen")).replace(
    "{smalls_of_worked}", _SMALLS_OF.format(cte="worked")
)


@dataclass(frozen=True)
class Scope:
    """What a reader may read: the whole city (``level == "city"``), or the union of the rows
    linked to any of the districts, streets, communities and small grids listed (none listed:
    nothing at all). ``level`` names where the scope came from (``district``, ``street``,
    ``community``, ``grids``, ``none``) and is for display; the lists decide."""

    level: str
    district_codes: tuple[str, ...] = ()
    street_ids: tuple[int, ...] = ()
    community_ids: tuple[int, ...] = ()
    grid_ids: tuple[int, ...] = ()

    @property
    def is_city(self) -> bool:
        return self.level == "city"

    @property
    def is_empty(self) -> bool:
        """True when nothing at all is readable (not the city and no area listed)."""
        return not self.is_city and not (self.district_codes or self.street_ids or self.community_ids or self.grid_ids)

    @cached_property
    def key(self) -> str:
        """``city``, ``none``, or the level and a digest of the areas: equal keys, equal rows.

        >>> Scope("city").key, Scope("grids").key
        ('city', 'none')
        >>> Scope("grids", grid_ids=(3, 7)).key == Scope("grids", grid_ids=(3, 7)).key != Scope("grids", grid_ids=(3,)).key
        True
        """
        if self.is_city:
            return "city"
        if self.is_empty:
            return "none"
        text = "|".join(
            ",".join(str(v) for v in part)
            for part in (self.district_codes, self.street_ids, self.community_ids, self.grid_ids)
        )
        return f"{self.level}:{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"

    # --- SQL ---------------------------------------------------------------------------------

    def linked(self, alias: str = "t") -> tuple[str, list]:
        """SQL (and parameters) keeping the rows of a registry-linked table ``alias`` (any
        ``GridLinked`` table: addresses, buildings, persons, units, events …) in the scope.

        >>> Scope("city").linked()
        ('TRUE', [])
        >>> Scope("none").linked()
        ('FALSE', [])
        >>> Scope("grids", grid_ids=(3, 7)).linked("e")
        ('(e.grid_id = ANY(%s))', [[3, 7]])
        """
        parts = [
            (f"{alias}.district_code = ANY(%s)", self.district_codes),
            (f"{alias}.street_id = ANY(%s)", self.street_ids),
            (f"{alias}.community_id = ANY(%s)", self.community_ids),
            (f"{alias}.grid_id = ANY(%s)", self.grid_ids),
        ]
        return self._any(parts)

    def grids(self, alias: str = "t") -> tuple[str, list]:
        """SQL (and parameters) keeping the small grids (rows of ``layers_grid`` under ``alias``)
        in the scope: per-grid aggregates (residents, event counts, hot spots) are scoped by it.
        A region scope keeps the grids of its communities; a grid scope its small grids.

        >>> Scope("community", community_ids=(5,)).grids("g")
        ('(g.community_id = ANY(%s))', [[5]])
        """
        parts = [
            (
                f"{alias}.community_id IN (SELECT c.id FROM layers_region c JOIN layers_region s ON s.id = c.parent_id "
                "JOIN layers_region d ON d.id = s.parent_id WHERE d.code = ANY(%s))",
                self.district_codes,
            ),
            (
                f"{alias}.community_id IN (SELECT c.id FROM layers_region c WHERE c.parent_id = ANY(%s))",
                self.street_ids,
            ),
            (f"{alias}.community_id = ANY(%s)", self.community_ids),
            (f"{alias}.id = ANY(%s)", self.grid_ids),
        ]
        return self._any(parts)

    def condition(self, target: Layer | str = "t") -> tuple[str, list]:
        """The condition for a catalog layer's rows (as its ``scope`` rule declares; reference
        layers and the city get ``TRUE``) or, given an alias, for a registry-linked table."""
        if isinstance(target, str):
            return self.linked(target)
        rule = getattr(target, "scope", None)
        if rule is None:
            return "TRUE", []
        return _RULES[rule.kind](self, rule.alias)

    def _any(self, parts: list[tuple[str, tuple]]) -> tuple[str, list]:
        if self.is_city:
            return "TRUE", []
        chosen = [(sql, list(values)) for sql, values in parts if values]
        if not chosen:
            return "FALSE", []
        return "(" + " OR ".join(sql for sql, _ in chosen) + ")", [values for _, values in chosen]

    # --- ORM ---------------------------------------------------------------------------------

    def q(self, prefix: str = "") -> Q:
        """The scope as a ``Q`` over a ``GridLinked`` model (``prefix``: the path to one, such as
        ``"event__"``). The city is ``Q()``; nothing matches no row."""
        return self._q(
            (f"{prefix}district_code__in", self.district_codes),
            (f"{prefix}street_id__in", self.street_ids),
            (f"{prefix}community_id__in", self.community_ids),
            (f"{prefix}grid_id__in", self.grid_ids),
        )

    def grid_q(self, prefix: str = "") -> Q:
        """The scope as a ``Q`` over :class:`~layers.models.Grid` rows, as :meth:`grids` in SQL:
        a region scope keeps the grids (of every level) of its communities, a grid scope its
        small grids."""
        return self._q(
            (f"{prefix}community__parent__parent__code__in", self.district_codes),
            (f"{prefix}community__parent_id__in", self.street_ids),
            (f"{prefix}community_id__in", self.community_ids),
            (f"{prefix}id__in", self.grid_ids),
        )

    def _q(self, *parts: tuple[str, tuple]) -> Q:
        if self.is_city:
            return Q()
        found = Q(pk__in=[])
        for lookup, values in parts:
            if values:
                found |= Q(**{lookup: list(values)})
        return found

    # --- in process ----------------------------------------------------------------------------

    def mask(
        self,
        *,
        grid_id: np.ndarray,
        community_id: np.ndarray,
        street_id: np.ndarray,
        district_code: np.ndarray | None = None,
        street_district: dict[int, str] | None = None,
    ) -> np.ndarray:
        """Which rows of parallel link arrays lie in the scope. A district scope reads
        ``district_code`` or, when an index keeps none, the district of each row's street
        (``street_district``: street id → district code)."""
        n = len(grid_id)
        if self.is_city:
            return np.ones(n, dtype=bool)
        keep = np.zeros(n, dtype=bool)
        for values, column in (
            (self.grid_ids, grid_id),
            (self.community_ids, community_id),
            (self.street_ids, street_id),
        ):
            if values:
                keep |= np.isin(column, np.asarray(values, dtype=np.int64))
        if self.district_codes:
            codes = set(self.district_codes)
            if district_code is None:
                streets = [sid for sid, code in (street_district or {}).items() if code in codes]
                keep |= np.isin(street_id, np.asarray(streets, dtype=np.int64))
            else:
                keep |= np.isin(district_code, list(codes))
        return keep


@dataclass(frozen=True)
class ScopeRule:
    """How a catalog layer's rows are narrowed to a reader's scope: ``kind`` ``"linked"`` for a
    registry-linked table under ``alias`` (its link columns), ``"grid"`` for rows that are small
    grids themselves (per-grid aggregates)."""

    kind: str
    alias: str = "t"

    def __post_init__(self) -> None:
        if self.kind not in _RULES:
            raise ValueError(f"unknown scope rule {self.kind!r}; expected one of {', '.join(_RULES)}")


_RULES = {"linked": Scope.linked, "grid": Scope.grids}

#: The two scopes that need no lookup.
CITY = Scope("city")
NOTHING = Scope("none")


def scope_from_row(row: tuple) -> Scope:
    """The :class:`Scope` a :data:`SCOPE_SQL` row describes (see the module docstring for the
    rules): a scope row wins; else superuser and city roles read the city, grid workers their
    grids, anyone else nothing."""
    superuser, roles, level, districts, streets, communities, chosen, worked = row
    if level is not None:
        if level == "city":
            return CITY
        return Scope(level, tuple(districts), tuple(streets), tuple(communities), tuple(chosen))
    if superuser or any(role in CITY_ROLES or role.startswith(INTAKE_PREFIX) for role in roles):
        return CITY
    if GRID_WORKER in roles:
        return Scope("grids", grid_ids=tuple(worked))
    return NOTHING


def named_parameters(sql: str, params: list, prefix: str = "scope") -> tuple[str, dict]:
    """A scope condition for a statement written with named placeholders (psycopg takes one
    style per statement): each ``%s`` becomes ``%(<prefix><n>)s``.

    >>> named_parameters(*Scope("grids", grid_ids=(3,)).linked("e"))
    ('(e.grid_id = ANY(%(scope0)s))', {'scope0': [3]})
    """
    values = {}
    for number, value in enumerate(params):
        name = f"{prefix}{number}"
        sql = sql.replace("%s", f"%({name})s", 1)
        values[name] = value
    return sql, values


def scope_describe(scope: Scope) -> dict:
    """The scope as a client may show it: ``level``, ``key`` and the codes of its districts,
    streets, communities and small grids (one query)."""
    body = {"level": scope.level, "key": scope.key, "districts": list(scope.district_codes)}
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT coalesce((SELECT array_agg(code ORDER BY code) FROM layers_region WHERE id = ANY(%s)), '{}'),
                      coalesce((SELECT array_agg(code ORDER BY code) FROM layers_region WHERE id = ANY(%s)), '{}'),
                      coalesce((SELECT array_agg(code ORDER BY code) FROM layers_grid WHERE id = ANY(%s)), '{}')""",
            [list(scope.street_ids), list(scope.community_ids), list(scope.grid_ids)],
        )
        body["streets"], body["communities"], body["grids"] = (list(codes) for codes in cursor.fetchone())
    return body
