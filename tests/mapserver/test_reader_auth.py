"""mapserver.auth: the plain-view reader lookup answers as the DRF views do, and its role set is
remembered only as long as MINQING_READER_ROLES_SECONDS says."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from layers.protection.access import reader_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "header",
    [None, "Token", "Token a b", "Token no-such-token", "Token {GOOD}", "Token {INACTIVE}", "Bearer x"],
)
def test_token_and_anonymous_answers_match_the_drf_views(client, django_user_model, header):
    """The tile (plain view) and its TileJSON (DRF view) agree on status, body and header."""
    good = django_user_model.objects.create_user("good")
    inactive = django_user_model.objects.create_user("inactive", is_active=False)
    extra = {}
    if header:
        keys = {"GOOD": Token.objects.create(user=good).key, "INACTIVE": Token.objects.create(user=inactive).key}
        extra["HTTP_AUTHORIZATION"] = header.format(**keys)
    drf = client.get("/tiles/grids_small.json", **extra)
    ours = client.get("/tiles/grids_small/2/0/0.pbf", **extra)
    assert ours.status_code == drf.status_code == (200 if header == "Token {GOOD}" else 401)
    if drf.status_code == 401:
        assert ours.json() == drf.json()
        assert ours["WWW-Authenticate"] == drf["WWW-Authenticate"] == 'Token realm="api"'


def test_roles_are_remembered_for_the_configured_seconds(django_user_model, settings):
    user = django_user_model.objects.create_user("reader")
    settings.MINQING_READER_ROLES_SECONDS = 60.0
    assert reader_of(user).roles == ()
    user.groups.add(Group.objects.create(name="analyst"))
    assert reader_of(user).roles == ()  # stale within the window, as documented
    settings.MINQING_READER_ROLES_SECONDS = 0.0
    assert reader_of(user).roles == ("analyst",)


def test_a_superuser_flag_change_counts_at_once(django_user_model, settings):
    """The flag comes with the user row on every request; the remembered access follows it."""
    user = django_user_model.objects.create_user("rising")
    settings.MINQING_READER_ROLES_SECONDS = 60.0
    assert reader_of(user).superuser is False
    user.is_superuser = True
    user.save()
    assert reader_of(user).superuser is True
    assert reader_of(user).scope.is_city
