"""Intake under sustained load, beside its budget.

intake: ``POST /api/events`` at 200 reports a second for a minute (the city's target: a peak
hour of the 12345 hotline, the app and the patrols together), open loop, from 12 keep-alive
clients on the loopback (``scripts/loadgen.py``), against the application server as production
runs it (``scripts/serve.sh``: 2 uvicorn processes, the production settings) on the city-scale
benchmark database. Each report has its own
``Idempotency-Key`` and a point inside the city's small grids, so every one is located, linked
and dispatched as a real one is. Rows: reports answered 201 per second against the offered
rate, and p99 latency (from each report's due time, so a server that falls behind shows it)
against the 500 ms budget. CPU per report of the server and of PostgreSQL is in the note.

Only a rate asserted here: the tests (tests/mapserver/test_intake_load.py) check at a lower rate
that every report is answered and stored once. The reports stay in the benchmark database (the
event log is append-only), about 12,000 a run; no other benchmark reads events.
"""

from __future__ import annotations

import os
import statistics

from django.contrib.auth.models import Group
from django.db import connection

from scripts.loadgen import app_database_url, cpu_meter, intake_bodies, paced_load, serve

from .harness import Result, bench_reader, benchmark

#: Offered reports a second, and seconds of each timed run.
RATE, SECONDS = 200, 60
#: Reports sent slowly first, so that every worker has loaded its code and warmed its caches.
WARM_UP, WARM_UP_RATE = 100, 20
#: The latency budget of a report at the target rate (seconds, p99 from its due time).
P99_BUDGET = 0.5
#: The share of the offered rate that counts as keeping up: a server that keeps up answers
#: ~0.99 of it within the run (the last reports' latency is all it loses).
KEEPS_UP = 0.95


def _intake_token() -> str:
    """A token for the benchmark's hotline gateway (an intake system reading the whole city)."""
    from rest_framework.authtoken.models import Token

    from layers.models import ReaderScope

    user = bench_reader("bench-intake")
    user.groups.add(Group.objects.get_or_create(name="intake:hotline")[0])
    ReaderScope.objects.get_or_create(user=user, level="city")
    return Token.objects.get_or_create(user=user)[0].key


def _points_in_small_grids(count: int, *, seed: int) -> list[tuple[float, float]]:
    """``count`` seeded points, each inside a small grid (two per grid, in a seeded order), so
    that every report is located and dispatched as a real one is."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [1 / (seed + 2)])
        cursor.execute(
            """SELECT ST_X(p.geom), ST_Y(p.geom)
               FROM layers_grid g, ST_Dump(ST_GeneratePoints(g.boundary, 2, %s)) p
               WHERE g.level = 'small' ORDER BY random() LIMIT %s""",
            [seed + 1, count],
        )
        points = cursor.fetchall()
    if len(points) < count:
        raise AssertionError(f"intake: {len(points)} points in small grids, {count} needed (is the city loaded?)")
    return points


def _categories() -> list[str]:
    """The taxonomy's leaf categories (family.kind)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM layers_category WHERE code LIKE '%%.%%' ORDER BY code")
        return [code for (code,) in cursor.fetchall()]


def _backends() -> list[int]:
    """The PostgreSQL sessions serving the benchmark database (the server's), ours excepted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


@benchmark("intake")
def intake(*, repeats: int, rows: int) -> list[Result]:
    token = _intake_token()
    categories = _categories()
    reports = RATE * SECONDS
    # A fresh seed per run: the points differ, the load does not.
    bodies = [
        intake_bodies(_points_in_small_grids(WARM_UP + reports, seed=seed), categories=categories)
        for seed in range(repeats)
    ]
    achieved, p99, cpu_server, cpu_database, summaries = [], [], [], [], []
    with serve(db_url=app_database_url(connection.settings_dict)) as server:
        for run, batch in enumerate(bodies):
            tag = f"bench-{os.getpid()}-{run}"
            warm = paced_load(
                port=server.port, token=token, bodies=batch[:WARM_UP], rate=WARM_UP_RATE, run=f"{tag}-warm"
            )
            if warm.attempts() != {201: WARM_UP}:
                raise AssertionError(f"intake warm-up failed: {warm.summary()}")
            with cpu_meter(server=server.pids, database=_backends) as used:
                report = paced_load(port=server.port, token=token, bodies=batch[WARM_UP:], rate=RATE, run=tag)
            if set(report.attempts()) != {201}:
                raise AssertionError(f"intake answered other than 201 under load: {report.summary()}")
            print(f"bench: intake run {run + 1}: {report.summary()}", flush=True)
            achieved.append(report.achieved)
            p99.append(report.latency_ms(0.99) / 1000)
            cpu_server.append(used["server"] / reports * 1000)
            cpu_database.append(used["database"] / reports * 1000)
            summaries.append(report.summary())
    scale = f"{reports:,} reports at {RATE}/s × {repeats}, 12 clients, 2 server processes ({connection.settings_dict['NAME']})"
    note = (
        f"CPU per report (median): server {statistics.median(cpu_server):.2f} ms, PostgreSQL "
        f"{statistics.median(cpu_database):.2f} ms; {os.cpu_count()} cores shared with the load client; "
        f"p99 from each report's due time {statistics.median(p99) * 1000:,.0f} ms"
    )
    return [
        Result(
            "intake_rate",
            "reports/s",
            statistics.median(achieved),
            f"offered rate {RATE}/s",
            RATE,
            KEEPS_UP,
            scale,
            note,
        ),
        Result(
            "intake_p99",
            "1/p99 (1/s)",
            1 / statistics.median(p99),
            f"p99 budget {P99_BUDGET * 1000:.0f} ms",
            1 / P99_BUDGET,
            1.0,
            scale,
        ),
    ]
