"""The production stack under load: intake through nginx, replica lag, the read router's cost,
overload and failover.

A stack of its own (``scripts/stack``: etcd, two Patroni-managed PostGIS nodes with synchronous
replication, pgBackRest archiving, HAProxy, the application with 2 uvicorn processes, nginx with
TLS) under ``var/stack-bench`` on ports from 28000, with the demo city; torn down afterwards.

* ``stack_intake_rate`` / ``stack_intake_p99``: reports at 200 a second for 30 s, open loop, over
  HTTPS through nginx, each committed on the primary and its synchronous standby; beside the
  offered rate and the 500 ms p99 budget (from each report's due time).
* ``stack_replica_lag_p99``: the replica's replay position behind the primary's WAL, sampled
  every 0.2 s during that load, beside the bound at which HAProxy takes a replica out of reads.
* ``stack_overload_shed``: reports at twice the rate for 10 s from 160 clients (more than the
  application's threads and queue places): the share of answers that are 201 or an immediate 503
  with ``Retry-After`` (no other error, no time-out), target all.
* ``stack_read_router``: an OGC API page through the whole middleware stack, reads routed to
  the replica by the router, beside the same page from a process whose only database is that
  replica (no routing decision); target ≥ 0.95 (≤ 5 % overhead).
* ``stack_failover``: the primary killed outright under 50 reports/s; seconds until a new
  primary takes writes, beside the 30 s target (lost and duplicated reports in the note).
"""

from __future__ import annotations

import statistics
import threading
import time

import psycopg2

from scripts.loadgen import intake_bodies, paced_load, points_in_box
from scripts.stack import drill, engines, lifecycle
from scripts.stack.layout import ROOT, local_layout

from .harness import Result, benchmark

RATE, SECONDS = 200, 30
OVERLOAD_RATE, OVERLOAD_SECONDS, OVERLOAD_CLIENTS = 400, 10, 160
WARM_UP, WARM_UP_RATE = 100, 20
P99_BUDGET = 0.5
KEEPS_UP = 0.95
#: HAProxy's and the router's bound on a replica's lag (scripts/stack/layout.py).
LAG_BOUND_MB = 16
FAILOVER_TARGET = 30.0
PORT_BASE = 28000

#: Timed in the stack's environment by ``manage.py shell``: an OGC page through Django's whole
#: request path (middleware, token authentication, the access decision, the read router).
_PAGE_TIMING = """
import statistics, time
from django.test import Client
from mapserver.metrics import READS
client = Client(HTTP_AUTHORIZATION="Token {token}", HTTP_HOST="localhost")
url = "/ogc/collections/grids_small/items?limit=10&f=json"
for _ in range(100):
    assert client.get(url, secure=True).status_code == 200
timings = []
for _ in range({requests}):
    start = time.perf_counter()
    response = client.get(url, secure=True)
    timings.append(time.perf_counter() - start)
    assert response.status_code == 200, response.status_code
reads = {{s.labels["database"]: s.value for s in READS.collect()[0].samples if s.name.endswith("_total")}}
print("TIMING", statistics.median(timings), reads)
"""


class LagSampler(threading.Thread):
    """The replica's replay position behind the primary's current WAL position, in bytes, every
    ``interval`` seconds until stopped (an upper bound: the two reads are not simultaneous)."""

    def __init__(self, layout, *, interval: float = 0.2) -> None:
        super().__init__(name="lag-sampler", daemon=True)
        self.layout, self.interval = layout, interval
        self.done = threading.Event()
        self.samples: list[int] = []

    def run(self) -> None:
        primary = lifecycle.primary_connection(self.layout, "app")
        replica = lifecycle.primary_connection(self.layout, "app", replicas=True)
        primary.autocommit = replica.autocommit = True
        try:
            with primary.cursor() as ahead, replica.cursor() as behind:
                while not self.done.wait(self.interval):
                    ahead.execute("SELECT pg_current_wal_lsn()::text")
                    (position,) = ahead.fetchone()
                    behind.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint", [position])
                    self.samples.append(max(0, behind.fetchone()[0]))
        except psycopg2.Error:
            pass
        finally:
            primary.close()
            replica.close()

    def p99_mb(self) -> float:
        ordered = sorted(self.samples) or [0]
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 2**20


def _page_seconds(layout, token: str, *, direct: bool, requests: int) -> float:
    env = {"MINQING_THROTTLE_USER": "100000000/min", "MINQING_DB_ROLE": "app"}
    if direct:
        # The replica as the only database: the same reads, with no routing decision to make.
        env |= {"DATABASE_URL": layout.database_url("app", replicas=True), "MINQING_REPLICA_DATABASE_URL": ""}
    output = lifecycle.manage(layout, "shell", "-c", _PAGE_TIMING.format(token=token, requests=requests), env=env)
    line = next(line for line in output.stdout.splitlines() if line.startswith("TIMING "))
    _, seconds, reads = line.split(" ", 2)
    if not direct and "replica" not in reads:
        raise AssertionError(f"stack_read_router: the routed reads did not reach the replica: {reads}")
    return float(seconds)


@benchmark("stack", data="stack")
def stack(*, repeats: int, rows: int) -> list[Result]:
    layout = local_layout(root=ROOT / "var" / "stack-bench", base=PORT_BASE)
    lifecycle.up(layout, scale="demo", fresh=True)
    try:
        return _measure(layout, repeats=repeats)
    finally:
        lifecycle.down(layout, wipe=True)


def _measure(layout, *, repeats: int) -> list[Result]:
    token, categories, box = drill.drill_seed(layout)
    tls = engines.tls_context(layout)

    def load(count: int, rate: float, run: str, seed: int, clients: int = 12):
        bodies = intake_bodies(points_in_box(count, box=box, seed=seed), categories=categories)
        return paced_load(port=layout.https_port, host="localhost", tls=tls, token=token, bodies=bodies,
                          rate=rate, run=run, clients=clients)  # fmt: skip

    # The read router first, on a quiet stack: pairs of runs, alternating, so that the machine's
    # other work falls on both sides alike.
    routed, direct = [], []
    for _ in range(max(3, repeats)):
        routed.append(_page_seconds(layout, token, direct=False, requests=1000))
        direct.append(_page_seconds(layout, token, direct=True, requests=1000))

    tag = f"stack-{int(time.time())}"
    warm = load(WARM_UP, WARM_UP_RATE, f"{tag}-warm", seed=100)
    if warm.attempts() != {201: WARM_UP}:
        raise AssertionError(f"stack: warm-up failed: {warm.summary()}")
    achieved, p99, lag = [], [], []
    for run in range(repeats):
        sampler = LagSampler(layout)
        sampler.start()
        report = load(RATE * SECONDS, RATE, f"{tag}-{run}", seed=run)
        sampler.done.set()
        sampler.join(5)
        print(f"bench: stack intake run {run + 1}: {report.summary()}; lag p99 {sampler.p99_mb():.2f} MB", flush=True)
        achieved.append(report.achieved)
        p99.append(report.latency_ms(0.99) / 1000)
        lag.append(sampler.p99_mb())

    # More clients than the application has threads and queue places (2 processes × (threads +
    # MINQING_DJANGO_QUEUE)), so that its queue fills and shedding is what is measured.
    overload = load(OVERLOAD_RATE * OVERLOAD_SECONDS, OVERLOAD_RATE, f"{tag}-overload", seed=200,
                    clients=OVERLOAD_CLIENTS)  # fmt: skip
    answers = overload.attempts()
    shed_or_taken = (answers.get(201, 0) + answers.get(503, 0)) / max(1, sum(answers.values()))
    print(f"bench: stack overload: {overload.summary()}", flush=True)

    failover = drill._drill(layout, rate=50, seconds=40, kill_at=10, say=lambda line: print(f"bench: {line}"))
    print(f"bench: stack failover: {failover.line()}", flush=True)

    scale = f"demo city, {RATE * SECONDS:,} reports at {RATE}/s × {repeats} through nginx (TLS), 2 app processes, 2 nodes (sync)"
    return [
        Result("stack_intake_rate", "reports/s", statistics.median(achieved), f"offered rate {RATE}/s", RATE,
               KEEPS_UP, scale, f"p99 from due time {statistics.median(p99) * 1000:,.0f} ms"),
        Result("stack_intake_p99", "1/p99 (1/s)", 1 / statistics.median(p99),
               f"p99 budget {P99_BUDGET * 1000:.0f} ms", 1 / P99_BUDGET, 1.0, scale),
        Result("stack_replica_lag_p99", "1/p99 lag (1/MB)", 1 / max(statistics.median(lag), 1e-3),
               f"lag bound {LAG_BOUND_MB} MB", 1 / LAG_BOUND_MB, 1.0, scale,
               f"p99 lag {statistics.median(lag):.2f} MB during the intake load"),
        Result("stack_overload_shed", "201 or 503 (%)", 100 * shed_or_taken, "target: every answer", 100, 1.0,
               f"{OVERLOAD_RATE}/s for {OVERLOAD_SECONDS} s", f"answers by status {dict(answers)}"),
        Result("stack_read_router", "pages/s", 1 / statistics.median(routed), "replica as the only database",
               1 / statistics.median(direct), 0.95, f"OGC page of 10 grids × 1,000 × {max(3, repeats)} pairs, in process"),
        Result("stack_failover", "1/s", 1 / (failover.failover_seconds or float("inf")),
               f"target {FAILOVER_TARGET:.0f} s", 1 / FAILOVER_TARGET, 1.0, "50 reports/s, primary SIGKILLed at 10 s",
               f"lost {failover.lost}, duplicated {failover.duplicated}, "
               f"failover {failover.failover_seconds} s, rejoined {failover.rejoined}"),
    ]  # fmt: skip
