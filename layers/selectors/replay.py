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

from layers.database.reading import reading

from ..models import Category, Department, Event
from ..names import localized
from ..services.dispatch import RuleSpec, category_lineage, route_decide, rule_trace
from ..taxonomy import COMMAND_CENTER

#: Changed cases shown per replay, with their traces.
EXAMPLES = 12
#: Department flows (from → to) listed, largest first.
FLOWS = 20

# Two statements: the window's cases (no join: categories are a few dozen ids, mapped after) and
# the hand re-routings (a small slice of the log), matched to the cases by id in numpy. A join
# of the two in one COPY cost three times as much at a million cases.
_CASES_SQL = """
COPY (
    SELECT e.id, e.description, e.category_id, coalesce(e.rule_version, -1)
    FROM layers_event e
    WHERE e.received_at >= {since} AND e.received_at < {until}
    ORDER BY e.id
) TO STDOUT WITH (FORMAT csv)"""

_MANUAL_SQL = """
SELECT DISTINCT ON (t.event_id) t.event_id, t.data ->> 'department'
FROM layers_eventtransition t
WHERE t.action = 'assign' AND t.actor_label NOT LIKE 'system:%%' AND t.data ->> 'department' IS NOT NULL
      AND t.at >= %s
ORDER BY t.event_id, t.at DESC, t.id DESC"""

_SCHEMA = {"id": pa.int64(), "description": pa.string(), "category_id": pa.int64(), "rule_version": pa.int64()}


@dataclass(frozen=True)
class Cases:
    """The cases of a window: ``table`` holds id, description, category (code), rule_version
    (-1: no version routed it) and manual ('' for a case no one re-routed by hand)."""

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
        # COPY takes no bind parameters: the two instants are rendered by the driver's own literal
        # quoting (mogrify), never by formatting client text into the statement.
        sql = _CASES_SQL.format(
            since=cursor.mogrify("%s::timestamptz", [since]).decode(),
            until=cursor.mogrify("%s::timestamptz", [until]).decode(),
        )
        cursor.copy_expert(sql, buffer)
        cursor.execute(_MANUAL_SQL, [since])
        manual_rows = cursor.fetchall()
        cursor.execute("SELECT id, code FROM layers_category")
        category_codes = dict(cursor.fetchall())
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        table = pa.table({name: pa.array([], type=kind) for name, kind in _SCHEMA.items()})
    else:
        table = pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=list(_SCHEMA)),
            convert_options=pacsv.ConvertOptions(
                column_types=_SCHEMA, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    ids = table.column("id").to_numpy()
    # Categories and hand re-routings as dictionary arrays (indices into a few dozen names): no
    # Python object per case.
    known = np.array(sorted(category_codes), dtype=np.int64)
    category_index = np.searchsorted(known, table.column("category_id").to_numpy()).astype(np.int32)
    categories = pa.DictionaryArray.from_arrays(
        pa.array(category_index, type=pa.int32()), pa.array([category_codes[i] for i in known], type=pa.string())
    )
    staff_names = sorted({row[1] for row in manual_rows})
    staff_index = np.zeros(len(ids), dtype=np.int32)  # 0: ''
    if manual_rows and len(ids):
        rerouted = np.array([row[0] for row in manual_rows], dtype=np.int64)
        where = np.searchsorted(ids, rerouted)
        inside = where < len(ids)
        inside[inside] = ids[where[inside]] == rerouted[inside]
        position = {name: i + 1 for i, name in enumerate(staff_names)}
        staff_index[where[inside]] = np.array([position[row[1]] for row in manual_rows], dtype=np.int32)[inside]
    manual = pa.DictionaryArray.from_arrays(
        pa.array(staff_index, type=pa.int32()), pa.array(["", *staff_names], type=pa.string())
    )
    table = pa.table(
        {
            "id": table.column("id"),
            "description": table.column("description"),
            "category": categories,
            "rule_version": table.column("rule_version"),
            "manual": manual,
        }
    )
    return Cases(table)


class KeywordMatcher:
    """Which distinct descriptions hold a keyword, with numpy over all of them at once.

    The descriptions' UTF-8 bytes lie back to back in the Arrow array's data buffer. They are
    decoded once into one array of code points, with each description's start in it (the count
    of UTF-8 lead bytes before its byte offset). A keyword's occurrences are then the positions
    holding its first character — found among the positions holding any keyword's first
    character, computed once — whose following positions hold the rest of it; an occurrence that
    runs past its description's end is not one. Answers are kept per keyword (the live library
    and the draft share most of theirs)."""

    def __init__(self, texts: pa.Array, keywords: Iterable[str] = ()) -> None:
        texts = texts.cast(pa.large_string()) if texts.type == pa.string() else texts
        self.count = len(texts)
        self._found: dict[str, np.ndarray] = {}
        self._firsts: dict[int, np.ndarray] = {}
        if not self.count:
            return
        buffers = texts.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64)[texts.offset : texts.offset + self.count + 1]
        raw = b"" if buffers[2] is None else memoryview(buffers[2])[offsets[0] : offsets[-1]].tobytes()
        lengths = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)])
        # One padding code point (0) so that looking one character past the end is safe.
        self.points = np.frombuffer(raw.decode("utf-8").encode("utf-32-le") + b"\0\0\0\0", dtype=np.uint32)
        self.prepare(keywords)

    def prepare(self, keywords: Iterable[str]) -> None:
        """Find at once where every first character of ``keywords`` stands (one pass)."""
        wanted = sorted({ord(k[0]) for k in keywords if k} - set(self._firsts))
        if not wanted or not self.count:
            return
        # A lookup table over every code point (1.1 MB): one gather per character of the texts.
        table = np.zeros(0x110000, dtype=bool)
        table[wanted] = True
        where = np.flatnonzero(table[self.points])
        chars = self.points[where]
        for char in wanted:
            self._firsts[char] = where[chars == char]

    def rows(self, keyword: str) -> np.ndarray:
        """A boolean per distinct description: does it hold ``keyword``?"""
        found = self._found.get(keyword)
        if found is not None:
            return found
        found = np.zeros(self.count, dtype=bool)
        if self.count and keyword:
            self.prepare([keyword])
            at = self._firsts[ord(keyword[0])]
            for shift, char in enumerate(keyword[1:], start=1):
                at = at[self.points[np.minimum(at + shift, len(self.points) - 1)] == ord(char)]
            if len(at):
                row = np.searchsorted(self.starts, at, side="right") - 1
                found[row[at + len(keyword) <= self.starts[row + 1]]] = True
        self._found[keyword] = found
        return found


@dataclass(frozen=True)
class Encoded:
    """Each case's description (by position) and category (by index into the distinct ones)."""

    text_index: np.ndarray
    kind_index: np.ndarray
    kinds: list[str]
    matcher: KeywordMatcher


def cases_encode(*, descriptions: pa.Array, categories: pa.Array) -> Encoded:
    """Categories dictionary-encoded (a few dozen); descriptions are searched as they are, one per
    case: people's descriptions rarely repeat, and hashing a million texts to find the few that
    do cost more than it saved."""
    kind = categories if pa.types.is_dictionary(categories.type) else pc.dictionary_encode(categories)
    return Encoded(
        text_index=np.arange(len(descriptions), dtype=np.int64),
        kind_index=kind.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        kinds=kind.dictionary.to_pylist(),
        matcher=KeywordMatcher(descriptions),
    )


@dataclass(frozen=True)
class Routes:
    """Per case: the department it would go to (``command_center`` for a joint case) as an index
    into ``names``, and whether it is joint."""

    codes: np.ndarray  # int32 indices into names
    names: tuple[str, ...]
    joint: np.ndarray  # bool

    @property
    def departments(self) -> np.ndarray:
        """The department codes (objects): for tests and small slices."""
        return np.array(self.names, dtype=object)[self.codes]


def department_names(rules: Iterable[RuleSpec], defaults: dict[str, str | None]) -> tuple[str, ...]:
    """Every department a routing under ``rules`` may answer, sorted (the command center too)."""
    return tuple(sorted({rule.department for rule in rules} | {d for d in defaults.values() if d} | {COMMAND_CENTER}))


def _defaults_by_category(categories: Iterable[str], defaults: dict[str, str | None]) -> list[str | None]:
    """Each category's default department: its own, else the nearest ancestor's."""
    answer = []
    for code in categories:
        answer.append(next((defaults[c] for c in category_lineage(code) if defaults.get(c)), None))
    return answer


def routes_vectorised(
    *,
    descriptions: pa.Array,
    categories: pa.Array,
    rules: tuple[RuleSpec, ...],
    defaults: dict[str, str | None],
    encoded: Encoded | None = None,
    names: tuple[str, ...] | None = None,
) -> Routes:
    """Where each case goes under ``rules`` (best first: priority descending, then keyword) and
    the categories' ``defaults``: the decision of ``route_decide``, on whole columns. ``encoded``
    (from :func:`cases_encode` over the same columns) shares the keyword search between calls."""
    n = len(descriptions)
    if n == 0:
        return Routes(np.empty(0, dtype=np.int32), names or department_names(rules, defaults), np.zeros(0, dtype=bool))
    encoded = encoded or cases_encode(descriptions=descriptions, categories=categories)
    kind_index, kinds = encoded.kind_index, encoded.kinds
    names = names or department_names(rules, defaults)
    number = {name: i for i, name in enumerate(names)}
    fallback = np.array([number[d] if d else -1 for d in _defaults_by_category(kinds, defaults)], dtype=np.int32)
    # Priority levels from the top: a case is decided by the highest level at which a rule
    # fires; one department there wins, several make a joint case. Per rule a few operations on
    # whole vectors (the lowest and highest department code seen at the level), no matrix.
    decided = np.full(n, -1, dtype=np.int32)
    several = np.zeros(n, dtype=bool)
    fired = np.zeros(n, dtype=bool)
    none, top = np.iinfo(np.int32).max, -1
    for level in sorted({rule.priority for rule in rules}, reverse=True):
        lowest = np.full(n, none, dtype=np.int32)
        highest = np.full(n, top, dtype=np.int32)
        for rule in (r for r in rules if r.priority == level):
            hit = encoded.matcher.rows(rule.keyword) & ~fired
            if rule.category is not None:
                # A restricted rule reaches the categories at or under its category.
                reached = np.array([rule.category in category_lineage(code) for code in kinds], dtype=bool)
                hit &= reached[kind_index]
            department = number[rule.department]
            np.minimum(lowest, department, out=lowest, where=hit)
            np.maximum(highest, department, out=highest, where=hit)
        new = highest > top
        decided[new], several[new] = lowest[new], lowest[new] != highest[new]
        fired |= new
    decided = np.where(fired, decided, fallback[kind_index])
    joint = several | (decided < 0)
    chosen = np.where(joint, number[COMMAND_CENTER], decided).astype(np.int32)
    return Routes(chosen, names, joint)


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
    encoded = cases_encode(descriptions=descriptions, categories=categories)
    encoded.matcher.prepare(rule.keyword for rule in (*live, *draft))
    codes = department_names((*live, *draft), defaults)
    before, after = (
        routes_vectorised(
            descriptions=descriptions,
            categories=categories,
            rules=rules,
            defaults=defaults,
            encoded=encoded,
            names=codes,
        )
        for rules in (live, draft)
    )
    changed = before.codes != after.codes
    # The hand re-routings as indices into the same department list (-1: none; -2: a department
    # no routing answers, which nothing equals).
    staff = cases.column("manual")
    staff_encoded = staff if pa.types.is_dictionary(staff.type) else pc.dictionary_encode(staff)
    staff_codes = np.array(
        [-1 if not c else (codes.index(c) if c in codes else -2) for c in staff_encoded.dictionary.to_pylist()],
        dtype=np.int32,
    )
    manual = staff_codes[staff_encoded.indices.to_numpy(zero_copy_only=False)] if len(cases) else np.empty(0, np.int32)
    rerouted = manual != -1
    fixed = changed & rerouted & (after.codes == manual)
    names = {
        code: localized(name, name_en)
        for code, name, name_en in Department.objects.values_list("code", "name", "name_en")
    }

    # Flows (from → to) and the change per department: integer histograms, no row loop.
    width = len(codes)
    flow_counts = np.bincount(before.codes[changed] * width + after.codes[changed], minlength=width * width)
    ordered = sorted(
        (((codes[i // width], codes[i % width]), int(flow_counts[i])) for i in np.flatnonzero(flow_counts)),
        key=lambda item: (-item[1], item[0]),
    )
    was_counts = np.bincount(before.codes, minlength=width)
    now_counts = np.bincount(after.codes, minlength=width)
    per_department = [
        {
            "department": code,
            "name": names.get(code, code),
            "live": int(was),
            "draft": int(now),
            "change": int(now - was),
        }
        for code, was, now in zip(codes, was_counts, now_counts, strict=True)
        if was or now
    ]
    per_department.sort(key=lambda row: (-abs(row["change"]), row["department"]))

    # Examples: the newest changed cases of the largest flows, a few per flow, each with its trace.
    ids = cases.column("id").to_numpy()
    staff_names = cases.column("manual")
    picked: list[int] = []
    per_flow = max(1, EXAMPLES // max(1, min(len(ordered), EXAMPLES)))
    for (was, now), _count in ordered:
        flow = changed & (before.codes == codes.index(was)) & (after.codes == codes.index(now))
        picked += [int(row) for row in np.flatnonzero(flow)[::-1][:per_flow]]
        if len(picked) >= EXAMPLES:
            break
    received = dict(Event.objects.filter(pk__in=[int(ids[row]) for row in picked]).values_list("pk", "received_at"))
    category_names = dict(Category.objects.values_list("code", "name"))
    examples = []
    for row in picked[:EXAMPLES]:
        text, code = descriptions[row].as_py(), categories[row].as_py()
        examples.append(
            {
                "event": int(ids[row]),
                "received_at": received[int(ids[row])].isoformat() if int(ids[row]) in received else None,
                "category": code,
                "category_name": category_names.get(code, code),
                "description": text if with_description else None,
                "manual": staff_names[row].as_py() or None,
                "live": _trace(route_decide(description=text, category_code=code, rules=live, defaults=defaults)),
                "draft": _trace(route_decide(description=text, category_code=code, rules=draft, defaults=defaults)),
            }
        )

    versions = cases.column("rule_version").to_numpy()
    routed_by = [
        {"version": None if v < 0 else int(v), "cases": int(c)}
        for v, c in zip(*np.unique(versions, return_counts=True), strict=True)
    ]
    total, moved, staff = len(cases), int(changed.sum()), int(rerouted.sum())
    live_agrees = int((rerouted & (before.codes == manual)).sum())
    draft_agrees = int((rerouted & (after.codes == manual)).sum())
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
