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
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from .errors import NotAuthenticated, render_error


@dataclass(frozen=True)
class Reader:
    """An authenticated reader: their user id, group names and whether they are a superuser."""

    user_id: int
    roles: tuple[str, ...]
    superuser: bool

    @property
    def scope(self) -> str:
        """The role set as cache keys use it: ``*`` for a superuser, else the sorted roles."""
        return "*" if self.superuser else ",".join(self.roles)


class ReaderNotAuthenticated(NotAuthenticated):
    """401 carrying the header DRF sends with it (the client learns it may send a token)."""

    www_authenticate = 'Token realm="api"'


_roles: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}


def reader_roles(user_id: int) -> tuple[str, ...]:
    """The user's group names, sorted; remembered per user id for MINQING_READER_ROLES_SECONDS."""
    seconds = settings.MINQING_READER_ROLES_SECONDS
    key = (connection.settings_dict["NAME"], user_id)
    now = time.monotonic()
    remembered = _roles.get(key)
    if seconds > 0 and remembered and now - remembered[0] < seconds:
        return remembered[1]
    roles = tuple(sorted(Group.objects.filter(user__id=user_id).values_list("name", flat=True)))
    if seconds > 0:
        _roles[key] = (now, roles)
    return roles


class _TokenLookup(TokenAuthentication):
    """DRF's token authentication (its header parsing and its messages) with the lookup as one
    plain statement: the ORM's query building and model instances cost as much as a tile query.
    Answers ``(user id, is superuser)``; the token is still read on every request."""

    def authenticate_credentials(self, key: str) -> tuple[tuple[int, bool], None]:
        token, user = Token._meta.db_table, get_user_model()._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT u.id, u.is_active, u.is_superuser FROM {token} k JOIN {user} u ON u.id = k.user_id "
                "WHERE k.key = %s",
                [key],
            )
            row = cursor.fetchone()
        if row is None:
            raise drf_exceptions.AuthenticationFailed(_("Invalid token."))
        if not row[1]:
            raise drf_exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (row[0], bool(row[2])), None


def request_user(request: HttpRequest) -> tuple[int, bool]:
    """The id and superuser flag of the user of ``request`` by its session or its
    ``Authorization: Token`` header, as DRF would pick them; raises
    :class:`ReaderNotAuthenticated` otherwise."""
    # DRF tries the session first and takes it when its user is active; a token is not read then.
    user = getattr(request, "user", None)
    if user is not None and user.is_active:
        return user.pk, bool(user.is_superuser)
    auth = get_authorization_header(request).split()
    try:
        found = _TokenLookup().authenticate(request) if auth else None
    except drf_exceptions.AuthenticationFailed as failure:
        raise ReaderNotAuthenticated(str(failure.detail)) from None
    if found is None:
        raise ReaderNotAuthenticated(str(drf_exceptions.NotAuthenticated.default_detail))
    return found[0]


def request_reader(request: HttpRequest) -> Reader:
    """The reader of ``request`` with their (briefly remembered) role set; 401 when anonymous."""
    user_id, superuser = request_user(request)
    return Reader(user_id=user_id, roles=reader_roles(user_id), superuser=superuser)


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
