"""Who is asking: the one access decision of each request (:class:`layers.protection.access.Reader`).

:class:`ReaderMiddleware` gives every request a ``reader`` attribute, built on first use and
kept for the rest of the request: the user of the session, else of an ``Authorization: Token``
header (the order of this project's DRF authentication classes), with their roles, permissions
and data scope resolved in one statement (``layers.protection.access.READER_SQL``). DRF views read it as
``request.reader`` too (DRF's request passes unknown attributes through to Django's); so do the
admin and the plain views, and the asynchronous tile server builds the same object with the same
statements (:mod:`mapserver.tileserver`).

Plain views on hot paths (vector tiles) are wrapped by :func:`reader_view`: DRF's ``APIView``
costs about a millisecond per request in authentication classes, content negotiation and
response wrapping, which a tile server answering thousands of requests a second cannot spend.
It gives the same answers as DRF's: the same 401 bodies (DRF's own messages) and the
``WWW-Authenticate`` header.

A reader's roles, permissions and scope are remembered in this process for
``MINQING_READER_ROLES_SECONDS`` (default 5 s) per user: adding a user to a group takes up to
that long to reach every surface. The superuser flag and the user's activity are read on every
request (they come with the user row), so a disabled account or a revoked token is refused at
once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.permissions import BasePermission

from layers.database.reading import reading
from layers.protection.access import ANONYMOUS, Reader, reader_for_user

from .errors import NotAuthenticated, render_error


class ReaderNotAuthenticated(NotAuthenticated):
    """401 carrying the header DRF sends with it (the client learns it may send a token)."""

    www_authenticate = 'Token realm="api"'


#: A token's user: id, is_active, is_superuser (psycopg placeholders).
TOKEN_USER_SQL = (
    f"SELECT u.id, u.is_active, u.is_superuser FROM {Token._meta.db_table} k "
    f"JOIN {get_user_model()._meta.db_table} u ON u.id = k.user_id WHERE k.key = %s"
)


class _TokenKey(TokenAuthentication):
    """DRF's token header parsing and its messages, without its lookup: the caller reads the
    token's user with :data:`TOKEN_USER_SQL` through whichever driver it runs on."""

    def authenticate_credentials(self, key: str) -> tuple[str, None]:
        return key, None


def token_key(authorization: bytes) -> str | None:
    """The token of an ``Authorization: Token <key>`` header, ``None`` when there is no token
    header; a malformed one raises :class:`ReaderNotAuthenticated` with DRF's message."""
    try:
        found = _TokenKey().authenticate(SimpleNamespace(META={"HTTP_AUTHORIZATION": authorization}))
    except drf_exceptions.AuthenticationFailed as failure:
        raise ReaderNotAuthenticated(str(failure.detail)) from None
    return found[0] if found else None


def token_user(row: tuple | None) -> tuple[int, bool]:
    """``(user id, is superuser)`` from a :data:`TOKEN_USER_SQL` row, or DRF's refusal of it."""
    if row is None:
        raise ReaderNotAuthenticated(str(_("Invalid token.")))
    if not row[1]:
        raise ReaderNotAuthenticated(str(_("User inactive or deleted.")))
    return row[0], bool(row[2])


#: DRF's answer to a request with neither a session nor a token.
NO_CREDENTIALS = drf_exceptions.NotAuthenticated.default_detail


def request_user(request: HttpRequest) -> tuple[int, bool] | None:
    """The id and superuser flag of the user of ``request`` by its session or its
    ``Authorization: Token`` header, as DRF would pick them; ``None`` without either. A bad or
    inactive token raises :class:`ReaderNotAuthenticated` with DRF's message."""
    # DRF tries the session first and takes it when its user is active; a token is not read then.
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return user.pk, bool(user.is_superuser)
    key = token_key(get_authorization_header(request))
    if key is None:
        return None
    # One plain statement: the ORM's query building costs as much as a tile query. Where the
    # request reads from a replica, so does this: the read-only surfaces keep answering while a
    # failover replaces the primary.
    with reading().cursor() as cursor:
        cursor.execute(TOKEN_USER_SQL, [key])
        return token_user(cursor.fetchone())


def request_reader(request: HttpRequest) -> Reader:
    """The reader of ``request`` (:data:`~layers.protection.access.ANONYMOUS` without credentials); a bad
    or inactive token raises :class:`ReaderNotAuthenticated`. Built once per request: use
    ``request.reader`` (:class:`ReaderMiddleware`)."""
    found = request_user(request)
    return ANONYMOUS if found is None else reader_for_user(found[0], superuser=found[1])


class ReaderMiddleware:
    """Gives each request its ``reader``, built on first use (a request that never asks costs
    nothing). After Django's authentication middleware, so the session user is known."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.reader = SimpleLazyObject(lambda: request_reader(request))
        return self.get_response(request)


def reader_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wraps a plain view ``view(request, reader, *args, **kwargs)``: anonymous requests get the
    401 JSON error with ``WWW-Authenticate`` before the view runs."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            reader = request_reader(request)
            if reader.is_anonymous:
                raise ReaderNotAuthenticated(str(NO_CREDENTIALS))
        except ReaderNotAuthenticated as error:
            response = render_error(request, error)
            response["WWW-Authenticate"] = error.www_authenticate
            return response
        request.reader = reader
        return view(request, reader, *args, **kwargs)

    return wrapper


def roles_required(*roles: str, message: str) -> type[BasePermission]:
    """A DRF permission class: a signed-in reader holding one of ``roles`` (administrators and
    superusers hold them all), else 401 / 403 with ``message``."""

    class RolesRequired(BasePermission):
        def has_permission(self, request, view) -> bool:
            reader = request.reader
            return not reader.is_anonymous and reader.has_any_role(*roles)

    RolesRequired.message = message
    RolesRequired.__name__ = f"RolesRequired({', '.join(roles)})"
    return RolesRequired


class CsrfUnlessToken(BasePermission):
    """Anyone, but an unsafe request carried by the browser's cookies needs the page's CSRF token
    (``X-CSRFToken``), signed in or not: the residents' pages write without an account, and a
    form on another site must not make each visitor's browser send a report from its own address
    (which would also walk past the per-address limit). A request authenticated by a token is not
    sent by a browser on its own, so it needs none (as DRF's session authentication decides)."""

    def has_permission(self, request, view) -> bool:
        from rest_framework.authentication import CSRFCheck

        from .errors import PermissionDenied

        if request.method in ("GET", "HEAD", "OPTIONS") or isinstance(
            request.successful_authenticator, TokenAuthentication
        ):
            return True
        check = CSRFCheck(lambda _request: None)
        check.process_request(request._request)
        refused = check.process_view(request._request, None, (), {})
        if refused is not None:
            raise PermissionDenied(
                gettext("the page's security token is missing or expired: reload the page and try again"),
                reason="csrf",
            )
        return True
