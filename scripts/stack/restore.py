"""The restore drill (``make restore-drill``): back up, write on, restore to a point in time,
and prove what came back.

On a fresh stack: a full pgBackRest backup; then reports written through the application,
an audit anchor kept outside the database, the moment **T** noted; then more reports. The WAL
is archived, and pgBackRest restores the backup into an empty directory and replays the archive
up to T (``--type=time``), and a standalone PostgreSQL serves the copy. It must hold every report
from before T and none from after, its audit log must verify against the anchor kept at T, and
the personal-data key (kept with the application, never in the database or its backups) must
still read a reporter's phone from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import psycopg2

from . import engines, lifecycle
from .drill import drill_seed
from .engines import PG_BIN, wait_for
from .layout import Layout

REPORTS_BEFORE, REPORTS_AFTER = 30, 20
PHONE = "13912345678"


@dataclasses.dataclass
class RestoreResult:
    target: str
    before_found: int
    after_found: int
    audit: str
    phone_readable: bool
    restore_seconds: float

    @property
    def passed(self) -> bool:
        return (
            self.before_found == REPORTS_BEFORE
            and self.after_found == 0
            and self.audit.startswith("审计日志完好")
            and self.phone_readable
        )

    def line(self) -> str:
        return (
            f"restore drill: restored to {self.target} in {self.restore_seconds:.0f} s: reports before "
            f"{self.before_found}/{REPORTS_BEFORE}, after {self.after_found}/{REPORTS_AFTER} (expected 0); "
            f"{self.audit}; personal data {'readable' if self.phone_readable else 'NOT readable'}"
        )


def _report(layout: Layout, token: str, description: str, *, phone: str = "") -> int:
    body = {"channel": "hotline", "category": "hazard.fire", "description": description, "address": "城关区"}
    if phone:
        body["reporter"] = {"name": "张三", "phone": phone}
    request = urllib.request.Request(  # noqa: S310  (our own stack, HTTPS on localhost)
        f"https://localhost:{layout.https_port}/api/events",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=engines.tls_context(layout), timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read())["id"]


def _archived(layout: Layout) -> None:
    """Switch to a new WAL segment and wait until the one holding T is in the archive."""
    segment = lifecycle.superuser_sql(layout, "SELECT pg_walfile_name(pg_switch_wal())")

    def archived() -> bool:
        last = lifecycle.superuser_sql(layout, "SELECT last_archived_wal FROM pg_stat_archiver")
        return bool(last) and last >= segment

    wait_for(f"WAL {segment} archived", archived, seconds=120, log=layout.logs / "pgbackrest.log")


def restore_drill(layout: Layout, *, keep: bool = False, say=print) -> RestoreResult:
    lifecycle.up(layout, scale="tiny", fresh=True, say=say)
    try:
        return _restore(layout, say=say)
    finally:
        _stop_restored(layout)
        if not keep:
            lifecycle.down(layout, wipe=True, say=say)


def _restore(layout: Layout, *, say) -> RestoreResult:
    token, _categories, _box = drill_seed(layout)
    lifecycle.pgbackrest(layout, "backup", "--type=full")
    say("restore drill: full backup taken")
    before = [
        _report(layout, token, f"恢复演练 before {n}", phone=PHONE if n == 0 else "") for n in range(REPORTS_BEFORE)
    ]
    anchors = layout.root / "restore" / "anchors-at-target.jsonl"
    anchors.parent.mkdir(parents=True, exist_ok=True)
    lifecycle.manage(layout, "anchor_audit_log", env={"MINQING_AUDIT_ANCHOR_FILE": str(anchors)})
    time.sleep(1.0)
    with lifecycle.primary_connection(layout) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        target = cursor.fetchone()[0]
    time.sleep(1.0)
    after = [_report(layout, token, f"恢复演练 after {n}") for n in range(REPORTS_AFTER)]
    _archived(layout)
    say(f"restore drill: {len(before)} reports before {target.isoformat()}, {len(after)} after, WAL archived")

    started = time.monotonic()
    port = _start_restored(layout, target)
    restore_seconds = time.monotonic() - started
    say(f"restore drill: restored and promoted in {restore_seconds:.0f} s (port {port})")
    url = f"postgis://minqing:{layout.secret('owner')}@127.0.0.1:{port}/minqing"
    with psycopg2.connect(host="127.0.0.1", port=port, dbname="minqing", user="minqing",
                          password=layout.secret("owner")) as connection, connection.cursor() as cursor:  # fmt: skip
        cursor.execute("SELECT count(*) FROM layers_event WHERE id = ANY(%s)", [before])
        before_found = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM layers_event WHERE id = ANY(%s)", [after])
        after_found = cursor.fetchone()[0]
        cursor.execute("SELECT reporter_phone_cipher FROM layers_event WHERE id = %s", [before[0]])
        cipher = cursor.fetchone()[0]
    env = {"MINQING_OWNER_DATABASE_URL": url, "DATABASE_URL": url, "MINQING_AUDIT_ANCHOR_FILE": str(anchors)}
    verified = lifecycle.manage(layout, "verify_audit_log", "--no-anchor", check=False, env=env)
    audit = (
        (verified.stdout or verified.stderr).strip().splitlines()[-1] if (verified.stdout or verified.stderr) else ""
    )
    audit = audit.split("; head ")[0]
    read = lifecycle.manage(layout, "shell", "-c", f"from layers.protection import personal; print(personal.decrypt({cipher!r}))",
                            check=False, env=env)  # fmt: skip
    return RestoreResult(
        target=target.astimezone(dt.UTC).isoformat(timespec="seconds"),
        before_found=before_found,
        after_found=after_found,
        audit=audit,
        phone_readable=read.stdout.strip().endswith(PHONE),
        restore_seconds=restore_seconds,
    )


def _restored_data(layout: Layout):
    return layout.root / "restore" / "data"


def _start_restored(layout: Layout, target: dt.datetime) -> int:
    """Restore the last backup to ``target`` into an empty directory and start it alone."""
    data = _restored_data(layout)
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    sockets = layout.root / "restore" / "run"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        for path in (data.parent, data, sockets):
            shutil.chown(path, layout.account)
    os.chmod(data, 0o700)
    stamp = target.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    lifecycle.pgbackrest(layout, f"--pg1-path={data}", "--type=time", f"--target={stamp}",
                         "--target-action=promote", "restore")  # fmt: skip
    port = layout.nodes[0].pg_port + 100
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets} -c archive_mode=off "
        f"-c hot_standby=on -c synchronous_standby_names='' -c cluster_name=restore"
    )
    subprocess.run(  # noqa: S603
        engines.as_account(layout, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(layout.logs / "restore.log"),
                                    "-o", options, "-w", "-t", "120", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip

    def promoted() -> bool:
        try:
            with psycopg2.connect(host="127.0.0.1", port=port, dbname="minqing", user="minqing",
                                  password=layout.secret("owner"), connect_timeout=2) as c, c.cursor() as cursor:  # fmt: skip
                cursor.execute("SELECT pg_is_in_recovery()")
                return not cursor.fetchone()[0]
        except psycopg2.Error:
            return False

    wait_for("the restored copy to finish recovery", promoted, seconds=180, log=layout.logs / "restore.log")
    return port


def _stop_restored(layout: Layout) -> None:
    data = _restored_data(layout)
    if (data / "postmaster.pid").exists():
        subprocess.run(  # noqa: S603
            engines.as_account(layout, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False, capture_output=True,
        )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run: python -m scripts.stack restore-drill")
