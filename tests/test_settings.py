"""Every project setting the code reads is defined (and so commented) in settings/base.py: the
test settings may override one, but must not be the only place it exists (a setting missing from
base made `manage.py verify_audit_log` fail outside the tests). A bad environment is reported
whole, one line per problem."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings import base

ROOT = Path(__file__).resolve().parents[1]
READ = re.compile(r"settings\.(MINQING_[A-Z0-9_]+)")


def test_every_setting_the_code_reads_is_defined_in_base():
    read = set()
    for package in ("layers", "mapserver", "importers", "basemaps", "scripts"):
        for path in (ROOT / package).rglob("*.py"):
            read |= set(READ.findall(path.read_text(encoding="utf-8")))
    assert len(read) > 30  # the scan finds the code's settings
    missing = sorted(name for name in read if not hasattr(base, name))
    assert missing == []


@pytest.mark.parametrize(
    ("environment", "problems"),
    [
        ({"MINQING_DJANGO_QUEUE": "abc"}, ["MINQING_DJANGO_QUEUE must be an integer, got 'abc'"]),
        ({"MINQING_EXPORT_KEEP_HOURS": "a day"}, ["MINQING_EXPORT_KEEP_HOURS must be a number, got 'a day'"]),
        ({"MINQING_RETRY_AFTER_SECONDS": "0"}, ["MINQING_RETRY_AFTER_SECONDS must be at least 1, got 0"]),
        ({"MINQING_DB_ROLE": "root"}, ["MINQING_DB_ROLE must be app or owner, got 'root'"]),
        (
            {"MINQING_CITY_BBOX": "103,36,x,37"},
            ["MINQING_CITY_BBOX must be lon_min,lat_min,lon_max,lat_max with min < max"],
        ),
        (
            {"MINQING_PHOTO_MAX_BYTES": "2000", "MINQING_REQUEST_MAX_BYTES": "1000"},
            ["MINQING_REQUEST_MAX_BYTES (1000) must be at least MINQING_PHOTO_MAX_BYTES (2000)"],
        ),
        # Several problems at once, in the order the settings read them.
        (
            {"MINQING_LOG_FORMAT": "xml", "MINQING_TILE_POOL_SIZE": "4.5", "MINQING_PUBLIC_MIN_COUNT": "1"},
            [
                "MINQING_LOG_FORMAT must be text or json, got 'xml'",
                "MINQING_TILE_POOL_SIZE must be an integer, got '4.5'",
                "MINQING_PUBLIC_MIN_COUNT must be at least 2, got 1",
            ],
        ),
    ],
)
def test_a_bad_environment_is_reported_whole(monkeypatch, environment, problems):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as raised:
        importlib.reload(base)
    assert str(raised.value).splitlines() == problems
    monkeypatch.undo()
    importlib.reload(base)  # the settings as the environment has them again
