"""GET /exports/<layer>.<format>: every format parses back, the filters and reader fields are the
OGC items', bad input is a 400 and an unknown layer a 404."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import pytest

import pyogrio

from layers.models import Address
from mapserver.exportjobs import export_jobs_work
from tests.worlds.factories import ORIGIN, SIZE

from .test_ogc import ADDRESSES, _client_in, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.MINQING_EXPORT_DIR = tmp_path / "exports"
    return settings.MINQING_EXPORT_DIR


@pytest.fixture
def export_world(db):
    return make_world()


@pytest.fixture
def api(client, django_user_model):
    return _client_in(client, django_user_model, "grid_worker")


@pytest.fixture
def analyst(client, django_user_model):
    return _client_in(client, django_user_model, "analyst")


def download(client, path: str, **query) -> bytes:
    """The export's bytes: streamed formats at once, files through their job (queued by the
    request, built here by the worker's code, then fetched by the download link)."""
    response = client.get(path, query)
    if path.endswith((".gpkg", ".shp")):
        assert response.status_code == 202, response.content[:300]
        job = response.json()
        assert job["status"] == "queued" and job["download_url"] is None
        assert export_jobs_work(once=True) >= 1
        state = client.get(job["status_url"]).json()
        assert state["status"] == "succeeded", state
        assert state["rows_done"] == state["rows_total"] and state["progress"] in (1.0, None)
        response = client.get(state["download_url"])
        assert int(response["Content-Length"]) == state["file_size"]
    assert response.status_code == 200, getattr(response, "content", b"")[:300]
    assert "attachment; filename=" in response["Content-Disposition"]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_geojson_streams_every_feature(api, export_world):
    response = api.get("/exports/addresses.geojson")
    assert response.streaming and response["Content-Type"] == "application/geo+json"
    body = json.loads(b"".join(response.streaming_content))
    assert body["type"] == "FeatureCollection"
    assert [f["id"] for f in body["features"]] == sorted(Address.objects.values_list("pk", flat=True))
    assert body["features"][0]["properties"]["code"] == "A000"


def _export_entries() -> list[dict]:
    from layers.models import AuditEntry
    from layers.protection.audit import audit_flush

    audit_flush()
    return [e.detail for e in AuditEntry.objects.filter(action="export").order_by("seq")]


def test_a_streamed_geojson_export_is_audited_with_the_features_sent(api, export_world):
    """The entry is written when the stream ends, with the count of features that left: all
    of them, or those sent before the client hung up (complete false)."""
    total = Address.objects.count()
    b"".join(api.get("/exports/addresses.geojson", {"road": "西路"}).streaming_content)
    sent = Address.objects.filter(road="西路").count()
    assert 0 < sent < total
    assert _export_entries() == [
        {"format": "geojson", "filters": {"road": "西路"}, "rows": sent, "complete": True, "client": "127.0.0.1"}
    ]
    response = api.get("/exports/addresses.geojson")
    chunks = response._iterator  # the test client's wrapper: it closes the response as a server does
    next(chunks), next(chunks)  # the opening and every feature, then the client hangs up
    chunks.close()
    last = _export_entries()[-1]
    assert last == {"format": "geojson", "filters": {}, "rows": total, "complete": False, "client": "127.0.0.1"}


def test_geojson_of_an_empty_selection_is_valid(api, export_world):
    body = json.loads(download(api, "/exports/addresses.geojson", road="无此路"))
    assert body == {"type": "FeatureCollection", "features": []}


def test_geojson_in_small_batches(export_world):
    from layers.protection.scope import CITY
    from layers.publishing.catalog import layer_get
    from layers.selectors.features import features_stream

    layer = layer_get("addresses")
    chunks = list(features_stream(layer=layer, fields=layer.fields, scope=CITY, batch=4))
    assert len(chunks) > 8
    assert len(json.loads("".join(chunks))["features"]) == ADDRESSES


def test_csv_has_lon_lat_and_the_filters(api, export_world):
    text = download(api, "/exports/addresses.csv", road="东路").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "id",
        "code",
        "full_text",
        "road",
        "door_number",
        "district_code",
        "grid_code",
        "lon",
        "lat",
    ]
    assert {r["code"] for r in rows} == {f"A{i:03d}" for i in range(1, ADDRESSES, 2)}
    assert rows[0]["full_text"] == "城关区测试东路1号"
    grids = list(csv.DictReader(io.StringIO(download(api, "/exports/grids_small.csv").decode("utf-8-sig"))))
    assert len(grids) == 2 and all(g["wkt"].startswith("MULTIPOLYGON") for g in grids)


def test_gpkg_reads_back(api, export_world, tmp_path):
    path = tmp_path / "events.gpkg"
    path.write_bytes(download(api, "/exports/events.gpkg", status="received"))
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == 3 and frame.crs.to_epsg() == 4326
    assert set(frame["status"]) == {"received"} and "description" in frame.columns
    assert frame.geometry.geom_type.unique().tolist() == ["Point"]


def _read_file(content: bytes, fmt: str, folder) -> tuple[dict, object]:
    """A downloaded GeoPackage or zipped Shapefile read back: its layer's fields and types, and
    its rows as a GeoDataFrame."""
    if fmt == "gpkg":
        path = folder / "export.gpkg"
        path.write_bytes(content)
    else:
        archive = zipfile.ZipFile(io.BytesIO(content))
        archive.extractall(folder)
        (path,) = folder.glob("*.shp")
    info = pyogrio.read_info(path)
    return dict(zip(info["fields"], info["dtypes"], strict=True)), pyogrio.read_dataframe(path)


@pytest.mark.parametrize("fmt", ["gpkg", "shp"])
def test_polygon_layers_are_multipolygons_in_files(api, export_world, tmp_path, fmt):
    fields, frame = _read_file(download(api, f"/exports/grids_small.{fmt}"), fmt, tmp_path)
    # A Shapefile has one polygon type: readers call a one-part polygon a Polygon.
    assert len(frame) == 2 and frame.geometry.geom_type.unique().tolist() == [
        "MultiPolygon" if fmt == "gpkg" else "Polygon"
    ]
    assert frame.geometry.is_valid.all() and fields["id"] == "int64"


@pytest.mark.parametrize("fmt", ["gpkg", "shp"])
def test_an_empty_selection_is_a_file_with_the_columns_and_no_rows(api, export_world, tmp_path, fmt):
    fields, frame = _read_file(download(api, f"/exports/events.{fmt}", bbox="80,20,81,21"), fmt, tmp_path)
    assert len(frame) == 0
    (tmp_path / "full").mkdir()
    full, _ = _read_file(download(api, f"/exports/events.{fmt}"), fmt, tmp_path / "full")
    assert fields == full


def test_file_columns_keep_their_types(api, export_world, tmp_path):
    """The id is an integer, times are ISO 8601 text with their offset."""
    fields, frame = _read_file(download(api, "/exports/events.gpkg"), "gpkg", tmp_path)
    assert fields["id"] == "int64" and fields["status"] == "object" and fields["received_at"] == "object"
    assert all(dt.datetime.fromisoformat(value).tzinfo is not None for value in frame["received_at"])


def test_shapefile_zip_has_prj_and_cpg(api, export_world, tmp_path):
    content = download(
        api, "/exports/addresses.shp", bbox=f"{ORIGIN[0]},{ORIGIN[1]},{ORIGIN[0] + SIZE / 2},{ORIGIN[1] + SIZE}"
    )
    archive = zipfile.ZipFile(io.BytesIO(content))
    names = set(archive.namelist())
    assert {"addresses.shp", "addresses.shx", "addresses.dbf", "addresses.prj", "addresses.cpg"} <= names
    assert archive.read("addresses.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
    archive.extractall(tmp_path)
    frame = pyogrio.read_dataframe(tmp_path / "addresses.shp")
    assert len(frame) == ADDRESSES // 2 and frame.crs.to_epsg() == 4326
    assert "城关区测试西路0号" in set(frame["full_text"])


def test_role_restricted_field_is_absent_for_the_analyst(analyst, export_world, tmp_path):
    body = json.loads(download(analyst, "/exports/events.geojson"))
    assert len(body["features"]) == 6 and all("description" not in f["properties"] for f in body["features"])
    path = tmp_path / "events.gpkg"
    path.write_bytes(download(analyst, "/exports/events.gpkg"))
    assert "description" not in pyogrio.read_dataframe(path).columns
    text = download(analyst, "/exports/events.csv").decode("utf-8-sig")
    assert "description" not in text.splitlines()[0]


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/exports/addresses.kml", {}, 400, "format: must be one of geojson, gpkg, csv, shp, got 'kml'"),
        ("/exports/nowhere.geojson", {}, 404, "unknown layer 'nowhere'"),
        ("/exports/addresses.csv", {"limit": "10"}, 400,
         "limit: unknown parameter; addresses accepts bbox, bbox-crs, code, crs, datetime, district_code, "
         "door_number, full_text, grid_code, road"),
        ("/exports/addresses.gpkg", {"crs": "EPSG:3857"}, 400,
         "crs: unsupported CRS 'EPSG:3857'; supported: http://www.opengis.net/def/crs/OGC/1.3/CRS84, "
         "http://www.opengis.net/def/crs/EPSG/0/4326, http://www.opengis.net/def/crs/EPSG/0/4490, "
         "http://www.opengis.net/def/crs/EPSG/0/4544"),
        ("/exports/addresses.geojson", {"bbox": "104,36,103,37"}, 400, "bbox: minimum must be below maximum"),
        ("/exports/events.gpkg", {"datetime": "x/.."}, 400, "datetime: must be an ISO 8601 date-time, got 'x'"),
        ("/exports/events.shp", {"status": "' OR 1=1 --"}, 400,
         "status: must be one of received, triaged, assigned, in_progress, resolved, verified, closed, returned, "
         "suspended, reopened, got \"' OR 1=1 --\""),
    ],
)  # fmt: skip
def test_bad_requests(api, export_world, path, query, status, message):
    response = api.get(path, query)
    assert response.status_code == status
    assert response.json()["error"]["message"] == message


def test_sql_in_a_value_matches_nothing(api, export_world):
    body = json.loads(download(api, "/exports/addresses.geojson", road="x' OR '1'='1"))
    assert body["features"] == []


def test_anonymous_is_401(client, db):
    assert client.get("/exports/addresses.geojson").status_code == 401


@pytest.mark.parametrize(
    "road, cell",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("安宁路", "安宁路"),
        ("路=1", "路=1"),
    ],
)
def test_csv_text_cells_cannot_become_spreadsheet_formulas(api, export_world, road, cell):
    Address.objects.filter(code="A001").update(road=road)
    rows = list(csv.DictReader(io.StringIO(download(api, "/exports/addresses.csv").decode("utf-8-sig"))))
    assert {r["code"]: r["road"] for r in rows}["A001"] == cell


@pytest.mark.parametrize(
    "road, line",
    [
        ("东路,北段", '"东路,北段"'),
        ('他说"到了"', '"他说""到了"""'),
        ("一行\n两行", '"一行\n两行"'),
        ("回车\r", '"回车\r"'),
        ("", '""'),
        ("安宁路", "安宁路"),
    ],
)
def test_csv_cells_are_quoted_as_copy_quotes_them(api, export_world, road, line):
    """Quotes only where a cell needs them (a comma, a quote, a line break, or empty text), quotes
    doubled inside: the line as PostgreSQL's COPY … CSV writes it, and read back whole."""
    Address.objects.filter(code="A001").update(road=road)
    text = download(api, "/exports/addresses.csv").decode("utf-8-sig")
    assert f",{line}," in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {r["code"]: r["road"] for r in rows}["A001"] == road


def test_exports_in_the_gauss_kruger_zone_keep_easting_northing(api, export_world, tmp_path):
    """crs=EPSG:4544 (CGCS2000 3-degree Gauss–Krüger, CM 105°E): every format holds the same
    metres, x = easting as files keep them, and says which CRS they are in."""
    from pyproj import Transformer

    from tests.worlds.events import IN_WEST

    northing, easting = Transformer.from_crs(4326, 4544).transform(IN_WEST[1], IN_WEST[0])
    crs = {"crs": "http://www.opengis.net/def/crs/EPSG/0/4544", "code": "A000"}
    gpkg = tmp_path / "a.gpkg"
    gpkg.write_bytes(download(api, "/exports/addresses.gpkg", **crs))
    frame = pyogrio.read_dataframe(gpkg)
    assert frame.crs.to_epsg() == 4544
    assert (frame.geometry.x[0], frame.geometry.y[0]) == (
        pytest.approx(easting, abs=0.01),
        pytest.approx(northing, abs=0.01),
    )
    zipfile.ZipFile(io.BytesIO(download(api, "/exports/addresses.shp", **crs))).extractall(tmp_path)
    assert pyogrio.read_dataframe(tmp_path / "addresses.shp").crs.to_epsg() == 4544
    row = next(csv.DictReader(io.StringIO(download(api, "/exports/addresses.csv", **crs).decode("utf-8-sig"))))
    assert (float(row["x"]), float(row["y"])) == (pytest.approx(easting, abs=0.01), pytest.approx(northing, abs=0.01))
    body = json.loads(download(api, "/exports/addresses.geojson", **crs))
    assert body["crs"] == {"type": "name", "properties": {"name": "http://www.opengis.net/def/crs/EPSG/0/4544"}}
    assert body["features"][0]["geometry"]["coordinates"] == [
        pytest.approx(easting, abs=0.01),
        pytest.approx(northing, abs=0.01),
    ]
    # CGCS2000 in degrees: longitude first in a file, as GIS software reads it.
    lat_lon = json.loads(download(api, "/exports/addresses.geojson", crs="EPSG:4490", code="A000"))
    assert lat_lon["features"][0]["geometry"]["coordinates"] == [pytest.approx(v, abs=1e-7) for v in IN_WEST]


def test_a_file_export_is_a_job_of_its_requester_only(api, analyst, export_world, django_user_model):
    """The request answers 202 at once with the job; asking again gives the same job; the file is
    a 409 until built; another account gets 404 for the job and its file; the build is audited
    with the rows written."""
    from django.test import Client

    from layers.models import AuditEntry, ExportJob

    first = api.get("/exports/addresses.gpkg", {"road": "东路"})
    assert first.status_code == 202 and first["Location"] == f"/exports/jobs/{first.json()['id']}"
    again = api.get("/exports/addresses.gpkg", {"road": "东路"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other_query = api.get("/exports/addresses.gpkg", {"road": "西路"})
    assert other_query.status_code == 202 and other_query.json()["id"] != first.json()["id"]
    job_id = first.json()["id"]
    waiting = api.get(f"/exports/jobs/{job_id}/file")
    assert waiting.status_code == 409
    assert waiting.json()["error"]["message"] == "the file is being built (0 of ? rows); ask again later"

    stranger = _client_in(Client(), django_user_model, "command_center")
    assert stranger.get(f"/exports/jobs/{job_id}").status_code == 404
    assert export_jobs_work(once=True) == 2
    assert stranger.get(f"/exports/jobs/{job_id}/file").status_code == 404
    state = api.get(f"/exports/jobs/{job_id}").json()
    assert (state["status"], state["rows_done"], state["rows_total"], state["progress"]) == (
        "succeeded",
        ADDRESSES // 2,
        ADDRESSES // 2,
        1.0,
    )
    assert api.get(f"/exports/jobs/{job_id}/file").status_code == 200
    from layers.protection.audit import audit_flush

    audit_flush()
    entry = AuditEntry.objects.filter(action="export", detail__job=job_id).get()
    assert entry.detail["rows"] == ADDRESSES // 2 and entry.detail["filters"] == {"road": "东路"}
    assert ExportJob.objects.get(pk=job_id).file_name == "addresses.gpkg"


def test_an_expired_or_failed_job_has_no_file(api, export_world, settings):
    from layers.models import ExportJob

    job_id = api.get("/exports/events.shp").json()["id"]
    export_jobs_work(once=True)
    settings.MINQING_EXPORT_KEEP_HOURS = 0
    state = api.get(f"/exports/jobs/{job_id}").json()
    assert state["status"] == "expired" and state["download_url"] is None
    response = api.get(f"/exports/jobs/{job_id}/file")
    assert response.status_code == 404
    # Asked again, an expired export is built anew.
    assert api.get("/exports/events.shp").json()["id"] != job_id
    ExportJob.objects.filter(pk=job_id).update(status="failed", message="boom")
    assert api.get(f"/exports/jobs/{job_id}/file").status_code == 404


def test_a_job_whose_worker_died_is_queued_again(api, export_world):
    from layers.models import ExportJob
    from mapserver.exportjobs import export_job_claim, export_jobs_recover

    job_id = api.get("/exports/addresses.gpkg").json()["id"]
    ExportJob.objects.filter(pk=job_id).update(status="running", attempts=1, worker="gone:1")
    assert export_jobs_recover() == [job_id]
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == "queued" and "stopped" in job.message
    claimed = export_job_claim()
    assert claimed.pk == job_id and claimed.attempts == 2
