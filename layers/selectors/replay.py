"""Replaying a keyword library over past cases: where each case would go, vectorised.

The live dispatch decides one case at a time (:func:`layers.services.dispatch.route_decide`).
A draft of the library is judged on months of cases at once, so here the same rule runs on
arrays:

1. :func:`cases_read` reads the window's cases with one ``COPY … TO STDOUT (FORMAT csv)`` into
   Arrow (no Python object per row): id, time of receipt, description, category code, the
   version that routed the case, and the department of the last *manual* assignment (an
   ``assign`` step in the transition log by a person, not ``system:…``, naming a department:
   a case staff re-routed by hand).
2. :func:`routes_vectorised` dictionary-encodes the descriptions and the categories, tests each
   keyword once per *distinct* description (``pyarrow.compute.match_substring``, in C++), and
   decides per (description, category) pair with boolean matrices: the rules at the highest
   priority that fired, one department → that department, several → a joint case for the
   command center; no rule → the category's default department (its own, else an ancestor's),
   else the command center. A test checks it against ``route_decide`` on every case.
3. :func:`library_replay` compares the draft's answer with the live library's over the same
   cases (so the difference is the change, nothing else), lists the flows between departments
   with examples and each example's rule trace under both versions, and scores the draft
   against the cases staff re-routed by hand: of the cases the draft moves, how many it moves to
   where staff put them (precision), and of the cases staff re-routed, how many the draft sends
   there (recall).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..models import Category, Department
from ..names import localized
from ..reading import reading
from ..services.dispatch import RuleSpec, category_lineage, route_decide, rule_trace
from ..taxonomy import COMMAND_CENTER

#: Changed cases shown per replay, with their traces.
EXAMPLES = 12
#: Department flows (from → to) listed, largest first.
FLOWS = 20
#: Cases decided per block of the boolean matrices (bounds memory: rows × rules bytes).
BLOCK = 200_000

_CASES_SQL = """
COPY (
    SELECT e.id, e.received_at, e.description, c.code, coalesce(d.code, ''), coalesce(e.rule_version, -1),
           coalesce(m.department, '')
    FROM layers_event e
    JOIN layers_category c ON c.id = e.category_id
    LEFT JOIN layers_department d ON d.id = e.department_id
    LEFT JOIN (
        SELECT DISTINCT ON (t.event_id) t.event_id, t.data ->> 'department' AS department
        FROM layers_eventtransition t
        WHERE t.action = 'assign' AND t.actor_label NOT LIKE 'system:%' AND t.data ->> 'department' IS NOT NULL
              AND t.at >= {since}
        ORDER BY t.event_id, t.at DESC, t.id DESC
    ) m ON m.event_id = e.id
    WHERE e.received_at >= {since} AND e.received_at < {until}
    ORDER BY e.id
) TO STDOUT WITH (FORMAT csv)"""

_COLUMNS = ("id", "received_at", "description", "category", "department", "rule_version", "manual")


@dataclass(frozen=True)
class Cases:
    """The cases of a window as Arrow columns (see :data:`_COLUMNS`); ``manual`` is '' for a
    case no one re-routed by hand, ``rule_version`` -1 for a case no version routed."""

    table: pa.Table

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> pa.Array:
        return self.table.column(name).combine_chunks()


def cases_read(*, since: dt.datetime, until: dt.datetime) -> Cases:
    """The cases received in ``[since, until)`` (see the module docstring), read by COPY."""
    source = reading()
    buffer = io.BytesIO()
    with source.cursor() as cursor:
        # COPY takes no bind parameters: the two instants are rendered by the server's own
        # literal quoting (mogrify), never by string formatting of client text.
        sql = _CASES_SQL.format(
            since=cursor.mogrify("%s::timestamptz", [since]).decode(),
            until=cursor.mogrify("%s::timestamptz", [until]).decode(),
        )
        cursor.copy_expert(sql, buffer)
    buffer.seek(0)
    schema = {
        "id": pa.int64(),
        "received_at": pa.string(),
        "description": pa.string(),
        "category": pa.string(),
        "department": pa.string(),
        "rule_version": pa.int64(),
        "manual": pa.string(),
    }
    if buffer.getbuffer().nbytes == 0:
        return Cases(pa.table({name: pa.array([], type=kind) for name, kind in schema.items()}))
    table = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=list(_COLUMNS)),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    return Cases(table)


@dataclass(frozen=True)
class Routes:
    """Per case: the department code it would go to (``command_center`` for a joint case) and
    whether it is joint."""

    departments: np.ndarray  # object: department codes
    joint: np.ndarray  # bool


def _defaults_by_category(categories: Iterable[str], defaults: dict[str, str | None]) -> list[str | None]:
    """Each category's default department: its own, else the nearest ancestor's."""
    answer = []
    for code in categories:
        answer.append(next((defaults[c] for c in category_lineage(code) if defaults.get(c)), None))
    return answer


def routes_vectorised(
    *, descriptions: pa.Array, categories: pa.Array, rules: tuple[RuleSpec, ...], defaults: dict[str, str | None]
) -> Routes:
    """Where each case goes under ``rules`` (best first: priority descending, then keyword) and
    the categories' ``defaults``: the decision of ``route_decide``, on whole columns."""
    n = len(descriptions)
    if n == 0:
        return Routes(np.empty(0, dtype=object), np.zeros(0, dtype=bool))
    text = pc.dictionary_encode(descriptions)
    kind = pc.dictionary_encode(categories)
    text_index = text.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    kind_index = kind.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    texts, kinds = text.dictionary, kind.dictionary.to_pylist()
    # Each keyword once per distinct description; each rule's reach once per category.
    matches = np.zeros((len(texts), len(rules)), dtype=bool)
    for r, rule in enumerate(rules):
        matches[:, r] = pc.match_substring(texts, rule.keyword).to_numpy(zero_copy_only=False)
    reaches = np.array(
        [[rule.category is None or rule.category in set(category_lineage(code)) for rule in rules] for code in kinds],
        dtype=bool,
    ).reshape(len(kinds), len(rules))
    # Decide once per distinct (description, category) pair.
    pairs, inverse = np.unique(text_index * len(kinds) + kind_index, return_inverse=True)
    pair_text, pair_kind = pairs // len(kinds), pairs % len(kinds)
    names = sorted({rule.department for rule in rules} | {d for d in defaults.values() if d} | {COMMAND_CENTER})
    number = {name: i for i, name in enumerate(names)}
    rule_department = np.array([number[rule.department] for rule in rules], dtype=np.int32)
    priority = np.array([rule.priority for rule in rules], dtype=np.int64)
    fallback = np.array(
        [number[d] if d else -1 for d in _defaults_by_category(kinds, defaults)], dtype=np.int32
    ).reshape(len(kinds))
    chosen = np.empty(len(pairs), dtype=np.int32)
    joint = np.zeros(len(pairs), dtype=bool)
    lowest = np.iinfo(np.int64).min
    for start in range(0, len(pairs), BLOCK):
        block = slice(start, start + BLOCK)
        hit = matches[pair_text[block]] & reaches[pair_kind[block]]
        fired = hit.any(axis=1)
        top = np.where(hit, priority, lowest).max(axis=1, initial=lowest)
        at_top = hit & (priority == top[:, None])
        first = np.where(at_top, rule_department, np.iinfo(np.int32).max).min(axis=1, initial=np.iinfo(np.int32).max)
        last = np.where(at_top, rule_department, -1).max(axis=1, initial=-1)
        several = fired & (first != last)
        default = fallback[pair_kind[block]]
        decided = np.where(fired, first, default)
        nobody = decided < 0
        joint[block] = several | nobody
        chosen[block] = np.where(joint[block], number[COMMAND_CENTER], decided)
    lookup = np.array(names, dtype=object)
    return Routes(lookup[chosen[inverse]], joint[inverse])


# --- the replay ---------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _trace(routing) -> dict:
    return {
        "department": routing.department or COMMAND_CENTER,
        "joint_handling": routing.joint,
        "reason": routing.reason + ("; joint handling by the command center" if routing.joint else ""),
        "rules": [rule_trace(hit) for hit in routing.hits],
        "category_default": routing.category_default,
    }


def library_replay(
    *,
    cases: Cases,
    live: tuple[RuleSpec, ...],
    draft: tuple[RuleSpec, ...],
    defaults: dict[str, str | None],
    with_description: bool,
) -> dict:
    """Compare ``draft`` with ``live`` over ``cases`` (see the module docstring). Department
    names come in the active language; descriptions of the examples only ``with_description``
    (the catalog's rule for events' free text), else the keywords that fired say why."""
    descriptions, categories = cases.column("description"), cases.column("category")
    before = routes_vectorised(descriptions=descriptions, categories=categories, rules=live, defaults=defaults)
    after = routes_vectorised(descriptions=descriptions, categories=categories, rules=draft, defaults=defaults)
    changed = before.departments != after.departments
    manual = cases.column("manual").to_numpy(zero_copy_only=False).astype(object)
    rerouted = manual != ""
    fixed = changed & rerouted & (after.departments == manual)
    names = {
        code: localized(name, name_en)
        for code, name, name_en in Department.objects.values_list("code", "name", "name_en")
    }

    flows: dict[tuple[str, str], int] = {}
    if changed.any():
        pairs, counts = np.unique(
            np.stack([before.departments[changed].astype(str), after.departments[changed].astype(str)]),
            axis=1,
            return_counts=True,
        )
        flows = {(str(a), str(b)): int(c) for (a, b), c in zip(pairs.T, counts, strict=True)}
    ordered = sorted(flows.items(), key=lambda item: (-item[1], item[0]))
    departments = sorted(set(before.departments.astype(str)) | set(after.departments.astype(str)))
    per_department = []
    for code in departments:
        was, now = int((before.departments == code).sum()), int((after.departments == code).sum())
        if was or now:
            per_department.append(
                {"department": code, "name": names.get(code, code), "live": was, "draft": now, "change": now - was}
            )
    per_department.sort(key=lambda row: (-abs(row["change"]), row["department"]))

    # Examples: the newest changed cases of the largest flows, a few per flow, each with its trace.
    ids = cases.column("id").to_numpy()
    received = cases.column("received_at").to_pylist()
    examples, category_names = [], dict(Category.objects.values_list("code", "name"))
    per_flow = max(1, EXAMPLES // max(1, min(len(ordered), EXAMPLES)))
    for (was, now), _count in ordered:
        rows = np.flatnonzero(changed & (before.departments == was) & (after.departments == now))[::-1][:per_flow]
        for row in rows:
            text, code = descriptions[int(row)].as_py(), categories[int(row)].as_py()
            examples.append(
                {
                    "event": int(ids[row]),
                    "received_at": received[row].replace(" ", "T"),
                    "category": code,
                    "category_name": category_names.get(code, code),
                    "description": text if with_description else None,
                    "manual": manual[row] or None,
                    "live": _trace(route_decide(description=text, category_code=code, rules=live, defaults=defaults)),
                    "draft": _trace(route_decide(description=text, category_code=code, rules=draft, defaults=defaults)),
                }
            )
        if len(examples) >= EXAMPLES:
            break

    versions = cases.column("rule_version").to_numpy()
    routed_by = [
        {"version": None if v < 0 else int(v), "cases": int(c)}
        for v, c in zip(*np.unique(versions, return_counts=True), strict=True)
    ]
    total, moved, staff = len(cases), int(changed.sum()), int(rerouted.sum())
    live_agrees = int((rerouted & (before.departments == manual)).sum())
    draft_agrees = int((rerouted & (after.departments == manual)).sum())
    return {
        "cases": total,
        "changed": moved,
        "changed_share": _rate(moved, total),
        "flows": [
            {"from": a, "from_name": names.get(a, a), "to": b, "to_name": names.get(b, b), "cases": n}
            for (a, b), n in ordered[:FLOWS]
        ],
        "departments": per_department,
        "examples": examples,
        "manual": {
            "rerouted": staff,
            "changed_and_as_staff": int(fixed.sum()),
            "precision": _rate(int(fixed.sum()), moved),
            "recall": _rate(int(fixed.sum()), staff),
            "live_agrees": live_agrees,
            "draft_agrees": draft_agrees,
        },
        "routed_by": routed_by,
    }
