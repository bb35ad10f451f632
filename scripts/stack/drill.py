"""The failover drill (``make drill``): lose the primary under load and count what was lost.

A fresh stack (two Patroni nodes, synchronous replication) takes reports through nginx (HTTPS)
at a steady rate, each with its own Idempotency-Key and retried as a careful client retries
(same key, after Retry-After, on a 503 or a dropped connection). A reader meanwhile reads a
read-only surface (an OGC API page, served from a replica). Some seconds in, the primary's
Patroni and PostgreSQL are killed outright (``SIGKILL``, as a lost machine). Afterwards the
database (the new primary) is compared with what the clients were told:

* **lost**: reports answered 201 whose event is not stored — must be 0 (synchronous replication:
  a commit waited for the replica that took over);
* **duplicated**: events stored more than once for one report — must be 0 (the key);
* **failover**: seconds from the kill until the primary port (HAProxy) reached a new primary
  that took a write;
* **reads kept**: the share of the reader's requests answered 200 during the run.

The killed node is then started again and must rejoin as a replica (pg_rewind).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time

import psycopg2

from scripts.loadgen import LoadReport, intake_bodies, paced_load, points_in_box

from . import engines, lifecycle
from .engines import StackError, stop, wait_for
from .layout import Layout, Node

#: Run in the stack's database once it is seeded: an intake account, its token, the categories,
#: and the small grids' extent for the reports' points.
_SEED = """
from django.contrib.auth.models import Group, User
from django.contrib.gis.db.models import Extent
from rest_framework.authtoken.models import Token
from layers.models import Category, Grid, ReaderScope
user, _ = User.objects.get_or_create(username="drill-gateway")
user.groups.add(Group.objects.get_or_create(name="intake:hotline")[0])
user.groups.add(Group.objects.get_or_create(name="analyst")[0])
ReaderScope.objects.get_or_create(user=user, level="city")
token = Token.objects.get_or_create(user=user)[0].key
codes = sorted(Category.objects.filter(code__contains=".").values_list("code", flat=True))
box = Grid.objects.filter(level="small").aggregate(e=Extent("boundary"))["e"]
print("DRILL", token, ",".join(codes), ",".join(str(v) for v in box))
"""


@dataclasses.dataclass
class DrillResult:
    reports: int
    answered: int
    lost: int
    duplicated: int
    failover_seconds: float | None
    reads: int
    reads_ok: int
    rejoined: bool
    summary: str

    @property
    def reads_kept(self) -> float:
        return self.reads_ok / self.reads if self.reads else 0.0

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.answered == self.reports

    def line(self) -> str:
        failover = f"{self.failover_seconds:.1f} s" if self.failover_seconds is not None else "never"
        return (
            f"drill: {self.reports} reports, {self.answered} answered 201, old primary "
            f"{'rejoined as a replica' if self.rejoined else 'did not rejoin'}; "
            f"lost {self.lost}, duplicated {self.duplicated}, failover {failover}, "
            f"reads kept {self.reads_kept:.0%}"
        )


def drill_seed(layout: Layout) -> tuple[str, list[str], tuple[float, float, float, float]]:
    output = lifecycle.manage(layout, "shell", "-c", _SEED).stdout
    line = next(line for line in output.splitlines() if line.startswith("DRILL "))
    _, token, codes, box = line.split()
    lon0, lat0, lon1, lat1 = (float(v) for v in box.split(","))
    return token, codes.split(","), (lon0, lat0, lon1, lat1)


class Reader(threading.Thread):
    """Reads a page of the OGC API ``per_second`` times a second through nginx until stopped,
    counting the answers that were 200."""

    def __init__(self, layout: Layout, token: str, *, per_second: float = 5.0) -> None:
        super().__init__(name="drill-reader", daemon=True)
        self.layout, self.token, self.interval = layout, token, 1 / per_second
        self.done = threading.Event()
        self.attempts = self.ok = 0

    def run(self) -> None:
        context = engines.tls_context(self.layout)
        while not self.done.is_set():
            self.attempts += 1
            try:
                client = http.client.HTTPSConnection("localhost", self.layout.https_port, timeout=10, context=context)
                client.request("GET", "/ogc/collections/grids_small/items?limit=5&f=json",
                               headers={"Authorization": f"Token {self.token}"})  # fmt: skip
                response = client.getresponse()
                response.read()
                self.ok += response.status == 200
                client.close()
            except OSError:
                pass
            self.done.wait(self.interval)


def kill_primary(layout: Layout) -> Node:
    """Kill the current primary's Patroni and PostgreSQL (SIGKILL): a machine lost."""
    primary = next((n for n in layout.nodes if engines.node_role(n) == "primary"), None)
    if primary is None:
        raise StackError("no primary to kill")
    stop(layout, f"patroni-{primary.name}", kill=True, timeout=5)
    lifecycle.postmaster_stop(layout, primary, kill=True)
    return primary


def seconds_to_a_new_primary(layout: Layout, killed: Node, *, since: float, limit: float = 120.0) -> float | None:
    """From ``since`` (monotonic), how long until the primary port leads to another node that
    takes a write (a temporary table in a transaction rolled back: nothing is left)."""
    while time.monotonic() - since < limit:
        try:
            with lifecycle.primary_connection(layout) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
                port, recovering = cursor.fetchone()
                if port != killed.pg_port and not recovering:
                    cursor.execute("CREATE TEMPORARY TABLE drill_probe (x int); INSERT INTO drill_probe VALUES (1)")
                    connection.rollback()
                    return time.monotonic() - since
        except psycopg2.Error:
            pass
        time.sleep(0.2)
    return None


def _stored(layout: Layout, run: str) -> tuple[dict[str, int], int]:
    """The drill's keys and their events in the database, and how many events the drill left
    (read from the primary, once there is one again)."""
    wait_for("a primary behind HAProxy after the drill", lambda: lifecycle.reaches_database(layout), seconds=60,
             log=layout.logs / "haproxy.log")  # fmt: skip
    with lifecycle.primary_connection(layout) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT key, event_id FROM layers_idempotencykey WHERE key LIKE %s", [f"{run}-%"])
        keys = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM layers_event WHERE description LIKE %s", [f"负载测试 {run} %"])
        events = cursor.fetchone()[0]
    return keys, events


def failover_drill(
    layout: Layout, *, rate: float = 50.0, seconds: float = 60.0, kill_at: float = 15.0, keep: bool = False, say=print
) -> DrillResult:
    lifecycle.up(layout, scale="tiny", fresh=True, say=say)
    try:
        return _drill(layout, rate=rate, seconds=seconds, kill_at=kill_at, say=say)
    finally:
        if not keep:
            lifecycle.down(layout, wipe=True, say=say)


def _drill(layout: Layout, *, rate: float, seconds: float, kill_at: float, say) -> DrillResult:
    token, categories, box = drill_seed(layout)
    run = f"drill{int(time.time())}"
    count = int(rate * seconds)
    bodies = [
        body.replace(b"load report", f"{run}".encode())
        for body in intake_bodies(points_in_box(count, box=box, seed=11), categories=categories)
    ]
    killed: dict = {}

    def kill_and_time() -> None:
        killed["at"] = time.monotonic()
        killed["node"] = kill_primary(layout)
        killed["failover"] = seconds_to_a_new_primary(layout, killed["node"], since=killed["at"])

    def at(elapsed: float) -> None:
        if elapsed >= kill_at and "thread" not in killed:
            # In a thread of its own: the pacing goes on while the node dies.
            killed["thread"] = threading.Thread(target=kill_and_time, daemon=True)
            killed["thread"].start()

    reader = Reader(layout, token)
    reader.start()
    say(f"drill: {count} reports at {rate:g}/s through nginx; the primary is killed at {kill_at:g} s")
    report: LoadReport = paced_load(
        port=layout.https_port,
        host="localhost",
        tls=engines.tls_context(layout),
        token=token,
        bodies=bodies,
        rate=rate,
        run=run,
        give_up_after=90.0,
        on_progress=at,
    )
    reader.done.set()
    reader.join(15)
    if "thread" in killed:
        killed["thread"].join(130)
    say(f"drill: load done: {report.summary()}")
    keys, events = _stored(layout, run)
    answered = {o.key: o.event_id for o in report.outcomes if o.status == 201}
    lost = sum(1 for key, event_id in answered.items() if keys.get(key) != event_id)
    duplicated = max(0, events - len(set(keys.values())))
    rejoined = False
    if "node" in killed:
        node = killed["node"]
        lifecycle.start_node(layout, node.name)
        try:
            wait_for(f"{node.name} rejoining as a replica", lambda: engines.node_role(node) == "replica", seconds=120)
            rejoined = True
        except StackError as error:
            say(f"drill: {error}")
    return DrillResult(
        reports=count,
        answered=len(answered),
        lost=lost,
        duplicated=duplicated,
        failover_seconds=killed.get("failover"),
        reads=reader.attempts,
        reads_ok=reader.ok,
        rejoined=rejoined,
        summary=json.dumps({"killed": killed["node"].name if "node" in killed else None}),
    )
