"""Hardening of the HTTP edge: security headers and the Content-Security-Policy, request size
limits, login lockout, rate limits, and the request the audit log names its actor from.

* :class:`HardeningMiddleware` refuses a request body larger than ``MINQING_REQUEST_MAX_BYTES``
  from its declared length, before a byte is read (413), and adds the Content-Security-Policy
  (``script-src 'self'``: no inline script) and Permissions-Policy headers. A template that
  cannot avoid an inline script (django-leaflet's admin widget) reads ``request.csp_nonce``;
  the nonce is then added to ``script-src`` for that response only. HSTS, nosniff,
  Referrer-Policy, Cross-Origin-Opener-Policy and X-Frame-Options come from Django's own
  middleware and settings.
* :class:`AuditRequestMiddleware` remembers the request for :mod:`layers.audit`.
* :class:`LockoutBackend` and :func:`lockout_response`: django-axes counts failed logins per
  username and IP address; after ``AXES_FAILURE_LIMIT`` within ``AXES_COOLOFF_TIME`` the pair is
  locked and the login answers 429 with a clear message until the cool-off ends.
* The rate limits are DRF throttles in :mod:`mapserver.throttles`.
"""

from __future__ import annotations

import math
import secrets
from urllib.parse import urlsplit

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty
from django.utils.translation import gettext as _

from layers import audit

from .errors import PayloadTooLarge, TooManyRequests, render_error


class AccountLocked(TooManyRequests):
    """Too many failed logins for this username from this address."""

    code = "account_locked"


# --- headers and sizes ----------------------------------------------------------------------------


def content_security_policy(*, nonce: str | None = None) -> str:
    """The policy of every response: ``MINQING_CONTENT_SECURITY_POLICY`` with the hosts of the
    XYZ basemaps (fetched by the browser) added to ``img-src``, and ``nonce`` to ``script-src``."""
    directives = {name: list(sources) for name, sources in settings.MINQING_CONTENT_SECURITY_POLICY.items()}
    for basemap in settings.MINQING_BASEMAPS:
        if basemap.get("kind") == "xyz" and basemap.get("url"):
            parts = urlsplit(basemap["url"].replace("{s}", "a"))
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in directives.setdefault("img-src", []):
                directives["img-src"].append(origin)
    if nonce:
        directives.setdefault("script-src", []).append(f"'nonce-{nonce}'")
    return "; ".join(f"{name} {' '.join(sources)}".strip() for name, sources in directives.items())


class HardeningMiddleware:
    """Refuses oversized bodies (413) and adds the Content-Security-Policy and Permissions-Policy."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = SimpleLazyObject(lambda: secrets.token_urlsafe(18))
        request.csp_nonce = nonce
        response = self._refuse_oversized(request) or self.get_response(request)
        if "Content-Security-Policy" not in response:
            used = nonce._wrapped is not empty  # only a page that printed the nonce allows it
            response["Content-Security-Policy"] = content_security_policy(nonce=str(nonce) if used else None)
        if settings.MINQING_PERMISSIONS_POLICY and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.MINQING_PERMISSIONS_POLICY
        return response

    @staticmethod
    def _refuse_oversized(request: HttpRequest) -> HttpResponse | None:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django reads no body then
        limit = settings.MINQING_REQUEST_MAX_BYTES
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
    page, the admin). An ``authenticate()`` without a request (a management shell, a test
    client's ``login``) has no address to count by and is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 through the error tree (a page for the login form, JSON for
    an API client) with ``Retry-After`` the length of the cool-off."""
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, math.ceil(seconds / 60))
    error = AccountLocked(
        f"登录失败次数过多，该账号已从此地址锁定 {minutes} 分钟，请稍后再试 "
        f"(too many failed logins: this account is locked from this address for {minutes} minutes; try again later)",
        retry_after=seconds,
    )
    return render_error(request, error)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the connection's, or with ``MINQING_TRUSTED_PROXIES`` = n proxies in
    front, the n-th address from the right of X-Forwarded-For (the one the outermost trusted
    proxy saw); ``AXES_CLIENT_IP_CALLABLE``."""
    count = settings.MINQING_TRUSTED_PROXIES
    if count > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")
