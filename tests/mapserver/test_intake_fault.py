"""Intake through a database restart: PostgreSQL is restarted (``pg_ctl -m fast``, kept down for
a second so that the outage is seen whatever the load) in the middle of a paced load of reports,
at a rate any machine holds (what is asserted is correctness, not speed; ``make bench`` measures
the rate). Clients get retryable 503s with Retry-After (never a 500, never a
dropped connection), retry with the same Idempotency-Key, and afterwards every report that got a
201 is in the database exactly once.

The restarted server is a throwaway cluster of this test's own (a temporary directory, a Unix
socket there, no TCP), migrated and seeded here, deleted afterwards: the shared development
cluster is never touched. It needs PostgreSQL 15 with PostGIS installed (scripts/setup.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from scripts.loadgen import (
    NO_ANSWER,
    PRODUCTION,
    ROOT,
    ThrowawayCluster,
    database_url,
    intake_bodies,
    paced_load,
    points_in_box,
    serve,
)
from tests.worlds.factories import ORIGIN, SIZE

#: Reports a second and seconds of load: enough that the one-second outage meets ~40 reports.
RATE, SECONDS = 40, 20
#: When, into the load, PostgreSQL is restarted (seconds), and how long it stays down.
RESTART_AT, DOWN_SECONDS = 8.0, 1.0
DATABASE = "intake_fault"

#: Run in the throwaway database: the test world, and an intake account whose token is printed.
SEED = """
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from layers.models import Category, ReaderScope
from tests.worlds.events import world
world()
user = User.objects.create_user("fault-gateway")
user.groups.add(Group.objects.get_or_create(name="intake:hotline")[0])
ReaderScope.objects.create(user=user, level="city")
codes = sorted(Category.objects.filter(code__contains=".").values_list("code", flat=True))
print(Token.objects.create(user=user).key, ",".join(codes))
"""


def _manage(db_url: str, *args: str) -> str:
    result = subprocess.run(  # noqa: S603  (our own manage.py, fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **PRODUCTION, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def throwaway():
    """A migrated, seeded database in a cluster of our own: (cluster, the application's URL,
    token, categories)."""
    with ThrowawayCluster() as cluster:
        cluster.psql("postgres", f"CREATE DATABASE {DATABASE}")
        cluster.psql(DATABASE, "CREATE EXTENSION postgis")
        url = database_url(cluster.settings_dict(DATABASE))
        _manage(url, "migrate", "--verbosity", "0")
        token, codes = _manage(url, "shell", "--command", SEED).strip().splitlines()[-1].split()
        # Served as production serves: the application's role, which owns nothing.
        yield cluster, database_url(cluster.settings_dict(DATABASE, app=True)), token, codes.split(",")


def test_a_database_restart_under_load_loses_and_duplicates_nothing(throwaway, capsys):
    cluster, url, token, categories = throwaway
    box = (ORIGIN[0], ORIGIN[1], ORIGIN[0] + SIZE, ORIGIN[1] + SIZE)
    bodies = intake_bodies(points_in_box(RATE * SECONDS, box=box, seed=7), categories=categories)
    restarts: list[float] = []

    def restart_once(elapsed: float) -> None:
        # In its own thread: the pacing goes on while PostgreSQL restarts.
        if elapsed >= RESTART_AT and not restarts:
            restarts.append(time.monotonic())
            restart = threading.Thread(
                target=lambda: restarts.append(_timed(lambda: cluster.restart(down_seconds=DOWN_SECONDS))),
                daemon=True,
            )
            restart.start()

    with serve(db_url=url, env={"MINQING_RETRY_AFTER_SECONDS": "1"}) as server:
        report = paced_load(
            port=server.port, token=token, bodies=bodies, rate=RATE, run="fault", on_progress=restart_once
        )
    attempts = report.attempts()
    with capsys.disabled():
        print(f"\nintake through a restart ({restarts[1]:.2f} s): {report.summary()}")

    assert len(restarts) == 2, "PostgreSQL was not restarted during the load"
    # Clients were told to retry, and nothing else went wrong: no 500, no other error, no dropped
    # connection; every report ended with a 201 (the replay of a stored first answer included).
    assert attempts[503] > 0, report.summary()
    assert set(attempts) == {201, 503}, report.summary()
    assert attempts[NO_ANSWER] == 0
    assert [o for o in report.outcomes if o.status != 201] == []
    retry_after, body = report.samples[503]
    assert retry_after == "1"
    assert json.loads(body) == {"error": {"code": "unavailable", "message": "数据库暂不可用，请稍后重试"}}
    # Every 201 is stored, each report once: as many events as reports, each key naming its event.
    answered = {o.key: o.event_id for o in report.outcomes}
    stored = cluster.psql(
        DATABASE,
        "SELECT k.key || ' ' || k.event_id || ' ' || (SELECT count(*) FROM layers_event) "
        "FROM layers_idempotencykey k ORDER BY k.key",
    ).split("\n")
    rows = [line.split() for line in stored if line]
    assert {key: int(event_id) for key, event_id, _ in rows} == answered
    assert {int(count) for _, _, count in rows} == {len(bodies)}
    assert len(set(answered.values())) == len(bodies)


def _timed(action) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start
