"""Hardening of the HTTP edge: security headers and the Content-Security-Policy, request size
limits, login lockout, rate limits, and the request the audit log names its actor from.

* :class:`HardeningMiddleware` refuses a request body larger than ``MINQING_REQUEST_MAX_BYTES``
  (or the larger limit a view declares, such as the import page's uploads) from its declared
  length, before a byte is read (413), and a query string of more parameters than Django reads
  (400), and adds the Content-Security-Policy
  (``script-src 'self'``: no inline script) and Permissions-Policy headers. A template that
  cannot avoid an inline script (django-leaflet's admin widget) reads ``request.csp_nonce``;
  the nonce is then added to ``script-src`` for that response only. HSTS, nosniff,
  Referrer-Policy, Cross-Origin-Opener-Policy and X-Frame-Options come from Django's own
  middleware and settings.
* :class:`AuditRequestMiddleware` remembers the request for :mod:`layers.protection.audit`.
* :class:`LockoutBackend` and :func:`lockout_response`: django-axes counts failed logins per
  username and IP address; after ``AXES_FAILURE_LIMIT`` within ``AXES_COOLOFF_TIME`` the pair is
  locked and the login answers 429 with a clear message until the cool-off ends.
* The rate limits are DRF throttles in :mod:`mapserver.throttles`.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import secrets
from urllib.parse import urlsplit

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty
from django.utils.translation import gettext as _

from layers.protection import audit

from .errors import BadParameter, PayloadTooLarge, TooManyRequests, render_error
from .params import check_query_size


class AccountLocked(TooManyRequests):
    """Too many failed logins for this username from this address."""

    code = "account_locked"


class AddressLocked(TooManyRequests):
    """Too many failed logins from this address, whatever the usernames (password spraying)."""

    code = "address_locked"


# --- headers and sizes ----------------------------------------------------------------------------


def content_security_policy(*, nonce: str | None = None, frame_ancestors: list[str] | None = None) -> str:
    """The policy of every response: ``MINQING_CONTENT_SECURITY_POLICY`` with the hosts of the
    XYZ basemaps (fetched by the browser) added to ``img-src``, and ``nonce`` to ``script-src``.
    ``frame_ancestors`` replaces the policy's ``frame-ancestors`` (the one view that may be
    framed: the public map's embeddable view)."""
    directives = {name: list(sources) for name, sources in settings.MINQING_CONTENT_SECURITY_POLICY.items()}
    if frame_ancestors is not None:
        directives["frame-ancestors"] = list(frame_ancestors)
    for basemap in settings.MINQING_BASEMAPS:
        if basemap.get("kind") == "xyz" and basemap.get("url"):
            parts = urlsplit(basemap["url"].replace("{s}", "a"))
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in directives.setdefault("img-src", []):
                directives["img-src"].append(origin)
    if nonce:
        directives.setdefault("script-src", []).append(f"'nonce-{nonce}'")
    return "; ".join(f"{name} {' '.join(sources)}".strip() for name, sources in directives.items())


def edge_headers() -> dict[str, str]:
    """The security headers Django's middleware gives every answer, for the answers that do not
    pass through it (the asynchronous tile server, an overloaded server's 503): nosniff,
    Referrer-Policy, Cross-Origin-Opener-Policy, X-Frame-Options, the Content-Security-Policy and
    the Permissions-Policy, as the settings say."""
    headers = {"Content-Security-Policy": content_security_policy()}
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        headers["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    if settings.MINQING_PERMISSIONS_POLICY:
        headers["Permissions-Policy"] = settings.MINQING_PERMISSIONS_POLICY
    return headers


#: Paths whose answers are never stored by a cache unless the view says otherwise.
PRIVATE_PREFIXES = ("/api/", "/open311/", "/ogc/", "/exports/")


class HardeningMiddleware:
    """Refuses oversized bodies (413) and overlong query strings (400), and adds the
    Content-Security-Policy and Permissions-Policy."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = SimpleLazyObject(lambda: secrets.token_urlsafe(18))
        request.csp_nonce = nonce
        response = self._refuse_oversized(request) or self._refuse_long_query(request) or self.get_response(request)
        if "Content-Security-Policy" not in response:
            used = nonce._wrapped is not empty  # only a page that printed the nonce allows it
            response["Content-Security-Policy"] = content_security_policy(nonce=str(nonce) if used else None)
        if settings.MINQING_PERMISSIONS_POLICY and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.MINQING_PERMISSIONS_POLICY
        if request.path.startswith(PRIVATE_PREFIXES) and "Cache-Control" not in response:
            # Answers of the API and the exports depend on who asks and may hold residents' data:
            # no shared cache, and no copy left on the client's disk. Those that may be kept
            # (tiles, the tablet's grid package, photos) say so themselves.
            response["Cache-Control"] = "private, no-store"
        return response

    @staticmethod
    def _refuse_long_query(request: HttpRequest) -> HttpResponse | None:
        """Too many query parameters: a 400 here, before any middleware or view parses them
        (Django would raise while parsing, wherever that happens first)."""
        try:
            check_query_size(request.META.get("QUERY_STRING", ""))
        except BadParameter as error:
            return render_error(request, error)
        return None

    @staticmethod
    def _refuse_oversized(request: HttpRequest) -> HttpResponse | None:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django reads no body then
        limit = settings.MINQING_REQUEST_MAX_BYTES
        if declared <= limit:
            return None
        limit = max(limit, _view_limit(request))
        if declared <= limit:
            return None
        return render_error(
            request,
            PayloadTooLarge(
                _("The request body of %(size)s bytes is over the limit of %(limit)s bytes.")
                % {"size": f"{declared:,}", "limit": f"{limit:,}"},
                limit=limit,
            ),
        )


def _view_limit(request: HttpRequest) -> int:
    """The larger body limit a view declares (``request_max_bytes_setting``: the name of the
    setting holding it, such as the import page's upload limit), or 0. Only looked up for a
    body over the general limit, so other requests pay nothing for it."""
    from django.urls import Resolver404, resolve

    try:
        view = resolve(request.path_info).func
    except Resolver404:
        return 0
    name = getattr(getattr(view, "view_class", view), "request_max_bytes_setting", None)
    return int(getattr(settings, name)) if name else 0


class AuditRequestMiddleware:
    """Makes the request (and so its user, known after authentication, DRF's token user
    included) the actor of audit entries recorded while it is served."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = audit.request_enter(request)
        try:
            return self.get_response(request)
        finally:
            audit.request_leave(token)


# --- login lockout --------------------------------------------------------------------------------


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check before the password backends, for logins through a request (the login
    page, the admin), and the per-address limit across usernames (password spraying: a few
    tries at many accounts from one address), counted from axes' own records of failures. An
    ``authenticate()`` without a request (a management shell, a test client's ``login``) has no
    address to count by and is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        if address_failures(client_ip(request)) >= settings.MINQING_LOGIN_ADDRESS_FAILURE_LIMIT:
            # Refused the way axes refuses a locked pair: its middleware then answers with
            # lockout_response, which reads why from the request.
            request.axes_locked_out = True
            request.minqing_locked_address = True
            raise AxesBackendPermissionDenied("too many failed logins from this address")
        return super().authenticate(request, username=username, password=password, **kwargs)


def address_failures(address: str | None) -> int:
    """Failed logins from ``address`` within the cool-off, whatever the usernames tried."""
    if not address:
        return 0
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    found = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since)
    return found.aggregate(total=Sum("failures_since_start"))["total"] or 0


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 through the error tree (a page for the login form, JSON for
    an API client) with ``Retry-After`` the length of the cool-off."""
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, math.ceil(seconds / 60))
    if getattr(request, "minqing_locked_address", False):
        error = AddressLocked(
            _(
                "too many failed logins from this address: logins from it are refused for %(minutes)s minutes; "
                "try again later"
            )
            % {"minutes": minutes},
            retry_after=seconds,
        )
    else:
        error = AccountLocked(
            _(
                "too many failed logins: this account is locked from this address for %(minutes)s minutes; "
                "try again later"
            )
            % {"minutes": minutes},
            retry_after=seconds,
        )
    return render_error(request, error)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address (``AXES_CLIENT_IP_CALLABLE``): ``REMOTE_ADDR``, which
    :class:`ProxyHeadersMiddleware` has set from a trusted proxy's X-Forwarded-For."""
    return request.META.get("REMOTE_ADDR")


# --- the client address ---------------------------------------------------------------------------

#: Headers a proxy adds; believed only from a trusted proxy, dropped from anyone else.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_REAL_IP")


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_proxy(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: str, trusted: tuple[str, ...]) -> tuple[str, bool]:
    """``(client address, whether the peer is a trusted proxy)`` for a connection from ``peer``
    with this X-Forwarded-For: from a trusted proxy, the right-most address that is not a proxy
    itself (a client cannot push a forged address past the proxies, which append the one they
    saw); from anyone else, the peer.

    >>> forwarded_client("127.0.0.1", "6.6.6.6, 203.0.113.9", ("127.0.0.1",))
    ('203.0.113.9', True)
    >>> forwarded_client("198.51.100.4", "6.6.6.6", ("127.0.0.1",))
    ('198.51.100.4', False)
    >>> forwarded_client("10.0.0.2", "203.0.113.9, 10.0.0.1", ("10.0.0.0/24",))
    ('203.0.113.9', True)
    """
    networks = _networks(trusted)
    if not networks or not _is_proxy(peer, networks):
        return peer, False
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_proxy(hop, networks):
            try:
                return str(ipaddress.ip_address(hop)), True
            except ValueError:
                return peer, True  # garbage in the header: the proxy is all we know
    return (hops[0] if hops else peer), True


class ProxyHeadersMiddleware:
    """The client's address and scheme in one place, for the lockout, the rate limits and the
    audit log alike: from a proxy listed in ``MINQING_TRUSTED_PROXIES``, ``REMOTE_ADDR`` becomes
    the client that proxy saw (X-Forwarded-For) and X-Forwarded-Proto stays for Django's
    ``SECURE_PROXY_SSL_HEADER``; from anyone else the proxy headers are dropped before any other
    code reads them. The servers in front do no such rewriting (uvicorn runs with
    ``--no-proxy-headers``)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        client, via_proxy = forwarded_client(
            meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""), tuple(settings.MINQING_TRUSTED_PROXIES)
        )
        if via_proxy:
            meta["REMOTE_ADDR"] = client
        else:
            for header in PROXY_HEADERS:
                meta.pop(header, None)
        return self.get_response(request)
