"""Cross-origin reads (CORS) from the origins in ``MINQING_CORS_ORIGINS``.

One decision, two servers: :class:`CorsMiddleware` applies it to Django (the JSON API, the OGC
API, Open311, exports, basemaps) and the asynchronous tile server calls the same functions for
``/tiles/…pbf``. A page on an allowed origin (a MapLibre app, a notebook) calls with a token in
``Authorization``; cookies are never allowed cross-origin (no ``Access-Control-Allow-Credentials``),
so a session and its CSRF protection stay same-origin. An origin not on the list gets no CORS
header at all: its browser then refuses to hand the answer to the page.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.utils.cache import patch_vary_headers

#: The URL prefixes other origins may call (pages, the admin and static files are not among them).
PATHS = ("/api/", "/ogc/", "/tiles/", "/open311/", "/exports/", "/basemaps/")
METHODS = ("GET", "HEAD", "POST", "OPTIONS")
#: Request headers a cross-origin call may send (besides the CORS-safelisted ones).
REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "if-none-match",
    "accept",
    "accept-language",
    "x-follow-token",
)
#: Answer headers a cross-origin page may read.
EXPOSED_HEADERS = ("ETag", "Link", "Location", "Retry-After", "Content-Disposition", "Content-Language")


def applies(path: str) -> bool:
    return path.startswith(PATHS)


def origin_allowed(origin: str) -> bool:
    allowed = settings.MINQING_CORS_ORIGINS
    return bool(origin) and ("*" in allowed or origin.rstrip("/") in allowed)


def preflight_headers(origin: str, method: str, requested: str) -> dict[str, str] | None:
    """The headers of the answer to a preflight (``OPTIONS`` with
    ``Access-Control-Request-Method``) from ``origin``, or ``None`` when it is not allowed: an
    origin off the list, a method or a request header we do not take."""
    if not origin_allowed(origin) or method.upper() not in METHODS:
        return None
    headers = [h.strip().lower() for h in requested.split(",") if h.strip()]
    if any(h not in REQUEST_HEADERS for h in headers):
        return None
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(METHODS),
        "Access-Control-Allow-Headers": ", ".join(REQUEST_HEADERS),
        "Access-Control-Max-Age": str(settings.MINQING_CORS_MAX_AGE),
        "Vary": "Origin",
        "Content-Length": "0",
    }


def response_headers(origin: str) -> dict[str, str]:
    """The CORS headers of an ordinary answer to ``origin`` (none for an origin off the list)."""
    if not origin_allowed(origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS)}


def is_preflight(method: str, headers) -> bool:
    return method == "OPTIONS" and bool(headers.get("access-control-request-method"))


class CorsMiddleware:
    """Answers allowed preflights itself (204) and adds the CORS headers to answers for allowed
    origins; every answer on a CORS path varies by ``Origin``."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if not applies(request.path):
            return self.get_response(request)
        origin = request.headers.get("Origin", "")
        if is_preflight(request.method, request.headers):
            headers = preflight_headers(
                origin,
                request.headers["Access-Control-Request-Method"],
                request.headers.get("Access-Control-Request-Headers", ""),
            )
            if headers is not None:
                response = HttpResponse(status=204)
                del response["Content-Type"]  # no body, no type (as the tile server answers)
                response["X-Frame-Options"] = "DENY"  # as every edge answer (no frame middleware inside)
                for name, value in headers.items():
                    response[name] = value
                return response
        response = self.get_response(request)
        for name, value in response_headers(origin).items():
            response[name] = value
        patch_vary_headers(response, ("Origin",))
        return response
