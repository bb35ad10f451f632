"""Rewriting personal data under the current key after a rotation (``manage.py
rotate_personal_data_key``).

The operator sets a new ``MINQING_PERSONAL_DATA_KEY`` and moves the old one to
``MINQING_PERSONAL_DATA_KEY_PREVIOUS``; from then on everything reads under either
(:mod:`layers.protection.personal`), and :func:`personal_data_rotate` rewrites every protected value: each
ciphertext opened by a previous key is encrypted again under the current key, and each lookup
digest is computed again from the clear value. Then the previous key can go.

* Every protected column is listed once, in :data:`PROTECTED` (a test checks that no model has
  a ``_cipher`` column it misses).
* Rows are read by key set (``id > last ORDER BY id LIMIT batch``), each batch in its own short
  transaction that locks only its rows (``FOR NO KEY UPDATE``: writers of other rows carry on,
  and a concurrent import cannot be overwritten with what was read before it) and writes them
  back with one ``UPDATE … FROM (VALUES …)``. A row whose values all open under the current key
  and whose digests are the current key's is left alone, so a run stopped half-way is simply run
  again, and a second run rewrites nothing.
* A value no configured key opens is reported by table, id and column, never by value, and left
  as it is (the row's other values are still rewritten): nothing is lost, and the command exits
  non-zero. So does a person whose ID number another person already holds under the current key
  (the unique digest refuses the rewrite): both are named, for a steward to merge.
* The audit log's own tables and the event log are append-only (triggers refuse UPDATE) and
  hold no ciphertext; they are never touched. The run records one audit entry, then signs the
  audit anchor file again under the current key and anchors the head (:mod:`layers.protection.audit`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from psycopg2.errors import UniqueViolation
from psycopg2.extras import execute_values

from layers.protection import personal
from layers.protection.audit import audit_anchor_write, audit_anchors_resign, audit_flush, audit_record


@dataclass(frozen=True)
class ProtectedTable:
    """A table holding personal data: its ciphertext columns, each with the lookup digest
    column computed from the same clear value (``None``: no digest)."""

    table: str
    values: tuple[tuple[str, str | None], ...]
    #: Digest columns under a unique constraint (a rewrite may collide with another row's).
    unique: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [name for pair in self.values for name in pair if name]


#: Every column written under the personal-data key.
PROTECTED = (
    ProtectedTable(
        "layers_person",
        (("id_number_cipher", "id_number_digest"), ("phone_cipher", "phone_digest")),
        unique=("id_number_digest",),
    ),
    ProtectedTable(
        "layers_event",
        (
            ("description_cipher", None),
            ("reporter_name_cipher", None),
            ("reporter_phone_cipher", "reporter_phone_digest"),
        ),
    ),
)

#: A row's class in the counts: every value under the current key already.
CURRENT = "current"
#: A row with a value that no configured key opens.
UNREADABLE = "unreadable"
#: A row whose ciphertexts open under the current key but a digest matches no configured key.
STALE_DIGEST = "stale digest"
#: Unreadable values listed one by one (beyond, only counted: a whole table under a key left out
#: of the settings must not fill the memory; ``--dry-run`` shows that first).
MAX_LISTED = 10_000


@dataclass(frozen=True)
class Unreadable:
    table: str
    id: int
    column: str

    def __str__(self) -> str:
        return f"{self.table} id {self.id} ({self.column})"


@dataclass(frozen=True)
class Duplicate:
    """A row whose rewrite the unique digest refused: ``other`` holds the same value already."""

    table: str
    id: int
    other: int | None

    def __str__(self) -> str:
        return f"{self.table} id {self.id} holds the same value as id {self.other}"


@dataclass
class TableReport:
    """What a run found in one table: rows read, rows by the oldest key one of their values is
    under (:func:`layers.protection.personal.key_labels`, or :data:`UNREADABLE`), rows rewritten."""

    table: str
    rows: int = 0
    by_key: Counter = field(default_factory=Counter)
    rewritten: int = 0


@dataclass
class RotationReport:
    dry_run: bool
    tables: list[TableReport]
    unreadable: list[Unreadable]
    duplicates: list[Duplicate] = field(default_factory=list)
    #: Lines of the audit anchor file signed again under the current key, and the head anchored.
    anchors_resigned: int = 0
    anchored: tuple[int, str] | None = None

    @property
    def rewritten(self) -> int:
        return sum(table.rewritten for table in self.tables)

    @property
    def unreadable_rows(self) -> int:
        """Rows with a value no configured key opens (all of them; :attr:`unreadable` lists the
        first :data:`MAX_LISTED` values)."""
        return sum(table.by_key[UNREADABLE] for table in self.tables)


def _plan(spec: ProtectedTable, row: tuple, labels: list[str]) -> tuple[str, list[str] | None, list[str]]:
    """For one row (id, then ``spec.columns``): its class, its values under the current key
    (``None`` when nothing changes) and the columns no key opens."""
    stored = dict(zip(spec.columns, row[1:], strict=True))
    fresh = dict(stored)
    oldest, unreadable, stale = 0, [], False
    for cipher_column, digest_column in spec.values:
        token = stored[cipher_column]
        if not token:
            continue
        try:
            value, index = personal.decrypt_with_index(token)
        except personal.UnreadableValue:
            unreadable.append(cipher_column)
            continue
        oldest = max(oldest, index)
        if index:
            fresh[cipher_column] = personal.encrypt(value)
        if digest_column and stored[digest_column] != (current := personal.digest(value)):
            fresh[digest_column] = current
            found = personal.digest_index(value, stored[digest_column])
            stale = stale or found is None
            oldest = max(oldest, found or 0)
    changed = fresh != stored
    if unreadable:
        kind = UNREADABLE
    elif oldest:
        kind = labels[oldest]
    else:
        kind = STALE_DIGEST if stale else CURRENT
    return kind, ([fresh[c] for c in spec.columns] if changed else None), unreadable


def _update(cursor, spec: ProtectedTable, update: str, changes: list[tuple]) -> list[Duplicate]:
    """Write a batch's changes in one statement; when a unique digest refuses it, row by row,
    each in a savepoint, and return the rows refused with the row already holding the value."""
    try:
        with transaction.atomic():
            execute_values(cursor.cursor, update, changes, page_size=len(changes))
        return []
    except UniqueViolation:  # raised by psycopg2 itself: execute_values runs on the raw cursor
        pass
    refused = []
    for change in changes:
        try:
            with transaction.atomic():
                execute_values(cursor.cursor, update, [change])
        except UniqueViolation:
            fresh = dict(zip(spec.columns, change[1:], strict=True))
            other = None
            for column in spec.unique:
                cursor.execute(
                    f"SELECT id FROM {spec.table} WHERE {column} = %s AND id <> %s", [fresh[column], change[0]]
                )
                found = cursor.fetchone()
                other = found[0] if found else other
            refused.append(Duplicate(spec.table, change[0], other))
    return refused


def _rotate_table(
    spec: ProtectedTable,
    *,
    batch: int,
    dry_run: bool,
    labels: list[str],
    unreadable: list[Unreadable],
    duplicates: list[Duplicate],
    progress: Callable[[str, int], None] | None,
) -> TableReport:
    report = TableReport(spec.table)
    columns = spec.columns
    # Table and column names come from PROTECTED, never from input.
    select = f"SELECT id, {', '.join(columns)} FROM {spec.table} WHERE id > %s ORDER BY id LIMIT %s" + (
        "" if dry_run else " FOR NO KEY UPDATE"
    )
    update = (
        f"UPDATE {spec.table} AS t SET {', '.join(f'{c} = v.{c}' for c in columns)} "
        f"FROM (VALUES %s) AS v(id, {', '.join(columns)}) WHERE t.id = v.id"
    )
    last = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(select, [last, batch])
            rows = cursor.fetchall()
            changes = []
            for row in rows:
                kind, fresh, lost = _plan(spec, row, labels)
                report.by_key[kind] += 1
                room = MAX_LISTED - len(unreadable)
                unreadable.extend(Unreadable(spec.table, row[0], column) for column in lost[: max(room, 0)])
                if fresh is not None:
                    changes.append((row[0], *fresh))
            if changes and not dry_run:
                refused = _update(cursor, spec, update, changes)
                duplicates.extend(refused)
                report.rewritten -= len(refused)
            report.rewritten += len(changes)
        report.rows += len(rows)
        if progress is not None and rows:
            progress(spec.table, len(rows))
        if len(rows) < batch:
            return report
        last = rows[-1][0]


def personal_data_rotate(
    *, batch: int = 5_000, dry_run: bool = False, progress: Callable[[str, int], None] | None = None
) -> RotationReport:
    """Rewrite every protected value under the current key (:data:`PROTECTED`), ``batch`` rows
    per transaction, and report what was found. ``dry_run`` reads and counts only (the rows it
    would rewrite are counted as ``rewritten``). ``progress`` is called with a table's name and
    the rows just read. A real run then records one audit entry (``personal.rotate_key``), signs
    the audit anchor file again under the current key and anchors the head. Raises
    :class:`~django.core.exceptions.ImproperlyConfigured` for a bad key setting before reading
    anything."""
    labels = personal.key_labels()
    unreadable: list[Unreadable] = []
    duplicates: list[Duplicate] = []
    tables = [
        _rotate_table(
            spec,
            batch=batch,
            dry_run=dry_run,
            labels=labels,
            unreadable=unreadable,
            duplicates=duplicates,
            progress=progress,
        )
        for spec in PROTECTED
    ]
    report = RotationReport(dry_run, tables, unreadable, duplicates)
    if dry_run:
        return report
    audit_record(
        action="personal.rotate_key",
        target="personal_data_key",
        detail={
            "previous_keys": len(labels) - 1,
            "tables": {t.table: {"rows": t.rows, "rewritten": t.rewritten} for t in tables},
            "unreadable": [{"table": u.table, "id": u.id, "column": u.column} for u in unreadable[:100]],
            "unreadable_rows": report.unreadable_rows,
            "duplicates": [{"table": d.table, "id": d.id, "other": d.other} for d in duplicates[:100]],
        },
    )
    audit_flush()
    report.anchors_resigned = audit_anchors_resign()
    report.anchored = audit_anchor_write()
    return report
