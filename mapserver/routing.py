"""Read routing at the HTTP edge: which requests may read from a replica (:mod:`layers.database.reading`).

A ``GET`` or ``HEAD`` of a read-only surface — vector and heat tiles, the OGC API, exports,
hot spots and early warnings, the wall's dashboards, the analyst's statistics — reads from the
replicas, unless the same client wrote within ``MINQING_READ_YOUR_WRITES_SECONDS``: a user who
has just reported or acted sees their own change, read from the primary, until the replicas
have long caught up. Everything else (the events API, the tablet, pages, the admin, every
write) uses the primary.

"Wrote recently" is known two ways: a cookie set on the answer to each successful write
(browsers, and any client that keeps cookies; it only ever sends its holder to the primary, so it
needs no signature), and, in this process, the user's last write time (token clients without
cookies; the asynchronous tile server shares it).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest, HttpResponse

from layers.database.memo import Remembered
from layers.database.reading import REPLICA, reads_from, replica_configured

from .metrics import READS

#: Paths whose GET and HEAD may be answered from a replica.
READ_ONLY_PREFIXES = (
    "/tiles/",
    "/ogc/",
    "/exports/",
    "/api/hotspots",
    "/api/early-warnings",
    "/api/dashboard/",
    "/api/statistics/",
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: The cookie that says when this client last wrote (seconds since the epoch).
WROTE_COOKIE = "minqing_wrote"
#: Users' last writes in this process (user id → time), for clients that keep no cookie.
RECENT_WRITERS: Remembered[float] = Remembered(lambda: settings.MINQING_READ_YOUR_WRITES_SECONDS)


def wrote_recently(*, cookie: str | None, user_id: int | None) -> bool:
    """Whether a client with this cookie value and user wrote within the read-your-writes
    window (then its reads go to the primary).

    >>> wrote_recently(cookie=str(int(time.time())), user_id=None)
    True
    >>> wrote_recently(cookie="0", user_id=None), wrote_recently(cookie="x", user_id=None)
    (False, False)
    """
    window = settings.MINQING_READ_YOUR_WRITES_SECONDS
    try:
        if cookie and time.time() - float(cookie) < window:
            return True
    except ValueError:
        pass
    return user_id is not None and RECENT_WRITERS.get(user_id) is not None


def read_alias_for(*, method: str, path: str, cookie: str | None, user_id: int | None) -> str:
    """The database alias a request's reads use (see the module docstring)."""
    if not replica_configured() or method not in ("GET", "HEAD") or not path.startswith(READ_ONLY_PREFIXES):
        return DEFAULT_DB_ALIAS
    return DEFAULT_DB_ALIAS if wrote_recently(cookie=cookie, user_id=user_id) else REPLICA


class ReadRoutingMiddleware:
    """Sends a request's reads where :func:`read_alias_for` says, and marks a client that has
    just written. After the authentication middleware (the session's user is known)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        alias = read_alias_for(
            method=request.method, path=request.path, cookie=request.COOKIES.get(WROTE_COOKIE), user_id=user_id
        )
        if request.path.startswith(READ_ONLY_PREFIXES):
            READS.labels(alias).inc()
        with reads_from(alias):
            response = self.get_response(request)
        if request.method not in SAFE_METHODS and response.status_code < 400:
            # The user of a token request is known only now (DRF authenticates in the view).
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                RECENT_WRITERS.put(user.pk, time.time())
            response.set_cookie(
                WROTE_COOKIE,
                str(int(time.time())),
                max_age=max(1, int(settings.MINQING_READ_YOUR_WRITES_SECONDS)),
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        return response
