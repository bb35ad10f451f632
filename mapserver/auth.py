"""Who is asking, for plain (non-DRF) Django views on hot paths such as vector tiles.

DRF's ``APIView`` costs about a millisecond per request in authentication classes, content
negotiation and response wrapping; a tile server answering thousands of requests a second cannot
spend that. :func:`request_reader` gives the same answer as the DRF settings of this project
(``SessionAuthentication`` then ``TokenAuthentication``, ``IsAuthenticated``): the same user, the
same 401 bodies (DRF's own messages) and the ``WWW-Authenticate`` header.

The reader's role set (their group names) is remembered in this process for
``MINQING_READER_ROLES_SECONDS`` (default 5 s) per user id: adding a user to a group or removing
them takes up to that long to reach the surfaces that use this helper. The superuser flag and the
user's activity are read on every request (they come with the user row), so a disabled account
or a revoked token is refused at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from layers.memo import Remembered
from layers.scope import SCOPE_SQL, SCOPES, Scope, scope_from_row

from .errors import NotAuthenticated, render_error


@dataclass(frozen=True)
class Reader:
    """An authenticated reader: their user id, group names, whether they are a superuser, and
    their data scope (:mod:`layers.scope`)."""

    user_id: int
    roles: tuple[str, ...]
    superuser: bool
    scope: Scope

    @property
    def roles_key(self) -> str:
        """The role set as cache keys use it: ``*`` for a superuser, else the sorted roles."""
        return "*" if self.superuser else ",".join(self.roles)


class ReaderNotAuthenticated(NotAuthenticated):
    """401 carrying the header DRF sends with it (the client learns it may send a token)."""

    www_authenticate = 'Token realm="api"'


#: The reader's group names, sorted (psycopg placeholders).
ROLES_SQL = (
    "SELECT coalesce(array_agg(g.name ORDER BY g.name), '{}') FROM auth_group g "
    "JOIN auth_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = %s"
)
#: A token's user: id, is_active, is_superuser (psycopg placeholders).
TOKEN_USER_SQL = (
    f"SELECT u.id, u.is_active, u.is_superuser FROM {Token._meta.db_table} k "
    f"JOIN {get_user_model()._meta.db_table} u ON u.id = k.user_id WHERE k.key = %s"
)
#: Role sets per (database, user id), shared by the Django views and the tile server.
ROLES: Remembered[tuple[str, ...]] = Remembered(lambda: settings.MINQING_READER_ROLES_SECONDS)


def reader_roles(user_id: int) -> tuple[str, ...]:
    """The user's group names, sorted; remembered per user id for MINQING_READER_ROLES_SECONDS."""
    key = (connection.settings_dict["NAME"], user_id)
    roles = ROLES.get(key)
    if roles is None:
        with connection.cursor() as cursor:
            cursor.execute(ROLES_SQL, [user_id])
            roles = tuple(cursor.fetchone()[0])
        ROLES.put(key, roles)
    return roles


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


def request_user(request: HttpRequest) -> tuple[int, bool]:
    """The id and superuser flag of the user of ``request`` by its session or its
    ``Authorization: Token`` header, as DRF would pick them; raises
    :class:`ReaderNotAuthenticated` otherwise."""
    # DRF tries the session first and takes it when its user is active; a token is not read then.
    user = getattr(request, "user", None)
    if user is not None and user.is_active:
        return user.pk, bool(user.is_superuser)
    key = token_key(get_authorization_header(request))
    if key is None:
        raise ReaderNotAuthenticated(str(NO_CREDENTIALS))
    # One plain statement: the ORM's query building costs as much as a tile query.
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_USER_SQL, [key])
        return token_user(cursor.fetchone())


def request_reader(request: HttpRequest) -> Reader:
    """The reader of ``request`` with their (briefly remembered) role set and data scope; 401
    when anonymous."""
    user_id, superuser = request_user(request)
    key = (connection.settings_dict["NAME"], user_id)
    roles, scope = ROLES.get(key), SCOPES.get(key)
    if roles is None or scope is None:
        # One statement answers both (the scope depends on the roles anyway).
        with connection.cursor() as cursor:
            cursor.execute(SCOPE_SQL, [user_id])
            row = cursor.fetchone()
        roles, scope = tuple(row[1]), scope_from_row(row)
        ROLES.put(key, roles)
        SCOPES.put(key, scope)
    return Reader(user_id=user_id, roles=roles, superuser=superuser, scope=scope)


def reader_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wraps a plain view ``view(request, reader, *args, **kwargs)``: anonymous requests get the
    401 JSON error with ``WWW-Authenticate`` before the view runs."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            reader = request_reader(request)
        except ReaderNotAuthenticated as error:
            response = render_error(request, error)
            response["WWW-Authenticate"] = error.www_authenticate
            return response
        return view(request, reader, *args, **kwargs)

    return wrapper
