"""The database trusts no one more than it must: the served application's role owns nothing, may
not touch the audit log or the event log beyond queueing and appending, holds no escape setting,
logs in with a password over a socket closed to other accounts; and a log cut or rewritten by
the owner is found from the anchors kept outside the database, with no operator's anchor."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from io import StringIO
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from layers.models import AuditEntry
from layers.protection.audit import audit_flush, audit_record, audit_verify
from settings.base import local_database_password

APP = settings.MINQING_DB_APP_ROLE


def app_connection():
    """A connection to the test database as the application's role (autocommit off)."""
    db = connection.settings_dict
    return psycopg2.connect(
        host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=APP, password=local_database_password("app")
    )


def refused(statements: list[str]) -> str:
    """The SQLSTATE the last statement fails with, run as the application's role in a fresh
    transaction ("" when it succeeds)."""
    with app_connection() as conn, conn.cursor() as cursor:
        try:
            for statement in statements:
                cursor.execute(statement)
        except psycopg2.Error as error:
            return error.pgcode
        finally:
            conn.rollback()
    return ""


def test_the_application_role_is_no_superuser_and_owns_nothing(db):
    with app_connection() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
            "(SELECT count(*) FROM pg_class WHERE relowner = r.oid) FROM pg_roles r WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (APP, False, False, False, False, 0)


INSUFFICIENT_PRIVILEGE = "42501"
#: What the application's role must never do, each refused for want of privilege (not by a
#: trigger a setting could switch off).
FORBIDDEN = [
    ["TRUNCATE layers_auditentry"],
    ["SET minqing.audit_truncate = 'on'", "TRUNCATE layers_auditentry, layers_auditchainhead"],
    ["DELETE FROM layers_auditentry"],
    ["UPDATE layers_auditentry SET actor = 'nobody'"],
    [
        "INSERT INTO layers_auditentry (seq, at, actor, action, target, detail, prev_hash, hash) "
        "VALUES (999, now(), 'x', 'x', 'x', '{}', 'x', 'x')"
    ],  # fmt: skip
    ["UPDATE layers_auditchainhead SET seq = 0"],
    ["DELETE FROM layers_auditchainhead"],
    ["DELETE FROM layers_auditpending"],
    ["DELETE FROM layers_eventtransition"],
    ["UPDATE layers_eventtransition SET reason = 'rewritten'"],
    ["TRUNCATE layers_eventtransition"],
    ["ALTER TABLE layers_auditentry DISABLE TRIGGER ALL"],
    ["DROP TABLE layers_auditentry"],
    ["DROP TRIGGER auditentry_append_only ON layers_auditentry"],
    ["CREATE OR REPLACE FUNCTION layers_auditentry_append_only() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'"],
    ["SELECT layers_audit_append(NULL, 'x', 'x', 'x', '{}')"],
    ["DELETE FROM django_migrations"],
    ["SET ROLE minqing"],
    ["CREATE ROLE intruder"],
    ["CREATE EXTENSION IF NOT EXISTS dblink"],
]


@pytest.mark.parametrize("statements", FORBIDDEN, ids=[s[-1][:60] for s in FORBIDDEN])
def test_what_the_application_role_may_not_do(db, statements):
    assert refused(statements) == INSUFFICIENT_PRIVILEGE


def test_the_application_role_reads_and_writes_rows_and_queues_audit_entries(transactional_db):
    """What it must do it can: read, write a row, queue an entry; the database chains the entry
    as the log's owner when the transaction commits."""
    with app_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_event")
        cursor.execute("INSERT INTO layers_department (code, name, name_en, active) VALUES ('probe', '探针', '', true)")
        cursor.execute(
            "INSERT INTO layers_auditpending (actor_id, actor, action, target, detail) "
            "VALUES (NULL, 'app', 'probe', 'department:probe', '{}')"
        )
    assert list(AuditEntry.objects.values_list("seq", "actor", "action")) == [(1, "app", "probe")]
    assert audit_verify().intact


def test_logging_in_needs_the_password_and_the_socket_is_closed_to_other_accounts(db):
    db_settings = connection.settings_dict
    with pytest.raises(psycopg2.OperationalError) as caught:
        psycopg2.connect(host=db_settings["HOST"], port=db_settings["PORT"], dbname=db_settings["NAME"], user=APP)
    assert "no password supplied" in str(caught.value)
    sockets = Path(db_settings["HOST"])
    assert stat.S_IMODE(sockets.stat().st_mode) & 0o077 == 0, oct(sockets.stat().st_mode)
    if os.geteuid() == 0:
        # Another local account cannot even reach the socket (the review connected as superuser
        # from `su nobody`).
        attempt = subprocess.run(  # noqa: S603
            ["/usr/sbin/runuser", "-u", "nobody", "--", "/usr/lib/postgresql/15/bin/psql", "-X", "-h", str(sockets),
             "-p", str(db_settings["PORT"]), "-U", "minqing", "-d", db_settings["NAME"], "-c", "SELECT 1"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert attempt.returncode != 0
        assert "Permission denied" in attempt.stderr


# --- anchors kept outside the database --------------------------------------------------------------


@pytest.fixture
def anchors(settings, tmp_path):
    settings.MINQING_AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.jsonl")
    return Path(settings.MINQING_AUDIT_ANCHOR_FILE)


def _entries(count: int) -> None:
    for n in range(count):
        audit_record(action="probe", target=f"probe:{n}")
    audit_flush()


def verify() -> str:
    """verify_audit_log's message, success or failure."""
    out = StringIO()
    try:
        call_command("verify_audit_log", verbosity=0, stdout=out)
    except CommandError as error:
        return str(error)
    return out.getvalue()


def test_a_truncated_log_is_found_without_an_operators_anchor(db, anchors):
    """The review truncated the log with one SET LOCAL and verify_audit_log said intact."""
    _entries(3)
    assert "3 rows" in verify()  # and anchors the head
    assert [json.loads(line)["seq"] for line in anchors.read_text().splitlines()] == [3]
    with connection.cursor() as cursor:
        # The owner may (the test connection is the owner's, with the flush setting on).
        cursor.execute("TRUNCATE layers_auditentry, layers_auditchainhead")
    assert verify() == (
        "审计日志校验失败 audit log check failed: sequence 1: deleted: the log is empty, "
        "before the anchor kept for sequence 3"
    )


def test_a_deleted_tail_with_a_rewound_head_is_found(db, anchors):
    _entries(5)
    call_command("anchor_audit_log", stdout=StringIO())
    fourth = AuditEntry.objects.get(seq=4).hash
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE layers_auditentry DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE layers_auditchainhead DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM layers_auditentry WHERE seq = 5")
        cursor.execute("UPDATE layers_auditchainhead SET seq = 4, hash = %s", [fourth])
        cursor.execute("ALTER TABLE layers_auditentry ENABLE TRIGGER USER")
        cursor.execute("ALTER TABLE layers_auditchainhead ENABLE TRIGGER USER")
    assert audit_verify().intact  # consistent on its own …
    assert verify() == (  # … but not with what was kept outside
        "审计日志校验失败 audit log check failed: sequence 5: deleted: the log ends at sequence 4, "
        "before the anchor kept for sequence 5"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda line: {**line, "seq": 1}, "line 1: its HMAC does not match (the file was altered)"),
        (lambda line: {**line, "hash": "0" * 64}, "line 1: its HMAC does not match (the file was altered)"),
        (lambda line: "not json", "line 1: not an anchor"),
    ],
)
def test_an_edited_anchor_file_is_not_trusted(db, anchors, edit, message):
    _entries(2)
    call_command("anchor_audit_log", stdout=StringIO())
    line = json.loads(anchors.read_text())
    edited = edit(line)
    anchors.write_text((edited if isinstance(edited, str) else json.dumps(edited)) + "\n")
    assert verify() == f"审计日志锚点文件不可信 audit anchor file untrusted: {anchors}, {message}"


def test_anchors_of_another_database_are_left_alone(db, anchors):
    _entries(1)
    call_command("anchor_audit_log", stdout=StringIO())
    line = json.loads(anchors.read_text())
    assert line["database"] == connection.settings_dict["NAME"]
    # Another database's anchor, validly signed, for a sequence this log never reached.
    from layers.protection.audit import _anchor_mac

    other = {"database": "elsewhere", "seq": 99, "hash": "f" * 64, "at": line["at"]}
    other["mac"] = _anchor_mac("elsewhere", 99, "f" * 64, line["at"])
    anchors.write_text(anchors.read_text() + json.dumps(other) + "\n")
    assert "1 rows" in verify()
