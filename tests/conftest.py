"""Suite-wide rules: a skipped test fails the run; tests that read ../shared/data are left out
(with one notice) on a clone that lacks it; the heavy tests carry the ``heavy`` marker, which
``make test-fast`` leaves out."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.utils import translation


def shared_data_path(*parts: str) -> Path:
    return Path(settings.MINQING_SHARED_DATA, *parts)


#: Tests that drive a browser, start the production stack, or put a live server under load,
#: faults, fuzzing or outside clients: most of the suite's time, left out of ``make test-fast``
#: (paths from the repository root; a folder takes every file under it).
HEAVY = (
    "tests/browser/",
    "tests/operations/",
    "tests/mapserver/test_intake_load.py",
    "tests/mapserver/test_intake_fault.py",
    "tests/mapserver/test_fuzz_api.py",
    "tests/mapserver/test_ogc_clients.py",
)
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.relative_to(ROOT).as_posix().startswith(HEAVY):
            item.add_marker(pytest.mark.heavy)
    if Path(settings.MINQING_SHARED_DATA).is_dir():
        return
    left_out = [item for item in items if item.get_closest_marker("shared_data")]
    if left_out:
        items[:] = [item for item in items if not item.get_closest_marker("shared_data")]
        config.hook.pytest_deselected(items=left_out)
        print(f"\nnotice: {settings.MINQING_SHARED_DATA} is absent; {len(left_out)} real-data tests left out")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        session.exitstatus = 1
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped; a skipped test fails the run", red=True)


@pytest.fixture(autouse=True)
def english_when_called_directly():
    """Services and selectors called by a test answer in English, the msgids (messages and
    labels follow the active language; a request activates its reader's own). A test of the
    Chinese text activates zh-hans itself."""
    with translation.override("en"):
        yield


@pytest.fixture
def client():
    """Django's test client, reading in English (``Accept-Language: en``): API messages and coded
    values follow the reader's language, Chinese by default. A test of the Chinese answers sends
    ``HTTP_ACCEPT_LANGUAGE="zh-hans"`` (or uses ``chinese_client``)."""
    from django.test import Client

    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def chinese_client():
    """A test client with no language of its own: the default, Chinese."""
    from django.test import Client

    return Client()


@pytest.fixture(autouse=True)
def caches_emptied():
    """Every test starts with empty caches. Cached answers are keyed by the data version, which
    a rolled-back test transaction never advances, so one test's answer could reach the next."""
    for cache in caches.all():
        cache.clear()


@pytest.fixture
def shared_data():
    return shared_data_path
