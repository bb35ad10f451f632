"""Intake under sustained load: the application server as production runs it (scripts/serve.sh,
against the test database) takes a steady stream of reports from a paced keep-alive client on
the loopback for half a minute: every attempt answered 201, every 201's event stored, none twice.

The rate is one any machine holds, busy or not: what is asserted is correctness under load. How
fast intake can go (200 reports a second is the city's target) is measured by ``make bench``
(``intake``, scripts/bench/intake.py), beside its budget, never asserted here. Achieved rate,
latency and CPU per report are printed with the test's output."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token

from layers.models import Category, Event, IdempotencyKey, ReaderScope
from scripts.loadgen import app_database_url, cpu_meter, database_url, intake_bodies, paced_load, points_in_box, serve
from tests.worlds.events import world
from tests.worlds.factories import ORIGIN, SIZE

#: Reports a second and seconds of load: a fifth of the city's target rate, which a fresh 2-core
#: machine busy with other work still answers (one measured 71/s at its worst).
RATE, SECONDS = 40, 30
#: Reports sent slowly first, so that every worker has loaded its code before the load.
WARM_UP = 40


@pytest.fixture
def intake_token(transactional_db, django_user_model) -> str:
    """The world committed (the server is another process) and a hotline intake account."""
    world()
    user = django_user_model.objects.create_user("hotline-gateway")
    user.groups.add(Group.objects.get_or_create(name="intake:hotline")[0])
    ReaderScope.objects.create(user=user, level="city")
    return Token.objects.create(user=user).key


def _backends() -> list[int]:
    """The PostgreSQL sessions serving the test database (the server's), ours excepted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _categories() -> list[str]:
    return sorted(Category.objects.filter(code__contains=".").values_list("code", flat=True))


def test_database_url_keeps_a_socket_directory_as_host():
    settings_dict = {"USER": "minqing", "PASSWORD": "", "HOST": "/srv/pg run", "PORT": 5439, "NAME": "t"}
    assert database_url(settings_dict) == "postgis://minqing@%2Fsrv%2Fpg%20run:5439/t"
    assert (
        database_url(settings_dict | {"PASSWORD": "p@ss/w"}) == "postgis://minqing:p%40ss%2Fw@%2Fsrv%2Fpg%20run:5439/t"
    )


def test_reports_under_sustained_load_are_all_answered_and_stored_once(intake_token, capsys):
    box = (ORIGIN[0], ORIGIN[1], ORIGIN[0] + SIZE, ORIGIN[1] + SIZE)
    bodies = intake_bodies(points_in_box(RATE * SECONDS, box=box, seed=6), categories=_categories())
    with serve(db_url=app_database_url(connection.settings_dict)) as server:
        warm = paced_load(port=server.port, token=intake_token, bodies=bodies[:WARM_UP], rate=20, run="warm")
        assert warm.attempts() == {201: WARM_UP}, warm.summary()
        with cpu_meter(server=server.pids, database=_backends, client=lambda: [os.getpid()]) as used:
            report = paced_load(port=server.port, token=intake_token, bodies=bodies, rate=RATE, run="load")
    n = len(bodies)
    with capsys.disabled():
        print(f"\nintake load: {report.summary()}")
        print(
            f"intake load: CPU per report: server {used['server'] / n * 1000:.2f} ms, PostgreSQL "
            f"{used['database'] / n * 1000:.2f} ms (sessions open at the end only), client "
            f"{used['client'] / n * 1000:.2f} ms; the machine's "
            f"{os.cpu_count()} cores were {used['machine']:.0%} busy (other processes included)"
        )

    # Zero errors: every attempt of every report answered 201 at the first try.
    assert report.attempts() == {201: RATE * SECONDS}, report.summary()
    ids = [outcome.event_id for outcome in report.outcomes]
    assert len(set(ids)) == len(ids)
    # Every 201 is in the database, and nothing else was stored (no duplicate, no stray row).
    stored = set(Event.objects.filter(description__startswith="负载测试").values_list("id", flat=True))
    warm_ids = {outcome.event_id for outcome in warm.outcomes}
    assert stored == set(ids) | warm_ids
    keys = dict(IdempotencyKey.objects.filter(key__startswith="load-").values_list("key", "event_id"))
    assert keys == {outcome.key: outcome.event_id for outcome in report.outcomes}
