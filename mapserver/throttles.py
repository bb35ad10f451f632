"""Rate limits of the DRF views (JSON API, Open311, OGC API, exports), rates from
``MINQING_THROTTLE_RATES``: per client address without a login, per user, and a higher one for
intake systems (a group ``intake:<channel>``). A refused request becomes a 429 with
``Retry-After`` through the one error tree (``mapserver.errors.throttled``).

Kept apart from :mod:`mapserver.security`: DRF imports these classes while it builds its views,
so this module must not import DRF's views itself.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRate(SimpleRateThrottle):
    """Rates read from ``MINQING_THROTTLE_RATES`` on each request (so settings overrides apply)."""

    def get_rate(self) -> str | None:
        return settings.MINQING_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class AnonymousRate(_SettingsRate):
    """Requests without a user (the schema, public documents), counted per client address."""

    scope = "anon"

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserRate(_SettingsRate):
    """Requests of a signed-in user or token, counted per user; intake systems (a group named
    ``intake:<channel>``) are counted under their own, higher rate."""

    scope = "user"

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return True
        self.scope = "intake" if request.reader.is_intake else "user"
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class ResidentWriteRate(_SettingsRate):
    """Residents' writes without an account (``/api/resident/…`` POSTs: reports, photos,
    answers), counted per client address (``REMOTE_ADDR`` as
    ``mapserver.security.ProxyHeadersMiddleware`` settled it) on top of the general limits.
    Reads are left to those."""

    scope = "resident"

    def allow_request(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class OgcPagingRate(UserRate):
    """OGC API items: the first page of a scan counts under the user's rate like any request; a
    continuation page (``after``, as written into the ``next`` link) counts under
    ``ogc_paging``, per user and far higher. A desktop GIS reads a layer in hundreds or
    thousands of pages of its own size (GDAL's default is 10 features); counting each page
    against the user's rate would cut it off in the middle of a layer and leave a partial file.
    Intake systems keep their own rate."""

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return True
        if request.reader.is_intake:
            self.scope = "intake"
        elif request.query_params.get("after", "").strip():
            self.scope = "ogc_paging"
        else:
            self.scope = "user"
        return _SettingsRate.allow_request(self, request, view)
