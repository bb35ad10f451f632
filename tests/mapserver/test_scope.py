"""Data scope at the HTTP edge, path by path: a grid worker (WEST) asking for the rows of the
neighbouring grid (EAST) or of the next street (NORTH) gets nothing of them (a 404, or an answer
without them), while their own grid's rows are there; street staff of street A read WEST and
EAST, never NORTH; the city scope (an analyst) reads all three; a user without a role reads
nothing. The world is tests/worlds/scope.py."""

from __future__ import annotations

import csv
import io
import json
import math

import mapbox_vector_tile
import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

import pyogrio
from rasterio.io import MemoryFile

from basemaps.tiles import lonlat_to_tile
from layers.geocoding.index import address_index_reset
from layers.models import Event
from layers.selectors import heat
from tests.mapserver.test_exports import download
from tests.worlds.scope import IN_EAST, IN_NORTH, IN_WEST, POINTS, scope_world

pytestmark = pytest.mark.django_db

ALL = {"west", "east", "north"}
#: Which small grids each reader sees.
SEES = {"gridworker": {"west"}, "street_a": {"west", "east"}, "analyst": ALL, "nobody": set()}
READERS = list(SEES)


@pytest.fixture
def world():
    address_index_reset()
    heat._cache.clear()
    return scope_world()


@pytest.fixture
def as_reader(client, world):
    def login(name: str):
        client.force_login(world.users[name])
        return client

    return login


def names_of(world, kind: str, ids) -> set[str]:
    """The small grids ('west', 'east', 'north') whose rows of ``kind`` have these ids."""
    by_id = {world.rows[grid][kind].pk: grid for grid in ALL}
    if kind == "event":
        by_id |= {world.rows[grid]["dispute"].pk: grid for grid in ALL}
    return {by_id[int(i)] for i in ids}


# --- JSON API: events -------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_event_list_holds_only_the_scope(as_reader, world, reader):
    body = as_reader(reader).get("/api/events").json()
    assert names_of(world, "event", [e["id"] for e in body["results"]]) == SEES[reader]
    # A filter naming another area finds nothing there, rather than an error telling it apart.
    north = as_reader(reader).get("/api/events", {"grid": world.grids["north"].code}).json()
    assert bool(north["results"]) == ("north" in SEES[reader])


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("grid", sorted(ALL))
def test_event_detail_outside_the_scope_is_404(as_reader, world, reader, grid):
    event = world.rows[grid]["event"]
    response = as_reader(reader).get(f"/api/events/{event.pk}")
    if grid in SEES[reader]:
        assert response.status_code == 200
        assert response.json()["areas"]["grid_small"]["code"] == world.grids[grid].code
    else:
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "code": "not_found",
                "message": f"No event with id {event.pk}.",
                "parameter": "event_id",
            }
        }


def test_grid_worker_cannot_act_on_the_neighbours_event(as_reader, world):
    client = as_reader("gridworker")
    east, west = world.rows["east"]["event"], world.rows["west"]["event"]
    response = client.post(f"/api/events/{east.pk}/actions", {"action": "accept"}, content_type="application/json")
    assert response.status_code == 404
    assert Event.objects.get(pk=east.pk).status == east.status == "assigned"
    done = client.post(f"/api/events/{west.pk}/actions", {"action": "accept"}, content_type="application/json")
    assert (done.status_code, done.json()["status"]) == (200, "in_progress")


def test_a_retried_report_never_opens_someone_elses_event(as_reader, world):
    """The external id of another grid's report (same channel) answers 409 with nothing of it;
    the worker's own report outside their grid is theirs to read back on a retry."""
    client = as_reader("gridworker")
    east = world.rows["east"]["event"]
    body = {
        "channel": east.channel,
        "external_id": east.external_id,
        "category": "hazard.fire",
        "description": "重复上报",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
    }
    response = client.post("/api/events", body, content_type="application/json")
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "conflict",
            "message": "external_id: this channel's external_id belongs to another report",
            "parameter": "external_id",
        }
    }
    own = body | {"external_id": "GW-EAST-1", "location": {"lon": IN_EAST[0], "lat": IN_EAST[1]}}
    first = client.post("/api/events", own, content_type="application/json")
    again = client.post("/api/events", own, content_type="application/json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["areas"]["grid_small"]["code"] == world.grids["east"].code
    # Reported by them, but in the neighbour's grid: not theirs to read afterwards.
    assert client.get(f"/api/events/{first.json()['id']}").status_code == 404


# --- Open311 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_open311_requests_hold_only_the_scope(as_reader, world, reader):
    client = as_reader(reader)
    listed = client.get("/open311/v2/requests.json").json()
    assert names_of(world, "event", [r["service_request_id"] for r in listed]) == SEES[reader]
    every = ",".join(str(world.rows[g][k].pk) for g in ALL for k in ("event", "dispute"))
    asked = client.get("/open311/v2/requests.json", {"service_request_id": every}).json()
    assert names_of(world, "event", [r["service_request_id"] for r in asked]) == SEES[reader]
    north = world.rows["north"]["event"].pk
    one = client.get(f"/open311/v2/requests/{north}.json")
    if "north" in SEES[reader]:
        assert one.status_code == 200
    else:
        assert one.status_code == 404
        assert one.json() == [{"code": 404, "description": f"service_request_id: no service request {north}"}]


def test_open311_retry_of_another_grids_ticket_is_409(as_reader, world):
    east = world.rows["east"]["event"]
    Event.objects.filter(pk=east.pk).update(channel="app")
    response = as_reader("gridworker").post(
        "/open311/v2/requests.json",
        f"service_code=hazard.fire&lat={IN_WEST[1]}&long={IN_WEST[0]}&service_request_id={east.external_id}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 409
    assert response.json() == [
        {
            "code": 409,
            "description": "service_request_id: this ticket id belongs to another request",
        }
    ]


def test_open311_address_id_of_another_grid_is_unknown(as_reader, world):
    client = as_reader("gridworker")

    def post(code: str):
        return client.post(
            "/open311/v2/requests.json",
            f"service_code=hazard.fire&address_id={code}",
            content_type="application/x-www-form-urlencoded",
        )

    refused = post("A-east")
    assert refused.status_code == 400
    assert refused.json() == [{"code": 400, "description": "address_id: unknown standard address 'A-east'"}]
    assert post("A-west").status_code == 200


# --- OGC API Features -------------------------------------------------------------------------

#: Catalog layers of registry rows and events, and the world's row kind each holds.
LAYERS = {"addresses": "address", "units": "unit", "buildings": "building", "compounds": "compound", "events": "event"}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_ogc_items_hold_only_the_scope(as_reader, world, reader, layer):
    items = as_reader(reader).get(f"/ogc/collections/{layer}/items").json()
    assert names_of(world, LAYERS[layer], [f["id"] for f in items["features"]]) == SEES[reader]


@pytest.mark.parametrize("reader", READERS)
def test_ogc_grid_statistics_hold_only_the_scopes_grids_and_residents(as_reader, world, reader):
    items = as_reader(reader).get("/ogc/collections/grid_stats/items").json()
    residents = {f["properties"]["code"]: f["properties"]["residents"] for f in items["features"]}
    assert residents == {world.grids[grid].code: 1 for grid in SEES[reader]}


@pytest.mark.parametrize("layer", list(LAYERS))
def test_ogc_item_of_the_neighbouring_grid_is_404(as_reader, world, layer):
    client = as_reader("gridworker")
    east = world.rows["east"][LAYERS[layer]].pk
    response = client.get(f"/ogc/collections/{layer}/items/{east}")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"collection {layer!r} has no item '{east}'"
    assert client.get(f"/ogc/collections/{layer}/items/{world.rows['west'][LAYERS[layer]].pk}").status_code == 200


def test_ogc_extent_is_the_scopes_and_not_cached_across_scopes(as_reader, world):
    """The analyst asks first (the extent is cached), then the worker: theirs is their grid's."""
    city = as_reader("analyst").get("/ogc/collections/addresses").json()["extent"]["spatial"]["bbox"][0]
    west = as_reader("gridworker").get("/ogc/collections/addresses").json()["extent"]["spatial"]["bbox"][0]
    assert city[3] == pytest.approx(IN_NORTH[1])
    assert west == pytest.approx([IN_WEST[0], IN_WEST[1], IN_WEST[0], IN_WEST[1]])


def test_grid_outlines_are_reference_data_for_everyone(as_reader, world):
    items = as_reader("gridworker").get("/ogc/collections/grids_small/items").json()
    assert {f["properties"]["code"] for f in items["features"]} == {world.grids[g].code for g in ALL}


# --- vector tiles -----------------------------------------------------------------------------


def tile_ids(client, layer: str, z: int = 16) -> set[int]:
    """Feature ids of ``layer`` in the tiles that hold the three grids' points."""
    ids: set[int] = set()
    for x, y in {lonlat_to_tile(*point, z) for point in POINTS.values()}:
        response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf")
        assert response.status_code == 200
        for decoded in mapbox_vector_tile.decode(response.content).values():
            ids |= {feature["id"] for feature in decoded["features"]}
    return ids


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_tiles_hold_only_the_scope(as_reader, world, reader, layer):
    assert names_of(world, LAYERS[layer], tile_ids(as_reader(reader), layer)) == SEES[reader]


def test_tile_etags_differ_by_scope_only_for_scoped_layers(as_reader, world):
    x, y = lonlat_to_tile(*IN_WEST, 14)
    etags = {
        (reader, layer): as_reader(reader).get(f"/tiles/{layer}/14/{x}/{y}.pbf")["ETag"]
        for reader in ("gridworker", "street_a")
        for layer in ("events", "grids_small")
    }
    assert etags["gridworker", "events"] != etags["street_a", "events"]
    # Grid outlines are reference data: one tile for every scope with the same roles' fields.
    assert tile_ids(as_reader("gridworker"), "grids_small") == tile_ids(as_reader("analyst"), "grids_small")


def test_tilejson_bounds_are_the_scopes(as_reader, world):
    west = as_reader("gridworker").get("/tiles/addresses.json").json()["bounds"]
    city = as_reader("analyst").get("/tiles/addresses.json").json()["bounds"]
    assert west == pytest.approx([IN_WEST[0], IN_WEST[1], IN_WEST[0], IN_WEST[1]], abs=1e-6)
    assert city[3] == pytest.approx(IN_NORTH[1], abs=1e-6)


# --- exports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["gridworker", "street_a", "analyst"])
@pytest.mark.parametrize("layer", ["addresses", "events"])
def test_exports_hold_only_the_scope(as_reader, world, tmp_path, settings, reader, layer):
    settings.MINQING_EXPORT_DIR = tmp_path / "exports"
    client = as_reader(reader)
    geojson = json.loads(b"".join(client.get(f"/exports/{layer}.geojson").streaming_content))
    assert names_of(world, LAYERS[layer], [f["id"] for f in geojson["features"]]) == SEES[reader]
    text = b"".join(client.get(f"/exports/{layer}.csv").streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert names_of(world, LAYERS[layer], [row["id"] for row in rows]) == SEES[reader]
    path = tmp_path / f"{layer}.gpkg"
    path.write_bytes(download(client, f"/exports/{layer}.gpkg"))
    frame = pyogrio.read_dataframe(path)
    assert names_of(world, LAYERS[layer], frame["id"].tolist()) == SEES[reader]


def test_print_map_of_the_neighbouring_grid_is_404(as_reader, world):
    client = as_reader("gridworker")
    for grid in ("east", "north"):
        response = client.get(f"/exports/grid/{world.grids[grid].code}.html")
        assert response.status_code == 404, grid
    assert client.get(f"/exports/grid/{world.regions['street_b'].code}.html").status_code == 404


def test_print_map_of_a_shared_area_shows_only_the_scopes_part(as_reader, world):
    """The medium grid holds WEST and EAST: the worker's page counts and draws WEST only."""
    page = as_reader("gridworker").get(f"/exports/grid/{world.grids['medium'].code}.html").content.decode()
    assert mentions(page, "west商店") and not mentions(page, "east商店")
    assert "<tr><th>实有人口 residents</th><td>1</td></tr>" in page
    city = as_reader("analyst").get(f"/exports/grid/{world.grids['medium'].code}.html").content.decode()
    assert mentions(city, "east商店") and "<tr><th>实有人口 residents</th><td>2</td></tr>" in city


def mentions(page: str, text: str) -> bool:
    """``text`` in the page as it is or as folium's JSON writes it (non-ASCII escaped)."""
    return text in page or json.dumps(text)[1:-1] in page


# --- heat, hot spots, early warnings ------------------------------------------------------------


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = (lon + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return int(x), int(y)


def alpha(response) -> np.ndarray:
    assert response.status_code == 200, response.content[:200]
    return np.asarray(Image.open(io.BytesIO(response.content)))[:, :, 3]


@pytest.mark.parametrize("z", [12, 15])
def test_heat_tile_of_the_next_street_is_empty_for_the_grid_worker(as_reader, world, z):
    """Both paths (cached blocks at z ≤ 12, a query per tile above): the tile over NORTH's
    points shows them to the analyst (asking first, so their points are cached) and nothing to
    the worker."""
    x, y = tile_of(*IN_NORTH, z)
    city = as_reader("analyst").get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "hazard"})
    worker = as_reader("gridworker").get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "hazard"})
    assert city["ETag"] != worker["ETag"]
    assert alpha(city).max() > 0
    if z == 15:
        assert tile_of(*IN_WEST, z) != (x, y)
        assert alpha(worker).max() == 0
    else:
        # One z12 tile holds all three grids: the NORTH point's pixel stays clear for the worker.
        px = tile_pixel(*IN_NORTH, z, x, y)
        assert alpha(city)[px] > 0 and alpha(worker)[px] == 0


def tile_pixel(lon: float, lat: float, z: int, x: int, y: int) -> tuple[int, int]:
    n = 2**z * 256
    gx = (lon + 180.0) / 360.0 * n
    gy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return int(gy) - y * 256, int(gx) - x * 256


@pytest.mark.parametrize("z", [10, 14])
def test_the_workers_heat_tile_depends_on_no_other_grid(as_reader, world, z):
    """Not even through the colour scale: many more events elsewhere leave the worker's tile
    byte for byte the same, while the analyst's changes."""
    from tests.worlds.events import report

    x, y = tile_of(*IN_WEST, z)
    before = {r: as_reader(r).get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "hazard"}).content for r in SEES}
    for i in range(30):
        report(category="hazard.fire", at=(IN_EAST[0] + i * 1e-5, IN_EAST[1]))
        report(category="hazard.fire", at=(IN_NORTH[0], IN_NORTH[1] + i * 1e-5))
    heat._cache.clear()  # the data version moves only on commit; here the cache is emptied instead
    after = {r: as_reader(r).get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "hazard"}).content for r in SEES}
    assert after["gridworker"] == before["gridworker"]
    assert after["analyst"] != before["analyst"]


def test_heat_geotiff_holds_only_the_scope(as_reader, world):
    d = 0.002
    box = f"{IN_NORTH[0] - d},{IN_NORTH[1] - d},{IN_NORTH[0] + d},{IN_NORTH[1] + d}"

    def surface(reader: str) -> np.ndarray:
        response = as_reader(reader).get("/exports/heat.tif", {"family": "hazard", "bbox": box, "resolution_m": "20"})
        assert response.status_code == 200
        with MemoryFile(response.content) as memory, memory.open() as dataset:
            return dataset.read(1)

    assert surface("analyst").max() > 0
    assert surface("gridworker").max() == 0


@pytest.mark.parametrize("reader", READERS)
def test_hotspots_hold_only_the_scopes_grids(as_reader, world, reader):
    body = as_reader(reader).get("/api/hotspots", {"family": "hazard"}).json()
    assert {f["id"] for f in body["features"]} == {world.grids[g].code for g in SEES[reader]}
    assert {f["properties"]["count"] for f in body["features"]} <= {1}


def test_the_workers_hotspots_depend_on_no_other_grid(as_reader, world):
    from tests.worlds.events import report

    before = as_reader("street_a").get("/api/hotspots", {"family": "hazard"}).json()
    for i in range(20):
        report(category="hazard.fire", at=(IN_NORTH[0], IN_NORTH[1] + i * 1e-5))
    after = as_reader("street_a").get("/api/hotspots", {"family": "hazard"}).json()
    assert after == before
    city = as_reader("analyst").get("/api/hotspots", {"family": "hazard"}).json()
    assert {f["id"]: f["properties"]["count"] for f in city["features"]}[world.grids["north"].code] == 21


def test_early_warnings_hold_only_the_scopes_grids(as_reader, world):
    from tests.worlds.events import report

    for i in range(6):
        report(category="dispute", at=(IN_NORTH[0], IN_NORTH[1] + i * 1e-5))
    north = world.grids["north"].code
    city = as_reader("analyst").get("/api/early-warnings", {"family": "dispute"}).json()["warnings"]
    assert [w["code"] for w in city] == [north]
    for reader in ("gridworker", "street_a", "nobody"):
        assert as_reader(reader).get("/api/early-warnings", {"family": "dispute"}).json()["warnings"] == [], reader


# --- locate and geocode -----------------------------------------------------------------------


def test_locate_names_the_neighbouring_grid_but_not_its_address(as_reader, world):
    """Where a point lies is reference data (the worker must learn it is not their grid); the
    standard address there is the neighbour's registry data."""
    query = {"lon": IN_EAST[0], "lat": IN_EAST[1]}
    worker = as_reader("gridworker").get("/api/locate", query).json()
    assert worker["grid_small"]["code"] == world.grids["east"].code
    assert worker["nearest_address"] is None
    own = as_reader("gridworker").get("/api/locate", {"lon": IN_WEST[0], "lat": IN_WEST[1]}).json()
    assert own["nearest_address"]["code"] == "A-west"
    assert as_reader("street_a").get("/api/locate", query).json()["nearest_address"]["code"] == "A-east"


@pytest.mark.parametrize("reader", READERS)
def test_geocode_offers_only_the_scopes_addresses(as_reader, world, reader):
    for grid, text in (("west", "城关区畅家巷1号"), ("east", "城关区静宁路2号"), ("north", "城关区张掖路3号")):
        body = as_reader(reader).get("/api/geocode", {"q": text}).json()
        if grid in SEES[reader]:
            assert body["matched"] and body["candidates"][0]["code"] == f"A-{grid}", (reader, grid)
        else:
            # The same answer as for a road that does not exist: nothing tells the address is there.
            nowhere = as_reader(reader).get("/api/geocode", {"q": "城关区无此路9号"}).json()
            keys = ("matched", "method", "candidates", "no_match_reason")
            assert {k: body[k] for k in keys} == {k: nowhere[k] for k in keys}, (reader, grid)
            assert all(c["code"] != f"A-{grid}" for c in body["candidates"])


# --- the admin and who-am-I ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["address", "person", "unit", "building", "dwelling", "compound", "event"])
def test_admin_shows_street_staff_only_their_street(as_reader, world, model):
    client = as_reader("street_a")
    kind = model if model != "event" else "event"
    listing = client.get(reverse(f"admin:layers_{model}_changelist"))
    assert listing.status_code == 200
    shown = {row.pk for row in listing.context["cl"].result_list}
    assert names_of(world, kind, shown) == {"west", "east"}
    north = world.rows["north"][kind].pk
    page = client.get(reverse(f"admin:layers_{model}_change", args=[north]))
    # Django's admin answers a row outside the queryset by redirecting to the index, no data.
    assert page.status_code == 302
    assert client.get(reverse(f"admin:layers_{model}_change", args=[world.rows["east"][kind].pk])).status_code == 200


def test_admin_grids_of_street_staff_and_scopes_for_superusers_only(as_reader, world, django_user_model):
    client = as_reader("street_a")
    listing = client.get(reverse("admin:layers_grid_changelist"))
    codes = {grid.code for grid in listing.context["cl"].result_list}
    assert world.grids["north"].code not in codes and world.grids["east"].code in codes
    assert client.get(reverse("admin:layers_readerscope_changelist")).status_code == 403
    root = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    client.force_login(root)
    assert client.get(reverse("admin:layers_readerscope_changelist")).status_code == 200


def test_whoami_tells_the_scope(as_reader, world):
    body = as_reader("gridworker").get("/api/whoami").json()
    assert body["scope"]["level"] == "grids" and body["scope"]["grids"] == [world.grids["west"].code]
    assert as_reader("street_a").get("/api/whoami").json()["scope"]["streets"] == [world.regions["street"].code]
