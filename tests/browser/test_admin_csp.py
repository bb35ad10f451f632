"""The admin and its django-leaflet map widgets work under the strict Content-Security-Policy
(script-src 'self' plus the response's nonce): the page logs no CSP violation or other console
error, the map draws the geometry, and the editable widget's draw toolbar is there."""

from __future__ import annotations

import datetime as dt

import pytest

from layers.models import BoundaryVersion
from tests.worlds.factories import grid_tree, region_chain


@pytest.fixture
def admin_world(transactional_db, django_user_model):
    from layers.services.users import DEMO_PASSWORD

    grids = grid_tree(region_chain()["community"])
    version = BoundaryVersion.objects.create(
        subject="grid", code=grids["west"].code, level="small", boundary=grids["west"].boundary,
        valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2024, 1, 1), source="test",
    )  # fmt: skip
    django_user_model.objects.create_superuser("root", "root@example.org", DEMO_PASSWORD)
    return grids, version


def _admin_login(page, live_server) -> None:
    from layers.services.users import DEMO_PASSWORD

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url.endswith("/admin/")


def test_admin_map_widgets_work_under_the_csp(page, live_server, admin_world, screenshot):
    grids, version = admin_world
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    _admin_login(page, live_server)
    response = page.goto(f"{live_server.url}/admin/layers/grid/{grids['west'].pk}/change/")
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    # The widget ran: a Leaflet map with the grid's polygon and the draw toolbar of an editable field.
    page.wait_for_selector(".leaflet-container path.leaflet-interactive", state="attached")
    assert page.locator(".leaflet-draw-toolbar").count() >= 1
    screenshot(page, "admin-grid")
    page.goto(f"{live_server.url}/admin/layers/boundaryversion/{version.pk}/change/")
    page.wait_for_selector(".leaflet-container path.leaflet-interactive", state="attached")
    # Pages without a map, with the admin's own scripts (actions, filters, date hierarchy).
    for path in ("/admin/", "/admin/layers/grid/", "/admin/layers/auditentry/", "/admin/auth/user/add/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
    assert violations == []
