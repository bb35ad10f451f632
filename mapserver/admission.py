"""Shedding load: a bounded queue in front of Django.

Django's requests run on a pool of ``MINQING_DJANGO_THREADS`` threads per process
(:mod:`mapserver.asgi`); without a bound, requests beyond them queue for as long as clients keep
sending, and at the end the server works for clients that gave up long ago (the review saw
9,685 of 12,000 clients time out while the server went on). :class:`Admission` lets at most the
threads plus ``MINQING_DJANGO_QUEUE`` requests in at once per process and answers the rest at
once with 503 and ``Retry-After``, before any work: a client told to retry later can, and the
requests let in finish in bounded time.

Vector tiles are answered on the event loop by the tile server and are not counted here.
"""

from __future__ import annotations

import json

from django.conf import settings

from .errors import JSON_PREFIXES
from .metrics import DJANGO_ACTIVE, SHED
from .security import edge_headers

#: What a shed request is told (JSON under the API prefixes, a page elsewhere).
BUSY = "服务器繁忙，请稍后重试 (the server is busy: retry after the time Retry-After gives)"


class Admission:
    """ASGI middleware admitting at most ``limit`` HTTP requests at once to ``app``."""

    def __init__(self, app, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        #: Requests admitted and not finished (one event loop: no lock needed).
        self.active = 0

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            SHED.inc()
            await self._busy(scope, send)
            return
        self.active += 1
        DJANGO_ACTIVE.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            DJANGO_ACTIVE.dec()

    async def _busy(self, scope: dict, send) -> None:
        accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
        if scope["path"].startswith(JSON_PREFIXES) or "application/json" in accept:
            body = json.dumps({"error": {"code": "busy", "message": BUSY}}, ensure_ascii=False).encode()
            content_type = "application/json"
        else:
            body = f"<!DOCTYPE html><title>503</title><p>{BUSY}</p>".encode()
            content_type = "text/html; charset=utf-8"
        headers = edge_headers() | {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Retry-After": str(settings.MINQING_RETRY_AFTER_SECONDS),
            "Cache-Control": "no-store",
        }
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": 503, "headers": encoded})
        await send({"type": "http.response.body", "body": body})
