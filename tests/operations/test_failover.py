"""The failover drill, reduced to fit every test run: the whole production stack (etcd, two
Patroni-managed PostGIS nodes with synchronous replication, pgBackRest, HAProxy, the application,
nginx with TLS) under var/, reports sent through nginx at a rate any machine holds, the primary
killed outright part-way. ``make drill`` is the full one (50 reports/s for a minute)."""

from __future__ import annotations

import shutil
import time

import pytest

from scripts.stack.drill import failover_drill
from scripts.stack.layout import ROOT, local_layout

#: Ports of their own, so a trial stack (``make stack``, from 26000) can stay up meanwhile.
PORT_BASE = 27000


@pytest.fixture
def layout():
    layout = local_layout(root=ROOT / "var" / "stack-test", base=PORT_BASE)
    yield layout
    shutil.rmtree(layout.root, ignore_errors=True)


def test_losing_the_primary_under_load_loses_and_duplicates_no_report(layout):
    started = time.monotonic()
    said: list[str] = []

    def say(line: str) -> None:
        said.append(f"{time.monotonic() - started:6.1f} s  {line}")

    result = failover_drill(layout, rate=10, seconds=20, kill_at=5, say=say)
    story = "\n".join([*said, result.line()])
    assert result.reports == 200, story
    # Every report was acknowledged (clients retry a 503 with the same key), each stored once.
    assert result.answered == 200, story
    assert (result.lost, result.duplicated) == (0, 0), story
    assert result.failover_seconds is not None and result.failover_seconds < 30, story
    assert result.rejoined, story
    # Reads come from the replica through the switch; most of them are answered.
    assert result.reads > 0 and result.reads_kept >= 0.5, story
