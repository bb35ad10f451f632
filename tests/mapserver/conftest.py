"""The HTTP edge's tests run on the tiny city of :mod:`tests.worlds.city`."""

from __future__ import annotations

import pytest

from tests.worlds.city import City, tiny_city


@pytest.fixture
def city(db) -> City:
    return tiny_city()


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.org", "root-password")
    client.force_login(user)
    return client
