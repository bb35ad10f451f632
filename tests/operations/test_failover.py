"""The production stack, reduced to fit every test run: etcd, two Patroni-managed PostGIS nodes
with synchronous replication, pgBackRest, HAProxy, the application and nginx with TLS, under var/.
The failover drill runs once (reports through nginx at a rate any machine holds, the primary
killed outright part-way; ``make drill`` is the full one, 50 reports/s for a minute); then the
front proxy and the health checks are asked what clients and the operators' tools would ask."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import time

import pytest

from scripts.stack import engines
from scripts.stack.drill import DrillResult, failover_drill
from scripts.stack.engines import StackError
from scripts.stack.layout import ROOT, Layout, local_layout
from scripts.stack.lifecycle import down

#: Ports of their own, so a trial stack (``make stack``, from 26000) can stay up meanwhile; another
#: checkout's test run on the same host sets its own base.
PORT_BASE = int(os.environ.get("MINQING_TEST_STACK_PORT_BASE", "27000"))


@pytest.fixture(scope="module")
def drilled() -> tuple[Layout, DrillResult, str]:
    layout = local_layout(root=ROOT / "var" / "stack-test", base=PORT_BASE)
    started = time.monotonic()
    said: list[str] = []

    def say(line: str) -> None:
        said.append(f"{time.monotonic() - started:6.1f} s  {line}")

    try:
        try:
            result = failover_drill(layout, rate=10, seconds=20, kill_at=5, keep=True, say=say)
        except StackError as error:
            # What the drill saw and what Patroni said, so a failure on a CI machine can be read.
            pytest.fail("\n".join([str(error), *said, *patroni_tails(layout)]), pytrace=False)
        yield layout, result, "\n".join([*said, result.line()])
    finally:
        down(layout, wipe=True, say=lambda *_: None)
        shutil.rmtree(layout.root, ignore_errors=True)


def patroni_tails(layout: Layout, lines: int = 30) -> list[str]:
    tails = []
    for log in sorted(layout.logs.glob("patroni-*.log")):
        tails += [f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-lines:]]
    return tails


def get(layout: Layout, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    client = http.client.HTTPSConnection(
        "localhost", layout.https_port, timeout=10, context=engines.tls_context(layout)
    )
    try:
        client.request("GET", path, headers=headers)
        response = client.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        client.close()


def test_losing_the_primary_under_load_loses_and_duplicates_no_report(drilled):
    _, result, story = drilled
    assert result.reports == 200, story
    # Every report was acknowledged (clients retry a 503 with the same key), each stored once.
    assert result.answered == 200, story
    assert (result.lost, result.duplicated) == (0, 0), story
    assert result.failover_seconds is not None and result.failover_seconds < 30, story
    assert result.rejoined, story
    # Reads come from the replica through the switch; most of them are answered.
    assert result.reads > 0 and result.reads_kept >= 0.5, story


def test_after_the_failover_the_application_is_ready_again_without_a_restart(drilled):
    """Ready means the primary answers and the replica is within its lag bound: right after the
    old primary rejoins it may still be catching up (503 meanwhile); the application's
    connections find the new topology by themselves."""
    layout, _, story = drilled
    answers = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _, body = get(layout, "/readyz")
        answers.append((status, json.loads(body)))
        if status == 200:
            break
        time.sleep(1)
    status, answer = answers[-1]
    assert (status, answer["database"], answer["ready"]) == (200, "ok", True), (answers[-3:], story)
    assert answer["replica"]["ok"] is True and answer["replica"]["lag_bytes"] <= answer["replica"]["max_lag_bytes"]


def test_the_front_proxy_compresses_caches_only_what_is_public_and_hides_metrics(drilled):
    layout, _, _ = drilled
    status, headers, body = get(layout, "/api/public/cells", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["type"] == "FeatureCollection"
    _, headers, _ = get(layout, "/api/public/cells", **{"Accept-Encoding": "br"})
    assert headers.get("content-encoding") == "br"
    # The public map's figures are the same for everyone: a burst is answered from the cache …
    statuses = [get(layout, "/api/public/cells")[1].get("x-cache-status") for _ in range(3)]
    assert statuses[-1] == "HIT", statuses
    # … but never a request that carries credentials: its answer may be scoped to its user.
    _, headers, _ = get(layout, "/api/public/cells", Authorization="Token not-a-token")
    assert headers.get("x-cache-status") == "BYPASS"
    _, headers, _ = get(layout, "/api/public/cells", Cookie="sessionid=abc")
    assert headers.get("x-cache-status") == "BYPASS"
    # Metrics are for the operators' scraper on the application's own port only.
    assert get(layout, "/metrics")[0] == 404
    assert engines.http_status(f"http://{layout.host}:{layout.app_port}/metrics") == 200
