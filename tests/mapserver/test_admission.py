"""Overload is shed, not queued: beyond the Django threads and a bounded queue, a request is
answered 503 with Retry-After and the security headers at once, before any work; in a real
server under a burst every client gets an answer, never a timeout."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from mapserver.admission import BUSY, Admission
from scripts.loadgen import app_database_url, serve


def _run(coroutine):
    """Run on a thread of its own: another test's browser may have left an event loop running
    in this one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_requests_beyond_the_limit_are_answered_503_at_once():
    release = asyncio.Event()
    started: list[str] = []

    async def slow_app(scope, receive, send):
        started.append(scope["path"])
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    admission = Admission(slow_app, limit=2)

    async def request(path: str, accept: str = "") -> tuple[int, dict, bytes]:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "path": path, "headers": [(b"accept", accept.encode())]}
        await admission(scope, None, send)
        return sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}, sent[1]["body"]

    async def scenario():
        first = asyncio.create_task(request("/api/events"))
        second = asyncio.create_task(request("/api/events"))
        await asyncio.sleep(0.01)
        shed_json = await request("/api/events")
        shed_page = await request("/wall/", accept="text/html")
        assert started == ["/api/events", "/api/events"]  # the shed ones never reached the app
        release.set()
        done = await asyncio.gather(first, second)
        after = await request("/api/events")  # room again
        return shed_json, shed_page, done, after

    (status, headers, body), (page_status, page_headers, page), done, after = _run(scenario())
    assert (status, json.loads(body)) == (503, {"error": {"code": "busy", "message": BUSY}})
    assert headers["retry-after"] == "2" and headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff" and "script-src 'self'" in headers["content-security-policy"]
    assert page_status == 503 and page_headers["content-type"].startswith("text/html") and BUSY.encode() in page
    assert [answer[0] for answer in done] == [200, 200]
    assert after[0] == 200
    assert admission.active == 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_beyond_the_queue_gets_answers_not_timeouts(django_user_model):
    """60 clients at once against one process with 2 threads and a queue of 2: some are served,
    the rest told 503 with Retry-After within seconds; no client waits out its timeout."""
    user = django_user_model.objects.create_user("burst")
    token = Token.objects.create(user=user).key
    env = {"MINQING_DJANGO_THREADS": "2", "MINQING_DJANGO_QUEUE": "2"}
    with serve(db_url=app_database_url(connection.settings_dict), workers=1, env=env) as server:

        def one(_) -> tuple[int, str | None]:
            client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
            client.request(
                "GET", "/api/schema/", headers={"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}
            )
            response = client.getresponse()
            response.read()
            return response.status, response.getheader("Retry-After")

        with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
            answers = list(pool.map(one, range(60)))
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) > 0 and statuses.count(200) >= 1
    assert {retry for status, retry in answers if status == 503} == {"2"}
