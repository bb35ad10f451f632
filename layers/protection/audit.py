"""The tamper-evident audit log: record what happened to people's data, and prove nothing was
changed since.

* :func:`audit_record` queues one entry (who, action, target, detail) in the caller's
  transaction; the database chains it when that transaction commits (migration
  ``0009_audit_log``: a deferred trigger, the chain head locked ``FOR UPDATE``), so entries of a
  rolled-back transaction never appear and concurrent writers never fork the chain. Event
  transitions are recorded by a trigger on their own log, whatever path wrote them.
* :func:`audit_verify` walks the chain in batches and reports the first altered, inserted or
  deleted row by sequence number (``manage.py verify_audit_log``). It recomputes every hash in
  Python from the stored columns (:func:`entry_content`), independently of the SQL that wrote
  them.
* Permission changes (group membership, group and user permissions, the superuser, staff and
  active flags, data scopes, users and groups deleted) are recorded through Django's signals
  (:func:`connect_signals`, called by the app config).

Who acts: the user of the current request (:class:`AuditRequestMiddleware` in
:mod:`mapserver.security` remembers the request for this thread or task), else the operating
system account of a management command (``cli:<name>``), unless :func:`acting_as` says otherwise.

The application's database role cannot change the log at all (migration
``0011_application_role``); the owner's can, and could rewrite or cut the chain from some row on.
So the chain head is also kept outside the database: :func:`audit_anchor_write` appends it, with
an HMAC under a key the database never sees, to ``MINQING_AUDIT_ANCHOR_FILE``
(``anchor_audit_log`` from a timer, and every successful ``verify_audit_log``), and
:func:`audit_verify` checks the chain against every anchor kept there: a truncated log, a
deleted tail or a rewritten row before the last anchor is found without anyone having to supply
an anchor by hand.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import getpass
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

#: The hash before the first row.
GENESIS = "0" * 64
#: Longest actor, action and target (the columns' sizes).
MAX_ACTOR, MAX_ACTION, MAX_TARGET = 150, 40, 200
_LINE_BREAKS = re.compile(r"[\r\n]")


# --- who acts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who an entry names: a user id (``None`` for the system or a command) and a label."""

    id: int | None
    label: str


_request: contextvars.ContextVar = contextvars.ContextVar("minqing_audit_request", default=None)
_override: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("minqing_audit_actor", default=None)


def request_enter(request) -> contextvars.Token:
    """Remember the request being served (for :func:`current_actor`); returns the token that
    :func:`request_leave` takes."""
    return _request.set(request)


def request_leave(token: contextvars.Token) -> None:
    _request.reset(token)


def current_request():
    """The request this thread or task is serving, if any (set by AuditRequestMiddleware)."""
    return _request.get()


def actor_of(user) -> Actor:
    """The actor for a Django user (anonymous: no id)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(None, "anonymous")
    return Actor(user.pk, user.get_username())


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no name
        return str(os.getuid())


def current_actor() -> Actor:
    """Who is acting now: :func:`acting_as`, else the request's user, else ``cli:<os user>``."""
    override = _override.get()
    if override is not None:
        return override
    request = _request.get()
    if request is not None:
        return actor_of(getattr(request, "user", None))
    return Actor(None, f"cli:{_os_user()}")


@contextlib.contextmanager
def acting_as(actor: Actor | str):
    """Name the actor of the entries recorded inside the block (a label, or an :class:`Actor`)."""
    token = _override.set(actor if isinstance(actor, Actor) else Actor(None, actor))
    try:
        yield
    finally:
        _override.reset(token)


# --- writing ------------------------------------------------------------------------------------


def _one_line(name: str, value: str, limit: int) -> str:
    if not value or _LINE_BREAKS.search(value) or len(value) > limit:
        raise ValueError(f"audit {name} must be 1 to {limit} characters on one line, got {value[:60]!r}")
    return value


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars (an importer's counts)
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def audit_record(*, action: str, target: str, detail: dict | None = None, actor: Actor | None = None) -> None:
    """Queue one entry; it joins the chain when the caller's transaction commits (at once when
    there is none), and vanishes with it if it rolls back. ``detail`` must be JSON-serialisable
    (dates and other values become their text) and must not hold clear personal data. An entry
    recorded while a request is served also names the client's address (``client``: the one
    ``mapserver.security.ProxyHeadersMiddleware`` settled, as the lockout and rate limits use)."""
    who = actor or current_actor()
    detail = dict(detail or {})
    request = _request.get()
    if request is not None and "client" not in detail:
        detail["client"] = request.META.get("REMOTE_ADDR")
    text = json.dumps(detail, ensure_ascii=False, default=_json_default, allow_nan=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO layers_auditpending (actor_id, actor, action, target, detail) VALUES (%s, %s, %s, %s, %s::jsonb)",
            [
                who.id,
                _one_line("actor", who.label[:MAX_ACTOR], MAX_ACTOR),
                _one_line("action", action, MAX_ACTION),
                _one_line("target", target[:MAX_TARGET], MAX_TARGET),
                text,
            ],
        )


def audit_flush() -> None:
    """Chain the entries queued so far in the current transaction now rather than at commit
    (tests read them back inside a transaction that never commits). Outside a transaction there
    is nothing queued."""
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS auditpending_chain IMMEDIATE")
            cursor.execute("SET CONSTRAINTS auditpending_chain DEFERRED")


# --- the chain ----------------------------------------------------------------------------------


def entry_content(
    *, seq: int, at: dt.datetime, actor_id: int | None, actor: str, action: str, target: str, detail_text: str
) -> str:
    """The canonical text of a row that its hash covers: sequence, UTC time with microseconds,
    actor id, actor, action, target and the detail as PostgreSQL prints jsonb, one per line
    (the same as ``layers_audit_content`` in SQL).

    >>> import datetime as dt
    >>> entry_content(seq=1, at=dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC), actor_id=None, actor="cli:root",
    ...               action="import", target="import:persons", detail_text='{"rows": 3}')
    '1\\n2026-05-01T00:00:00.000000Z\\n\\ncli:root\\nimport\\nimport:persons\\n{"rows": 3}'
    """
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = "\n".join([str(seq), stamp, "" if actor_id is None else str(actor_id), actor, action, target])
    return f"{head}\n{detail_text}"


def entry_hash(prev_hash: str, content: str) -> str:
    """SHA-256 (hex) of the previous row's hash followed by this row's content, as UTF-8."""
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Row:
    seq: int
    prev_hash: str
    hash: str
    expected: str


@dataclass(frozen=True)
class Finding:
    """The first problem found: the sequence number it concerns, its kind (``altered``,
    ``inserted`` or ``deleted``) and what the chain shows."""

    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"sequence {self.seq}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class Verification:
    """What :func:`audit_verify` found: the rows walked, the last sequence, the chain head and
    the first problem (``None``: the log is intact)."""

    rows: int
    last_seq: int
    head_seq: int
    head_hash: str
    finding: Finding | None

    @property
    def intact(self) -> bool:
        return self.finding is None


_BATCH_SQL = """
    SELECT seq, at, actor_id, actor, action, target, detail::text, prev_hash, hash
    FROM layers_auditentry WHERE seq > %s ORDER BY seq LIMIT %s"""


def _rows(batch: int) -> Iterator[_Row]:
    """Every row in sequence order, ``batch`` rows per statement (keyset on seq), with the hash
    its content implies."""
    after = -1
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_BATCH_SQL, [after, batch])
            fetched = cursor.fetchall()
        for seq, at, actor_id, actor, action, target, detail_text, prev_hash, stored in fetched:
            content = entry_content(
                seq=seq, at=at, actor_id=actor_id, actor=actor, action=action, target=target, detail_text=detail_text
            )
            yield _Row(seq, prev_hash, stored, entry_hash(prev_hash, content))
        if len(fetched) < batch:
            return
        after = fetched[-1][0]


def _head() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM layers_auditchainhead WHERE id = 1")
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def _check(row: _Row, following: _Row | None, seq: int, hash_: str, hash_before: str | None) -> Finding | None:
    """The problem at ``row`` given the last good row (``seq``, ``hash_``) and the hash of the
    row before that; ``following`` lets an inserted row be told from an altered one."""
    if row.seq != seq + 1:
        where = f"starts at sequence {row.seq}" if seq == 0 else f"jumps from sequence {seq} to {row.seq}"
        return Finding(seq + 1, "deleted", f"the log {where}")
    chained, consistent = row.prev_hash == hash_, row.expected == row.hash
    if chained and consistent:
        return None
    if following is not None and following.seq == row.seq + 1 and following.prev_hash == hash_:
        return Finding(row.seq, "inserted", f"row {following.seq} chains to row {seq}, skipping it")
    if not chained and seq > 0:
        if hash_before is not None and row.prev_hash == hash_before:
            return Finding(seq, "inserted", f"row {row.seq} chains to row {seq - 1}, skipping it")
        if consistent:
            return Finding(
                seq, "altered", f"row {row.seq} chains to a different hash of it (the row and its hash were rewritten)"
            )
        return Finding(row.seq, "altered", f"its hash does not match its content, nor does it chain to row {seq}")
    if not chained:
        return Finding(row.seq, "altered", "the first row does not start from the genesis hash")
    return Finding(row.seq, "altered", "its hash does not match its content")


def audit_verify(
    *,
    batch: int = 10_000,
    anchors: list[tuple[int, str]] | tuple[tuple[int, str], ...] = (),
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Walk the whole chain, ``batch`` rows per statement, and return what it shows.

    Every row must follow the previous one by sequence number (a gap: ``deleted``), chain to its
    hash and hash to its own content (else ``altered``, or ``inserted`` when the rows around it
    chain to each other); the last row must be the chain head's. ``anchors`` (sequence numbers
    and the hashes kept elsewhere for them: :func:`audit_anchors_read`, or one given by hand)
    catch a chain rewritten from some row on, or cut short. Read in one snapshot (repeatable
    read) when called outside a transaction, so writers carry on meanwhile. ``progress`` is
    called with the number of rows walked after each row."""
    kept = dict(anchors)
    if connection.in_atomic_block:
        return _walk(batch, kept, progress)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _walk(batch, kept, progress)


def _walk(batch: int, anchors: dict[int, str], progress: Callable[[int], None] | None) -> Verification:
    head_seq, head_hash = _head()
    seq, hash_, hash_before, walked = 0, GENESIS, None, 0

    def result(finding: Finding | None) -> Verification:
        return Verification(walked, seq, head_seq, head_hash, finding)

    rows = _rows(batch)
    row = next(rows, None)
    while row is not None:
        following = next(rows, None)
        if row.seq > head_seq:
            return result(Finding(row.seq, "inserted", f"it lies beyond the chain head (sequence {head_seq})"))
        finding = _check(row, following, seq, hash_, hash_before)
        if finding is not None:
            return result(finding)
        if row.seq in anchors and row.hash != anchors[row.seq]:
            return result(Finding(row.seq, "altered", "its hash differs from the anchor kept for it"))
        seq, hash_, hash_before = row.seq, row.hash, hash_
        walked += 1
        if progress is not None:
            progress(walked)
        row = following
    if seq < head_seq:
        where = "the log is empty" if seq == 0 else f"the log ends at sequence {seq}"
        return result(Finding(seq + 1, "deleted", f"{where} but its head is at {head_seq}"))
    if seq > 0 and hash_ != head_hash:
        return result(Finding(seq, "altered", "the chain head holds a different hash for it"))
    last_anchor = max(anchors, default=0)
    if last_anchor > seq:
        where = "the log is empty" if seq == 0 else f"the log ends at sequence {seq}"
        return result(Finding(seq + 1, "deleted", f"{where}, before the anchor kept for sequence {last_anchor}"))
    return result(None)


# --- anchors kept outside the database --------------------------------------------------------------


class AnchorFileError(Exception):
    """The anchor file cannot be trusted: a line that is not an anchor, or whose HMAC fails."""


def _anchor_keys() -> list[bytes]:
    """The HMAC keys of anchors, the current one first: derived from the personal-data key (and
    the previous ones during a rotation), which lives with the application and never in the
    database (nor in its backups)."""
    from layers.protection import personal

    return [hmac.new(key, b"minqing:audit-anchor", hashlib.sha256).digest() for key in personal.master_keys()]


def _anchor_mac(database: str, seq: int, hash_: str, at: str, key: bytes | None = None) -> str:
    """The HMAC of an anchor line under ``key`` (default: the current key's)."""
    message = f"{database}\n{seq}\n{hash_}\n{at}".encode()
    return hmac.new(key or _anchor_keys()[0], message, hashlib.sha256).hexdigest()


def _anchor_trusted(database: str, seq: int, hash_: str, at: str, mac: str) -> bool:
    """Whether ``mac`` is the line's HMAC under the current or a previous key."""
    return any(hmac.compare_digest(mac, _anchor_mac(database, seq, hash_, at, key)) for key in _anchor_keys())


def _anchor_path(path: Path | str | None) -> Path | None:
    chosen = path if path is not None else settings.MINQING_AUDIT_ANCHOR_FILE
    return Path(chosen) if chosen else None


def audit_anchor_write(*, path: Path | str | None = None) -> tuple[int, str] | None:
    """Append the chain head (sequence, hash) of this database to the anchor file (default
    ``MINQING_AUDIT_ANCHOR_FILE``) and return it; nothing for an empty log or with no file set.
    One JSON line per anchor, flushed to disk before returning."""
    target = _anchor_path(path)
    seq, hash_ = _head()
    if target is None or seq == 0:
        return None
    database = connection.settings_dict["NAME"]
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    line = {"database": database, "seq": seq, "hash": hash_, "at": at, "mac": _anchor_mac(database, seq, hash_, at)}
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return seq, hash_


def _anchor_lines(source: Path) -> Iterator[tuple[int, dict]]:
    """Each anchor line of ``source`` (its number and fields), its HMAC checked under the current
    or a previous key; :class:`AnchorFileError` names the first line that fails."""
    for number, text in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            fields = (str(line["database"]), int(line["seq"]), str(line["hash"]), str(line["at"]), str(line["mac"]))
        except (ValueError, KeyError, TypeError):
            raise AnchorFileError(f"{source}, line {number}: not an anchor") from None
        name, seq, hash_, at, mac = fields
        if not _anchor_trusted(name, seq, hash_, at, mac):
            raise AnchorFileError(f"{source}, line {number}: its HMAC does not match (the file was altered)")
        yield number, {"database": name, "seq": seq, "hash": hash_, "at": at, "mac": mac}


def audit_anchors_read(*, path: Path | str | None = None) -> list[tuple[int, str]]:
    """The anchors of this database in the anchor file (default ``MINQING_AUDIT_ANCHOR_FILE``):
    ``(sequence, hash)`` pairs, each line's HMAC checked (under the current personal-data key or
    a previous one). Raises :class:`AnchorFileError` naming the line that is not an anchor or
    fails its check."""
    source = _anchor_path(path)
    if source is None or not source.exists():
        return []
    database = connection.settings_dict["NAME"]
    return [(line["seq"], line["hash"]) for _, line in _anchor_lines(source) if line["database"] == database]


def audit_anchors_resign(*, path: Path | str | None = None) -> int:
    """Sign every line of the anchor file (default ``MINQING_AUDIT_ANCHOR_FILE``) under the
    current key, so the anchors stay trusted once the previous keys are removed after a
    rotation; returns the lines re-signed. Every line is checked first (under any configured
    key) and the file is replaced whole (a new file fsynced, then renamed over the old one), so
    a failure leaves it as it was. Raises :class:`AnchorFileError` like
    :func:`audit_anchors_read`."""
    source = _anchor_path(path)
    if source is None or not source.exists():
        return 0
    lines = [line for _, line in _anchor_lines(source)]
    key = _anchor_keys()[0]
    for line in lines:
        line["mac"] = _anchor_mac(line["database"], line["seq"], line["hash"], line["at"], key)
    fresh = source.with_name(f".{source.name}.{os.getpid()}.tmp")
    with fresh.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(fresh, source.stat().st_mode & 0o7777)
    os.replace(fresh, source)
    return len(lines)


# --- permission changes ---------------------------------------------------------------------------

_FLAGS = ("is_superuser", "is_staff", "is_active")


def _label(obj) -> str:
    """How an entry names a group, permission, user, region or grid."""
    from django.contrib.auth.models import Group, Permission

    if isinstance(obj, Group):
        return obj.name
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    if hasattr(obj, "get_username"):
        return obj.get_username()
    return getattr(obj, "code", None) or str(obj.pk)


def _target(obj) -> str:
    """The target of an entry about ``obj``; a data scope is its user's."""
    from django.contrib.auth.models import Group, Permission

    if isinstance(obj, Group):
        return f"group:{obj.name}"
    if isinstance(obj, Permission):
        return f"permission:{_label(obj)}"
    if hasattr(obj, "get_username"):
        return f"user:{obj.get_username()}"
    return f"user:{obj.user.get_username()}"  # a ReaderScope


def _m2m_receiver(action_name: str, forward: str, reverse: str | None):
    """A ``m2m_changed`` receiver recording adds, removals and clears of one relation, from
    either side (``forward`` and ``reverse`` name the managers, for a clear)."""

    def receiver(sender, instance, action, reverse: bool, model, pk_set, **kwargs):
        if action == "pre_clear":
            # The ids are gone once the clear has run: remember them for post_clear.
            accessor = reverse_accessor if reverse else forward
            manager = getattr(instance, accessor, None) if accessor else None
            instance._audit_cleared = list(manager.values_list("pk", flat=True)) if manager is not None else []
            return
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        ids = getattr(instance, "_audit_cleared", []) if action == "post_clear" else sorted(pk_set or ())
        if not ids:
            return
        names = sorted(_label(obj) for obj in model.objects.filter(pk__in=ids))
        key = f"{model._meta.model_name}s"  # groups, users, permissions, regions, grids
        audit_record(action=action_name, target=_target(instance), detail={"op": action[5:], key: names})

    reverse_accessor = reverse
    return receiver


def connect_signals() -> None:
    """Record permission changes: group membership, group and user permissions, the superuser,
    staff and active flags, users created or deleted, groups deleted, data scopes."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import signals

    user_model = get_user_model()
    relations = [
        (user_model.groups.through, "permission.groups", "groups", "user_set"),
        (Group.permissions.through, "permission.group_permissions", "permissions", "group_set"),
        (user_model.user_permissions.through, "permission.user_permissions", "user_permissions", "user_set"),
    ]
    try:
        scope_model = apps.get_model("layers", "ReaderScope")
    except LookupError:
        scope_model = None
    if scope_model is not None:
        for name in ("regions", "grids"):
            relations.append((scope_model._meta.get_field(name).remote_field.through, "permission.scope", name, None))
    for through, action_name, forward, reverse in relations:
        signals.m2m_changed.connect(
            _m2m_receiver(action_name, forward, reverse),
            sender=through,
            dispatch_uid=f"audit-{through._meta.db_table}",
            weak=False,
        )

    def user_before(sender, instance, raw=False, update_fields=None, **kwargs):
        if raw or instance.pk is None:
            return
        if update_fields is not None and not set(update_fields) & set(_FLAGS):
            return  # a login's last_login update, say: one query saved per login
        old = sender.objects.filter(pk=instance.pk).values(*_FLAGS).first()
        if old is not None:
            instance._audit_flags = {
                f: [old[f], getattr(instance, f)] for f in _FLAGS if old[f] != getattr(instance, f)
            }

    def user_after(sender, instance, created, raw=False, **kwargs):
        if raw:
            return
        if created:
            audit_record(
                action="user.create", target=_target(instance), detail={f: getattr(instance, f) for f in _FLAGS}
            )
            return
        changed = getattr(instance, "_audit_flags", None)
        if changed:
            instance._audit_flags = None
            audit_record(action="permission.flags", target=_target(instance), detail=changed)

    def deleted(sender, instance, **kwargs):
        audit_record(action="group.delete" if isinstance(instance, Group) else "user.delete", target=_target(instance))

    signals.pre_save.connect(user_before, sender=user_model, dispatch_uid="audit-user-before", weak=False)
    signals.post_save.connect(user_after, sender=user_model, dispatch_uid="audit-user-after", weak=False)
    signals.post_delete.connect(deleted, sender=user_model, dispatch_uid="audit-user-delete", weak=False)
    signals.post_delete.connect(deleted, sender=Group, dispatch_uid="audit-group-delete", weak=False)
    if scope_model is None:
        return

    def scope_saved(sender, instance, raw=False, **kwargs):
        if not raw:
            audit_record(
                action="permission.scope",
                target=_target(instance),
                detail={"level": instance.level, "note": instance.note},
            )

    signals.post_save.connect(scope_saved, sender=scope_model, dispatch_uid="audit-scope", weak=False)

    # A grid's worker reads that grid's residents and cases: assigning one is a permission change,
    # recorded whichever path saves the grid (the admin, an import, a shell).
    grid_model = apps.get_model("layers", "Grid")

    def grid_before(sender, instance, raw=False, **kwargs):
        if raw or instance.pk is None:
            instance._audit_worker = None if instance.worker_id is None else (None, instance.worker_id)
            return
        old = sender.objects.filter(pk=instance.pk).values_list("worker_id", flat=True).first()
        instance._audit_worker = (old, instance.worker_id) if old != instance.worker_id else None

    def grid_after(sender, instance, raw=False, **kwargs):
        change = getattr(instance, "_audit_worker", None)
        if raw or change is None:
            return
        instance._audit_worker = None
        names = dict(user_model.objects.filter(pk__in=[c for c in change if c]).values_list("pk", "username"))
        audit_record(
            action="permission.grid_worker",
            target=f"grid:{instance.code}",
            detail={"from": names.get(change[0]), "to": names.get(change[1])},
        )

    signals.pre_save.connect(grid_before, sender=grid_model, dispatch_uid="audit-grid-worker-before", weak=False)
    signals.post_save.connect(grid_after, sender=grid_model, dispatch_uid="audit-grid-worker-after", weak=False)
