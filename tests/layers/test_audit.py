"""The audit log: entries chain when their transaction commits and vanish with a rollback; the
database refuses UPDATE, DELETE and TRUNCATE; every hash can be recomputed in Python;
verify_audit_log names the first altered, inserted or deleted row, exactly; concurrent writers
on separate connections never fork the chain; event transitions (from any path), permission
changes and committed imports are recorded, dry runs are not."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from importers.base import run_import
from importers.registry import AddressImporter
from layers.models import AuditChainHead, AuditEntry, EventTransition
from layers.protection.access import SYSTEM
from layers.protection.audit import (
    GENESIS,
    acting_as,
    audit_flush,
    audit_record,
    audit_verify,
    entry_content,
    entry_hash,
)
from layers.services.events import event_act, events_escalate
from tests.worlds.events import report, world
from tests.worlds.registry_tables import ADDRESS_HEADER, address_row, write_csv


def entries(action: str | None = None) -> list[AuditEntry]:
    audit_flush()
    rows = AuditEntry.objects.order_by("seq")
    return list(rows.filter(action=action) if action else rows)


def sql(statement: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def five() -> list[AuditEntry]:
    """Five entries, chained."""
    with acting_as("test"):
        for n in range(1, 6):
            audit_record(action="test.step", target=f"thing:{n}", detail={"n": n, "名": "张三", "quote": "'\";--"})
    return entries()


# --- writing and the chain ------------------------------------------------------------------------


@pytest.mark.django_db
def test_entries_chain_in_order_and_each_hash_recomputes_in_python():
    """Sequence numbers count from 1, each row chains to the previous hash, and the stored hash is
    SHA-256 of the previous hash + the canonical content as Python builds it."""
    rows = five()
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS
    for before, row in zip(rows, rows[1:], strict=False):
        assert row.prev_hash == before.hash
        assert row.at >= before.at
    detail_text = sql("SELECT detail::text FROM layers_auditentry WHERE seq = 2")[0][0]
    assert detail_text == '{"n": 2, "名": "张三", "quote": "\'\\";--"}'
    content = entry_content(
        seq=2, at=rows[1].at, actor_id=None, actor="test", action="test.step", target="thing:2", detail_text=detail_text
    )
    assert rows[1].hash == entry_hash(rows[0].hash, content)
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (5, rows[-1].hash)
    assert audit_verify().intact


@pytest.mark.django_db
def test_rolled_back_entries_never_join_the_chain():
    """An entry queued in a transaction that rolls back leaves no row and no gap."""
    audit_record(action="test.kept", target="thing:1")
    try:
        with transaction.atomic():
            audit_record(action="test.lost", target="thing:2")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    audit_record(action="test.kept", target="thing:3")
    assert [(row.seq, row.target) for row in entries()] == [(1, "thing:1"), (2, "thing:3")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "action, target, message",
    [
        ("", "x", "audit action must be 1 to 40 characters on one line, got ''"),
        ("a\nb", "x", "audit action must be 1 to 40 characters on one line, got 'a\\nb'"),
        ("a" * 41, "x", f"audit action must be 1 to 40 characters on one line, got {'a' * 41!r}"),
        ("ok", "line\rbreak", "audit target must be 1 to 200 characters on one line, got 'line\\rbreak'"),
    ],
)
def test_bad_entries_are_refused(action, target, message):
    with pytest.raises(ValueError) as caught:
        audit_record(action=action, target=target)
    assert str(caught.value) == message


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement, refused",
    [
        (
            "UPDATE layers_auditentry SET actor = 'mallory' WHERE seq = 2",
            "layers_auditentry is append-only: UPDATE refused",
        ),
        ("DELETE FROM layers_auditentry WHERE seq = 2", "layers_auditentry is append-only: DELETE refused"),
        ("TRUNCATE layers_auditentry", "layers_auditentry is append-only: TRUNCATE refused"),
        (
            "UPDATE layers_auditchainhead SET seq = 2",
            "layers_auditchainhead only advances with the audit log: UPDATE refused",
        ),
        ("DELETE FROM layers_auditchainhead", "layers_auditchainhead only advances with the audit log: DELETE refused"),
        (
            "TRUNCATE layers_auditchainhead",
            "layers_auditchainhead only advances with the audit log: TRUNCATE refused",
        ),
    ],
)
def test_the_database_refuses_to_change_the_log(statement, refused):
    """Even the owner's own statements are refused while the triggers stand; TRUNCATE too, for a
    session that has not set minqing.audit_truncate (the test settings set it, for flushes)."""
    five()
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        sql("SET LOCAL minqing.audit_truncate = off")
        sql(statement)
    assert str(caught.value).splitlines()[0] == refused
    assert audit_verify().intact


# --- verification ----------------------------------------------------------------------------------


def _tamper(*statements: str) -> None:
    """As the table owner, with the append-only triggers off (restored by the test's rollback)."""
    sql("ALTER TABLE layers_auditentry DISABLE TRIGGER auditentry_append_only")
    sql("ALTER TABLE layers_auditchainhead DISABLE TRIGGER auditchainhead_guard")
    for statement in statements:
        sql(statement)


def _rehash(seq: int) -> None:
    """Recompute row ``seq``'s hash from its (altered) content, as a careful forger would."""
    (at, actor_id, actor, action, target, detail_text, prev_hash) = sql(
        "SELECT at, actor_id, actor, action, target, detail::text, prev_hash FROM layers_auditentry WHERE seq = %s",
        [seq],
    )[0]
    content = entry_content(
        seq=seq, at=at, actor_id=actor_id, actor=actor, action=action, target=target, detail_text=detail_text
    )
    sql("UPDATE layers_auditentry SET hash = %s WHERE seq = %s", [entry_hash(prev_hash, content), seq])


def _insert_forged(seq: int, *, prev_hash: str, good_hash: bool) -> None:
    """Slide a forged row in at ``seq``, renumbering the rows from there on by one."""
    sql("UPDATE layers_auditentry SET seq = -seq WHERE seq >= %s", [seq])
    sql("UPDATE layers_auditentry SET seq = 1 - seq WHERE seq < 0")
    at = timezone.now()
    content = entry_content(
        seq=seq, at=at, actor_id=None, actor="mallory", action="test.step", target="thing:forged", detail_text="{}"
    )
    forged_hash = entry_hash(prev_hash, content) if good_hash else "f" * 64
    sql(
        "INSERT INTO layers_auditentry VALUES (%s, %s, NULL, 'mallory', 'test.step', 'thing:forged', '{}', %s, %s)",
        [seq, at, prev_hash, forged_hash],
    )


TAMPERING = [
    # (what, how, the exact report)
    (
        "altered detail",
        lambda rows: _tamper("""UPDATE layers_auditentry SET detail = '{"n": 30}' WHERE seq = 3"""),
        "sequence 3: altered: its hash does not match its content",
    ),
    (
        "altered actor",
        lambda rows: _tamper("UPDATE layers_auditentry SET actor = 'nobody' WHERE seq = 1"),
        "sequence 1: altered: its hash does not match its content",
    ),
    (
        "altered time",
        lambda rows: _tamper("UPDATE layers_auditentry SET at = at - interval '1 day' WHERE seq = 4"),
        "sequence 4: altered: its hash does not match its content",
    ),
    (
        "altered and rehashed",
        lambda rows: (_tamper("UPDATE layers_auditentry SET target = 'thing:other' WHERE seq = 3"), _rehash(3)),
        "sequence 3: altered: row 4 chains to a different hash of it (the row and its hash were rewritten)",
    ),
    (
        "last row altered and rehashed",
        lambda rows: (_tamper("UPDATE layers_auditentry SET target = 'thing:other' WHERE seq = 5"), _rehash(5)),
        "sequence 5: altered: the chain head holds a different hash for it",
    ),
    (
        "deleted in the middle",
        lambda rows: _tamper("DELETE FROM layers_auditentry WHERE seq = 3"),
        "sequence 3: deleted: the log jumps from sequence 2 to 4",
    ),
    (
        "deleted first",
        lambda rows: _tamper("DELETE FROM layers_auditentry WHERE seq = 1"),
        "sequence 1: deleted: the log starts at sequence 2",
    ),
    (
        "deleted last",
        lambda rows: _tamper("DELETE FROM layers_auditentry WHERE seq = 5"),
        "sequence 5: deleted: the log ends at sequence 4 but its head is at 5",
    ),
    (
        "deleted all",
        lambda rows: _tamper("DELETE FROM layers_auditentry"),
        "sequence 1: deleted: the log is empty but its head is at 5",
    ),
    (
        "deleted and renumbered",
        lambda rows: _tamper(
            "DELETE FROM layers_auditentry WHERE seq = 3",
            "UPDATE layers_auditentry SET seq = seq - 1 WHERE seq > 3",
            "UPDATE layers_auditchainhead SET seq = 4",
        ),
        "sequence 3: altered: its hash does not match its content, nor does it chain to row 2",
    ),
    (
        "inserted with a good hash",
        lambda rows: (
            _tamper(),
            _insert_forged(3, prev_hash=rows[1].hash, good_hash=True),
            sql("UPDATE layers_auditchainhead SET seq = 6"),
        ),
        "sequence 3: inserted: row 4 chains to row 2, skipping it",
    ),
    (
        "inserted with a bad hash",
        lambda rows: (
            _tamper(),
            _insert_forged(3, prev_hash=rows[1].hash, good_hash=False),
            sql("UPDATE layers_auditchainhead SET seq = 6"),
        ),
        "sequence 3: inserted: row 4 chains to row 2, skipping it",
    ),
    (
        "inserted beyond the head",
        lambda rows: _tamper(
            "INSERT INTO layers_auditentry SELECT seq + 1, at, actor_id, actor, action, target, detail, hash, hash "
            "FROM layers_auditentry WHERE seq = 5"
        ),
        "sequence 6: inserted: it lies beyond the chain head (sequence 5)",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("what, tamper, expected", TAMPERING, ids=[case[0] for case in TAMPERING])
def test_verify_reports_the_first_tampered_row_exactly(what, tamper, expected):
    rows = five()
    tamper(rows)
    for batch in (2, 10_000):  # across batch boundaries and in one
        assert str(audit_verify(batch=batch).finding) == expected
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_log", "--batch", "2", verbosity=0)
    assert str(caught.value) == f"审计日志校验失败 audit log check failed: {expected}"
    assert caught.value.returncode == 1


@pytest.mark.django_db
def test_verify_passes_an_intact_log_and_prints_its_head():
    rows = five()
    out = StringIO()
    call_command("verify_audit_log", "--batch", "2", verbosity=0, stdout=out)
    assert out.getvalue() == (
        f"审计日志完好 audit log intact: 5 rows, sequence 1–5, 0 anchors checked; head 5:{rows[-1].hash}\n"
    )
    call_command("verify_audit_log", "--anchor", f"3:{rows[2].hash}", verbosity=0, stdout=StringIO())


@pytest.mark.django_db
def test_an_anchor_catches_a_log_rewound_with_its_head():
    """Deleting the last row and rewinding the head leaves a consistent chain: only a head kept
    elsewhere (the anchor) shows it."""
    rows = five()
    _tamper(
        "DELETE FROM layers_auditentry WHERE seq = 5",
        f"UPDATE layers_auditchainhead SET seq = 4, hash = '{rows[3].hash}'",
    )
    assert audit_verify().intact
    assert str(audit_verify(anchors=[(5, rows[4].hash)]).finding) == (
        "sequence 5: deleted: the log ends at sequence 4, before the anchor kept for sequence 5"
    )
    assert str(audit_verify(anchors=[(2, "0" * 64)]).finding) == (
        "sequence 2: altered: its hash differs from the anchor kept for it"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--anchor", "3"], "--anchor: expected SEQ:HASH (a sequence number and a 64-digit hex hash), got '3'"),
        (
            ["--anchor", "0:" + "a" * 64],
            f"--anchor: expected SEQ:HASH (a sequence number and a 64-digit hex hash), got '0:{'a' * 64}'",
        ),
        (["--batch", "0"], "--batch: must be at least 1, got 0"),
    ],
)
def test_verify_command_arguments(arguments, message):
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_log", *arguments, verbosity=0)
    assert str(caught.value) == message


def test_empty_log_verifies(db):
    out = StringIO()
    call_command("verify_audit_log", verbosity=0, stdout=out)
    assert out.getvalue() == "审计日志为空 audit log is empty: nothing to verify\n"


# --- concurrency -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_separate_connections_never_fork_the_chain():
    """Eight threads, each on its own connection, commit 30 entries each (some three to a
    transaction) at the same time: one chain of 240 rows, sequence 1–240, intact."""
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(10):
                with transaction.atomic():
                    for j in range(3):
                        audit_record(action="test.concurrent", target=f"writer:{n}", detail={"i": i, "j": j})
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 241))
    result = audit_verify(batch=50)
    assert (result.finding, result.rows, result.head_seq) == (None, 240, 240)
    # A transaction's three entries are consecutive: chained at its commit, under one lock.
    for writer_rows in (
        list(AuditEntry.objects.filter(target=f"writer:{n}").order_by("seq").values_list("seq", flat=True))
        for n in range(8)
    ):
        assert all(writer_rows[k + 2] - writer_rows[k] == 2 for k in range(0, 30, 3))


# --- what is recorded ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_event_transitions_are_recorded_from_every_path(django_user_model):
    """Intake (receive, triage, assign in one statement), an action by a user, and the set-based
    escalation SQL each leave one entry naming the transitions."""
    world()
    worker = django_user_model.objects.create_user("worker")
    event = report(actor=worker)
    event_act(reader=SYSTEM, event=event, action="accept", actor=worker)
    transitions = list(EventTransition.objects.filter(event=event).order_by("id"))
    rows = entries("event.transition")
    assert [(row.actor_id, row.actor, row.target) for row in rows] == [
        (None, "various", f"event:{event.pk}"),
        (worker.pk, "worker", f"event:{event.pk}"),
    ]
    assert rows[0].detail == {
        "count": 3,
        "events": 1,
        "transitions": [
            {"id": t.pk, "event": event.pk, "action": t.action, "from": t.from_status, "to": t.to_status}
            for t in transitions[:3]
        ],
    }
    assert [t["action"] for t in rows[1].detail["transitions"]] == ["accept"]
    # Overdue: the escalation SQL writes its own log rows in one statement.
    escalated = events_escalate(now=timezone.now() + dt.timedelta(days=30))
    assert [e[0] for e in escalated] == [event.pk]
    last = entries("event.transition")[-1]
    assert (last.actor, last.target, last.detail["transitions"][0]["action"]) == (
        "system:escalate_events",
        f"event:{event.pk}",
        "escalate",
    )


@pytest.mark.django_db
def test_a_bulk_statement_of_transitions_is_summarised():
    world()
    events = [report() for _ in range(3)]
    before = len(entries("event.transition"))
    now = timezone.now()
    EventTransition.objects.bulk_create(
        EventTransition(event=events[n % 3], from_status="assigned", to_status="assigned", action="note",
                        actor_label="importer", at=now)
        for n in range(60)
    )  # fmt: skip
    rows = entries("event.transition")
    assert len(rows) == before + 1
    ids = list(EventTransition.objects.filter(action="note").order_by("id").values_list("id", flat=True))
    assert (rows[-1].actor, rows[-1].target, rows[-1].detail) == (
        "importer",
        "events",
        {"count": 60, "events": 3, "first_id": ids[0], "last_id": ids[-1], "actions": {"note": 60}},
    )


@pytest.mark.django_db
def test_permission_changes_are_recorded(django_user_model):
    """Groups joined and left (from either side), group and user permissions, cleared sets, the
    superuser/staff/active flags, users created and deleted, groups deleted."""
    analysts, stewards = Group.objects.create(name="analyst"), Group.objects.create(name="data_steward")
    reveal = Permission.objects.get(codename="reveal_personal_data")
    export = Permission.objects.get(codename="export_personal_data")
    with acting_as("admin-console"):
        user = django_user_model.objects.create_user("li")
        user.groups.add(analysts, stewards)
        user.groups.remove(stewards)
        stewards.user_set.add(user)
        user.groups.clear()
        analysts.permissions.add(reveal, export)
        user.user_permissions.add(reveal)
        user.is_staff = True
        user.save()
        user.save(update_fields=["last_login"])  # no flag in it: nothing recorded
        django_user_model.objects.filter(pk=user.pk).first().delete()
        stewards.delete()
    recorded = [(row.actor, row.action, row.target, row.detail) for row in entries()]
    assert recorded == [
        ("admin-console", "user.create", "user:li", {"is_active": True, "is_staff": False, "is_superuser": False}),
        ("admin-console", "permission.groups", "user:li", {"op": "add", "groups": ["analyst", "data_steward"]}),
        ("admin-console", "permission.groups", "user:li", {"op": "remove", "groups": ["data_steward"]}),
        ("admin-console", "permission.groups", "group:data_steward", {"op": "add", "users": ["li"]}),
        ("admin-console", "permission.groups", "user:li", {"op": "clear", "groups": ["analyst", "data_steward"]}),
        (
            "admin-console",
            "permission.group_permissions",
            "group:analyst",
            {"op": "add", "permissions": ["layers.export_personal_data", "layers.reveal_personal_data"]},
        ),
        (
            "admin-console",
            "permission.user_permissions",
            "user:li",
            {"op": "add", "permissions": ["layers.reveal_personal_data"]},
        ),
        ("admin-console", "permission.flags", "user:li", {"is_staff": [False, True]}),
        ("admin-console", "user.delete", "user:li", {}),
        ("admin-console", "group.delete", "group:data_steward", {}),
    ]


@pytest.mark.django_db
def test_a_change_in_the_admin_names_the_administrator(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.org", "boss-password")
    target = django_user_model.objects.create_user("wang")
    group = Group.objects.create(name="command_center")
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "wang",
            "is_active": "on",
            "is_superuser": "on",
            "groups": [group.pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    recorded = [(row.actor_id, row.actor, row.action, row.detail) for row in entries() if row.target == "user:wang"]
    assert recorded[-2:] == [
        (admin.pk, "boss", "permission.flags", {"is_superuser": [False, True], "client": "127.0.0.1"}),
        (admin.pk, "boss", "permission.groups", {"op": "add", "groups": ["command_center"], "client": "127.0.0.1"}),
    ]


@pytest.mark.django_db
def test_committed_imports_are_recorded_and_dry_runs_are_not(tmp_path):
    from tests.worlds.factories import grid_tree, region_chain

    grid_tree(region_chain()["community"])
    path = write_csv(
        tmp_path / "addresses.csv", ADDRESS_HEADER, [address_row("A1"), address_row("A2"), address_row("")]
    )
    with acting_as("cli:steward"):
        run_import(AddressImporter(), path, commit=False, report_path=tmp_path / "dry.csv")
        assert entries("import") == []
        run_import(AddressImporter(), path, commit=True, report_path=tmp_path / "real.csv")
    [row] = entries("import")
    assert (row.actor, row.target, row.detail["file"], row.detail["strict"]) == (
        "cli:steward",
        "import:addresses",
        "addresses.csv",
        False,
    )
    assert row.detail["counts"]["rows"] == 3
    assert row.detail["counts"]["rejected"] == 1
