"""Browser tests: the pages in Debian's headless chromium, driven by Playwright (sync API).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``MINQING_CHROMIUM``
overrides the path). Pages are served by pytest-django's ``live_server`` (a threaded server on
127.0.0.1 with the static files), so every browser test runs on a transactional test database:
build the data it needs inside the test (``tests/worlds/factories.py``, ``tests/worlds/events.py``).

Fixtures
- ``browser``: one chromium per session.
- ``open_page(width=1280, height=800, locale="zh-CN")``: a fresh context and page of that size,
  watched by a :class:`Problems` recorder; ``page`` is ``open_page()`` at the default size.
  At teardown the test fails if any page logged a console error or an uncaught exception, a
  request failed or answered ≥ 400, or a request went anywhere but 127.0.0.1 (the browser is
  also started with host rules that resolve no other name, so nothing can leave the machine).
  ``problems.allow("/api/…")`` accepts an expected failure whose text contains that string.
- ``login(page, username, password=DEMO_PASSWORD, next="/")``: logs in through the login form.
- ``role_user(role)``: creates (on the test database) a user named after the role with the demo
  password and that role's group; ``demo_users()`` creates all five demo users.
- ``screenshot(page, name)``: writes ``var/screenshots/<name>-<w>x<h>.png`` and returns its path.
- ``axe(page)``: runs axe-core (npm, node_modules/axe-core; injected by the test, never a CDN) on
  the page and returns its serious and critical violations, one line each (``[]`` when clean).
- ``network(page, kbps=400, latency_ms=400)``: Chromium's network emulation for the page (a
  DevTools session through Playwright); ``network(page, None)`` lifts it.

Every test here carries the ``browser`` marker (``pytest -m browser`` runs only these,
``-m "not browser"`` leaves them out); ``make test`` runs them with the rest.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in the test's thread; Django would then refuse ORM
# calls from that thread as "async context". The test body's ORM calls are ordinary sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("MINQING_CHROMIUM", "/usr/bin/chromium")
#: axe-core from npm (package.json): the accessibility rules the pages are checked against.
AXE = Path(settings.MINQING_NODE_MODULES) / "axe-core" / "axe.min.js"
#: Impacts that fail a page (axe's scale: minor, moderate, serious, critical).
AXE_FAILING = ("serious", "critical")
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
#: Schemes that never touch the network.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-extension", "chrome", "devtools"}
#: Failures that are not errors: the page itself cancelled the request (Leaflet drops the tiles
#: of a zoom level it left; navigation cancels pending fetches).
BENIGN_FAILURES = ("net::ERR_ABORTED",)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the pages in headless chromium (tests/browser)")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class Problems:
    """What went wrong in the pages of one test."""

    entries: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, text: str) -> None:
        """Accept problems whose description contains ``text`` (an expected 403, say)."""
        self.allowed.append(text)

    def add(self, kind: str, text: str) -> None:
        self.entries.append(f"{kind}: {text}")

    def unexpected(self) -> list[str]:
        return [entry for entry in self.entries if not any(text in entry for text in self.allowed)]

    def assert_clean(self) -> None:
        found = self.unexpected()
        assert not found, "the page reported problems:\n" + "\n".join(found)


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOCAL_HOSTS


def watch(context, problems: Problems) -> None:
    """Record console errors, uncaught exceptions, failed and non-local requests of a context."""

    def on_console(message):
        if message.type == "error":
            location = message.location or {}
            problems.add(
                "console error", f"{message.text} ({location.get('url', '')}:{location.get('lineNumber', '')})"
            )

    def on_request(request):
        if not _is_local(request.url):
            problems.add("request off the machine", request.url)

    def on_failed(request):
        failure = request.failure or ""
        if not any(benign in failure for benign in BENIGN_FAILURES):
            problems.add("request failed", f"{request.method} {request.url}: {failure}")

    def on_response(response):
        if response.status >= 400:
            problems.add("HTTP error", f"{response.status} {response.request.method} {response.url}")

    context.on("console", on_console)
    context.on("weberror", lambda error: problems.add("uncaught exception", str(error.error)))
    context.on("request", on_request)
    context.on("requestfailed", on_failed)
    context.on("response", on_response)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium (or set MINQING_CHROMIUM)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                # As root chromium refuses to start with its sandbox.
                "--no-sandbox",
                # Containers often have a small /dev/shm; chromium then crashes on big pages.
                "--disable-dev-shm-usage",
                # No name but localhost resolves: nothing the page asks for can leave the machine.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
            ],
        )
        yield chromium
        chromium.close()


class _InFlight:
    """How many requests the live server is answering now (from the call to the close of the
    answer's body): a request between two statements is busy though the database sees no query."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def __call__(self, step: int) -> None:
        with self._lock:
            self._count += step

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


IN_FLIGHT = _InFlight()


class _ClosedWhenDone:
    """A WSGI answer's body that counts its request done when the server closes it."""

    def __init__(self, body) -> None:
        self._body = body

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            IN_FLIGHT(-1)


def _through_django(application):
    """The live server's "static handler": none. Static files then reach Django's middleware,
    where WhiteNoise answers them from STATIC_ROOT with their gzip copies, as in production
    (pytest-django's default serves the sources, uncompressed, beside the middleware). Requests
    are counted while they are answered (:data:`IN_FLIGHT`, read by :func:`_server_settled`)."""

    def counted(environ, start_response):
        IN_FLIGHT(+1)
        try:
            body = application(environ, start_response)
        except BaseException:
            IN_FLIGHT(-1)
            raise
        return _ClosedWhenDone(body)

    return counted


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server, serving static files as production does: collectstatic first
    (only changed files are copied and compressed), then everything through the middleware."""
    from django.core.management import call_command
    from pytest_django.live_server_helper import LiveServer

    call_command("collectstatic", interactive=False, verbosity=0)
    server = LiveServer("localhost", start=False)
    server.thread.static_handler = _through_django
    server.start()
    yield server
    server.stop()


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def open_page(browser, problems, live_server) -> Iterator[Callable]:
    """``open_page(width=1280, height=800, locale="zh-CN")`` → a Playwright Page."""
    contexts = []

    def make(width: int = 1280, height: int = 800, *, locale: str = "zh-CN", **options):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            timezone_id="Asia/Shanghai",
            base_url=live_server.url,
            **options,
        )
        watch(context, problems)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()
    _server_settled()
    found = problems.unexpected()
    if found:
        pytest.fail("the page reported problems:\n" + "\n".join(found), pytrace=False)


def _server_settled(seconds: float = 10.0) -> None:
    """Wait until the live server answers no request and runs no statement on the test database:
    a request the closed page left behind (a tile, a poll) must not race the flush that ends the
    test (a TRUNCATE of every table and a multi-table SELECT lock tables in different orders)."""
    from django.db import connection

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if IN_FLIGHT.count:
            time.sleep(0.05)
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state NOT IN ('idle')"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.fixture
def page(open_page):
    return open_page()


@pytest.fixture
def role_user(transactional_db) -> Callable:
    """``role_user("command_center")`` → a user named ``command_center`` with the demo password."""
    from django.contrib.auth import get_user_model

    from layers.services.users import DEMO_PASSWORD, Role, roles_ensure

    def make(role: str, *, username: str | None = None):
        groups = roles_ensure()
        user, _ = get_user_model().objects.get_or_create(username=username or role)
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.add(groups[Role(role)])
        return user

    return make


@pytest.fixture
def demo_users(transactional_db) -> Callable:
    """``demo_users()`` → the demo logins (admin, command, analyst, steward, gridworker); the grid
    worker gets the first small grid, so create the grids first."""
    from layers.services.users import demo_users_ensure

    return demo_users_ensure


@pytest.fixture
def login(live_server) -> Callable:
    """``login(page, "command", next="/wall/")``: log in through /accounts/login/ and land on next."""
    from layers.services.users import DEMO_PASSWORD

    def log_in(page, username: str, password: str = DEMO_PASSWORD, *, next: str = "/"):
        page.goto(f"{live_server.url}/accounts/login/?next={next}")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")
        path = urlsplit(page.url).path
        assert path == urlsplit(next).path, f"login as {username} landed on {page.url}, not {next}"
        return page

    return log_in


@pytest.fixture
def screenshot() -> Callable:
    """``screenshot(page, "wall")`` → var/screenshots/wall-1920x1080.png (the viewport)."""

    def take(page, name: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_-]+", name):
            raise ValueError(f"screenshot name {name!r}: use a-z, 0-9, - and _")
        size = page.viewport_size
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"
        page.screenshot(path=str(path))
        return path

    return take


@pytest.fixture
def axe() -> Callable:
    """``axe(page)`` → the page's serious and critical axe-core violations, one line each."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: npm ci installs axe-core (package.json)")
    source = AXE.read_text(encoding="utf-8")

    def check(page) -> list[str]:
        # Evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does
        # not govern; the page itself never loads axe.
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(source)
        # Colours are checked as they settle: a fade in progress (a KPI that just changed, a new
        # feed item) would be judged half transparent.
        page.evaluate(
            """() => Promise.race([
                Promise.all(document.getAnimations().map(a => a.finished.catch(() => null))),
                new Promise(resolve => setTimeout(resolve, 8000))])"""
        )
        results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        return [
            f"{violation['id']} ({violation['impact']}): {violation['help']} — "
            + "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            for violation in results["violations"]
            if violation["impact"] in AXE_FAILING
        ]

    return check


@pytest.fixture
def network() -> Callable:
    """``network(page, kbps=400, latency_ms=400)``: throttle the page's network the way Chromium's
    DevTools do (both directions, latency added per request); ``network(page, None)`` lifts it."""
    sessions = {}

    def emulate(page, kbps: float | None = 400, latency_ms: float = 400):
        session = sessions.get(id(page)) or page.context.new_cdp_session(page)
        sessions[id(page)] = session
        session.send("Network.enable")
        if kbps is None:
            session.send(
                "Network.emulateNetworkConditions",
                {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            )
            return session
        rate = kbps * 1000 / 8  # bytes per second
        session.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": latency_ms, "downloadThroughput": rate, "uploadThroughput": rate},
        )
        return session

    return emulate
