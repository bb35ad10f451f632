"""GET /exports/grid/<code>.html: a self-contained folium page of one grid or street / community
of the tiny demo city, with its counts; nothing loaded from the network; 404 and 401."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db.models import Count

from basemaps import printmap
from layers.models import Dwelling, Event, Grid, Person, Region, Unit
from layers.protection.access import SYSTEM
from layers.services.events import OPEN_STATUSES
from layers.taxonomy import taxonomy_seed

pytestmark = pytest.mark.django_db

#: Any <script src=…> or <link href=…> naming a network address.
REMOTE_ASSET = re.compile(r"<(?:script[^>]*\bsrc|link[^>]*\bhref)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)


@pytest.fixture
def tiny_city():
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()
    call_command(
        "generate_demo_events", "--days", "60", "--seed", "1", "--end", "2025-06-01T00:00:00+08:00", verbosity=0
    )


def _busiest_small_grid() -> Grid:
    """The small grid with the most open events (so that the page has points of each kind)."""
    grid_id = (
        Event.objects.filter(status__in=OPEN_STATUSES, grid__isnull=False)
        .values("grid_id")
        .order_by()
        .annotate(n=Count("id"))
        .order_by("-n", "grid_id")[0]["grid_id"]
    )
    return Grid.objects.get(pk=grid_id)


def _download(client, code: str) -> str:
    response = client.get(f"/exports/grid/{code}.html")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{code}.html"'
    return response.content.decode()


def test_small_grid_page_has_its_code_counts_and_points(superuser_client, tiny_city):
    grid = _busiest_small_grid()
    page = _download(superuser_client, grid.code)
    counts = {
        "residents": Person.objects.filter(grid=grid).count(),
        "dwellings": Dwelling.objects.filter(grid=grid).count(),
        "units": Unit.objects.filter(grid=grid).count(),
        "open_events": Event.objects.filter(grid=grid, status__in=OPEN_STATUSES).count(),
    }
    assert counts["residents"] > 0 and counts["open_events"] > 0
    assert grid.code in page and grid.name in page
    for label, key in (
        ("实有人口 residents", "residents"),
        ("户数 dwellings", "dwellings"),
        ("实有单位 units", "units"),
        ("未办结事件 open events", "open_events"),
    ):
        assert f"<tr><th>{label}</th><td>{counts[key]:,}</td></tr>" in page
    # Leaflet inlined, its images as data URIs, and the points drawn as circle markers.
    assert "L.map(" in page and "leaflet-container" in page and "data:image/png;base64," in page
    assert page.count('"type": "Point"') + page.count('"type":"Point"') >= counts["open_events"]
    # No personal data: no names of residents, and events carry no description.
    assert "description" not in page
    assert not Person.objects.filter(grid=grid, name__in=re.findall(r"[\u4e00-\u9fff]{2,3}", page)).exists()


def test_no_asset_is_loaded_from_the_network(superuser_client, tiny_city):
    page = _download(superuser_client, _busiest_small_grid().code)
    assert "<script" in page and REMOTE_ASSET.search(page) is None
    assert re.search(r"url\((?:['\"])?(?:https?:)?//", page) is None
    # The pattern itself does catch folium's CDN links (the host is assembled so that no CDN
    # address stands literally in the repository).
    cdn = "https://" + "cdn.jsdelivr.net"
    assert REMOTE_ASSET.search(f'<script src="{cdn}/npm/leaflet@1.9.3/dist/leaflet.js"></script>')
    assert REMOTE_ASSET.search('<link rel="stylesheet" href="//cdn.example.org/x.css"/>')


@pytest.mark.parametrize("level", ["large", "medium"])
def test_a_larger_grid_draws_its_children(superuser_client, tiny_city, level):
    grid = Grid.objects.filter(level=level).order_by("code").first()
    page = _download(superuser_client, grid.code)
    for child in Grid.objects.filter(parent=grid):
        assert child.code in page
    residents = Person.objects.filter(**{f"grid_{level}": grid}).count()
    assert f"<tr><th>实有人口 residents</th><td>{residents:,}</td></tr>" in page


@pytest.mark.parametrize("level", ["community", "street"])
def test_a_region_by_its_12_digit_code(superuser_client, tiny_city, level):
    region = Region.objects.filter(level=level).order_by("code").first()
    page = _download(superuser_client, region.code)
    units = Unit.objects.filter(**{level: region}).count()
    assert f"<tr><th>实有单位 units</th><td>{units:,}</td></tr>" in page


def test_points_are_capped(tiny_city, monkeypatch):
    monkeypatch.setattr(printmap, "MAX_POINTS", 3)
    area = printmap.print_area_get(code=Region.objects.filter(level="street").order_by("code").first().code)
    points = printmap.print_points(area=area, layer_id="units", reader=SYSTEM)
    assert len(points["features"]) == 3
    assert set(points["features"][0]["properties"]) == {"name", "kind"}


SMALL = "620102001001010101"


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/exports/grid/620102999999.html", {}, 404, "no grid, street or community with code '620102999999'"),
        ("/exports/grid/no-such-grid.html", {}, 404, "no grid, street or community with code 'no-such-grid'"),
        # A district is too large for a print map: not a grid, street or community.
        ("/exports/grid/620102000000.html", {}, 404, "no grid, street or community with code '620102000000'"),
        (f"/exports/grid/{SMALL}.html", {"zoom": "3"}, 400, "zoom: is not a parameter here; this export takes none"),
    ],
)
def test_bad_requests(superuser_client, tiny_city, path, query, status, message):
    assert Grid.objects.filter(code=SMALL).exists() and Region.objects.filter(code="620102000000").exists()
    response = superuser_client.get(path, query)
    assert response.status_code == status
    assert response.json()["error"]["message"] == message


def test_anonymous_is_401(client, db):
    assert client.get(f"/exports/grid/{SMALL}.html").status_code == 401


def test_names_from_imported_files_stay_text_in_the_tooltips():
    """A unit or grid name carrying markup is escaped before folium puts it into the page."""
    from basemaps.printmap import _escaped

    assert _escaped({"name": '<img src=x onerror="alert(1)">', "count": 3}) == {
        "name": "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;",
        "count": 3,
    }
