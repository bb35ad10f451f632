"""The import API (/api/imports…): only data stewards and administrators; uploads checked (kind,
suffix, size, options, archive guards) with a 400 naming the field; a dry run queued, run by the
worker, read back with counts, first rejections, report and preview; a commit queued once, with
what the steward accepted, audited as the steward."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from importers.jobs import import_jobs_work
from importers.models import ImportJob
from layers.models import Address, AuditEntry, Grid
from layers.protection.audit import audit_flush
from layers.services.users import Role, roles_ensure
from tests.worlds import grid_layout
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import ADDRESS_HEADER, address_row

pytestmark = pytest.mark.django_db

GOOD = [address_row(f"A{i}") for i in range(3)]
BAD = address_row("A9", ("abc", "36.06"))


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    settings.MINQING_IMPORT_DIR = tmp_path / "imports"
    settings.MINQING_REPORT_DIR = tmp_path / "reports"


def user_with(role: str | None, *, username: str | None = None, superuser: bool = False):
    groups = roles_ensure()
    user = get_user_model().objects.create_user(username or role or "nobody", is_superuser=superuser)
    if role:
        user.groups.add(groups[Role(role)])
    return user


def client_as(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


@pytest.fixture
def steward():
    return client_as(user_with("data_steward", username="steward"))


def csv_file(rows: list[list[str]], name: str = "addresses.csv") -> SimpleUploadedFile:
    lines = [",".join(ADDRESS_HEADER), *(",".join(row) for row in rows)]
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def upload(client: APIClient, kind: str = "addresses", file=None, **fields):
    body = {"kind": kind, **fields}
    if file is not None:
        body["file"] = file
    return client.post("/api/imports", body, format="multipart")


def run_worker() -> int:
    return import_jobs_work(once=True)


@pytest.mark.parametrize(
    ("role", "superuser", "status"),
    [(None, False, 403), ("analyst", False, 403), ("command_center", False, 403), ("data_steward", False, 200),
     ("administrator", False, 200), (None, True, 200)],
)  # fmt: skip
def test_only_stewards_and_administrators_may_import(role, superuser, status):
    response = client_as(user_with(role, superuser=superuser)).get("/api/imports")
    assert response.status_code == status
    if status == 403:
        assert response.json() == {
            "error": {
                "code": "permission_denied",
                "message": "imports are for data stewards and administrators",
            }
        }


def test_anonymous_gets_401_and_the_page_sends_to_the_login(client):
    assert APIClient().get("/api/imports").status_code == 401
    response = client.get("/imports/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/imports/")


def zip_with(member: str, content: bytes, name: str = "grids.zip") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, content)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


BOMB = zip_with("grids.shp", b"\0" * (64 * 1024 * 1024))
BOMB_PACKED = zipfile.ZipFile(BOMB).infolist()[0].compress_size

#: case → (form fields, file, field named, message)
BAD_UPLOADS = {
    "empty kind": (
        {"kind": ""}, csv_file(GOOD), "kind",
        "kind: must be one of divisions, boundaries, grids, addresses, persons, units, got ''",
    ),
    "unknown kind": (
        {"kind": "events"}, csv_file(GOOD), "kind",
        "kind: must be one of divisions, boundaries, grids, addresses, persons, units, got 'events'",
    ),
    "no file": ({}, None, "file", "file: is required: the file to import"),
    "a table for grids": (
        {"kind": "grids"}, csv_file(GOOD, "grids.csv"), "file",
        "file: grids.csv: a grids import reads .geojson or .json or .gpkg or .zip files, not .csv",
    ),
    "an empty file": (
        {}, SimpleUploadedFile("addresses.csv", b""), "file", "file: addresses.csv: the file is empty",
    ),
    "an unknown field": (
        {"level": "district"}, csv_file(GOOD), "level",
        "level: is not a parameter here; known: kind, file, encoding, crs",
    ),
    "an unknown encoding": (
        {"encoding": "latin9"}, csv_file(GOOD), "encoding",
        "encoding: must be one of utf-8, gbk, gb18030, got 'latin9'",
    ),
    "boundaries without their level": (
        {"kind": "boundaries"}, SimpleUploadedFile("d.geojson", b"{}"), "level", "level: is required",
    ),
    "a date that is not one": (
        {"kind": "grids", "valid_from": "2024-13-01"}, SimpleUploadedFile("g.geojson", b"{}"), "valid_from",
        "valid_from: must be a date as YYYY-MM-DD, got '2024-13-01'",
    ),
    "an unknown CRS": (
        {"kind": "grids", "source_crs": "EPSG:99999999"}, SimpleUploadedFile("g.gpkg", b"x"), "source_crs",
        "source_crs: not a known CRS, got 'EPSG:99999999' (try EPSG:4490)",
    ),
    "a member that climbs out": (
        {"kind": "grids"}, zip_with("../evil.shp", b"x"), "file",
        "file: grids.zip: member '../evil.shp' has an absolute path or climbs out with '..'; refused",
    ),
    "a zip bomb": (
        {"kind": "grids"}, BOMB, "file",
        f"file: grids.zip: member 'grids.shp' expands from {BOMB_PACKED:,} to 67,108,864 bytes (more than 200 "
        "times): refused as a possible zip bomb",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("fields", "file", "field", "message"), BAD_UPLOADS.values(), ids=BAD_UPLOADS)
def test_a_bad_upload_is_a_400_naming_the_field_and_keeps_nothing(steward, settings, fields, file, field, message):
    file.seek(0) if file is not None else None
    response = upload(steward, file=file, **{"kind": "addresses", **fields})
    assert (response.status_code, response.json()) == (
        400,
        {"error": {"code": "bad_parameter", "message": message, "parameter": field}},
    )
    assert not ImportJob.objects.exists()
    assert not any(settings.MINQING_IMPORT_DIR.glob("*/*")) if settings.MINQING_IMPORT_DIR.exists() else True


def test_an_upload_over_the_import_limit_is_refused(steward, settings):
    settings.MINQING_IMPORT_MAX_BYTES = 100
    response = upload(steward, file=csv_file(GOOD * 10))
    assert response.status_code == 400
    size = len(csv_file(GOOD * 10).read())
    assert response.json()["error"]["message"] == f"file: addresses.csv: {size:,} bytes; at most 100 bytes are accepted"
    # A declared body over both limits is refused before it is read, like every other request.
    big = steward.generic(
        "POST", "/api/imports", b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=str(2 * 1024**3)
    )
    assert big.status_code == 413


def test_an_import_larger_than_other_requests_may_be_uploaded(steward, settings):
    settings.MINQING_REQUEST_MAX_BYTES = 200  # the general limit; the import page has its own
    response = upload(steward, file=csv_file(GOOD * 10))
    assert response.status_code == 201, response.json()


@pytest.fixture
def world():
    grid_tree(region_chain()["community"])


def test_dry_run_report_preview_then_commit_as_the_steward(world, steward):
    created = upload(steward, file=csv_file([*GOOD, BAD]), crs="wgs84")
    assert created.status_code == 201
    job = created.json()
    assert (job["status"], job["action"], job["kind"], job["file"]["name"], job["created_by"]) == (
        "queued", "dry_run", "addresses", "addresses.csv", "steward",
    )  # fmt: skip
    assert created["Location"] == f"/api/imports/{job['id']}"
    assert run_worker() == 1
    dry = steward.get(f"/api/imports/{job['id']}").json()
    assert (dry["status"], dry["exit_code"], dry["failure"]["kind"]) == ("failed", 3, "rejected")
    assert dry["message"] == "1 of 4 rows rejected, more than the 0 rows accepted; a commit would write nothing"
    assert dry["counts"] == {"rows": 4, "created": 3, "updated": 0, "outside_grids": 0, "rejected": 1}
    assert dry["summary"]["rejections"] == [{"row": 5, "field": "lon", "value": "abc", "reason": "not a number"}]
    assert dry["progress"]["stages"] == ["read", "check", "write addresses"]
    assert sorted(dry["links"]) == ["commit", "preview", "report", "self"]
    assert not Address.objects.exists()

    report = steward.get(dry["links"]["report"])
    assert report["Content-Disposition"] == f'attachment; filename="addresses-addresses-{job["id"]}-rejected.csv"'
    assert b"".join(report.streaming_content).decode("utf-8-sig").splitlines() == [
        "row,field,value,reason",
        "5,lon,abc,not a number",
    ]
    preview = steward.get(dry["links"]["preview"])
    features = __import__("json").loads(b"".join(preview.streaming_content))["features"]
    assert sorted(f["properties"]["code"] for f in features) == ["A0", "A1", "A2"]

    committed = steward.post(dry["links"]["commit"], {"max_rejected": "1"}, format="json")
    assert committed.status_code == 201
    commit = committed.json()
    assert (commit["action"], commit["dry_run"], commit["accepted"]) == (
        "commit", job["id"], {"max_rejected": "1", "topology": False},
    )  # fmt: skip
    again = steward.post(dry["links"]["commit"], {"max_rejected": "1"}, format="json")
    assert (again.status_code, again.json()["error"]["message"]) == (
        409,
        f"the file is already being committed (queued) by job {commit['id']}",
    )
    run_worker()
    done = steward.get(f"/api/imports/{commit['id']}").json()
    assert (done["status"], done["exit_code"], done["counts"]["created"]) == ("succeeded", 0, 3)
    assert sorted(Address.objects.values_list("code", flat=True)) == ["A0", "A1", "A2"]
    assert steward.get(f"/api/imports/{job['id']}").json()["commit"] == commit["id"]
    audit_flush()
    entries = {(e.action, e.actor, e.target): e.detail for e in AuditEntry.objects.all()}
    detail = entries[("import", "steward", "import:addresses")]
    assert (detail["file"], detail["job"], detail["max_rejected"], detail["counts"]["created"]) == (
        "addresses.csv", commit["id"], "1", 3,
    )  # fmt: skip
    assert ("import.report", "steward", f"import:{job['id']}") in entries
    refused = steward.post(dry["links"]["commit"], {}, format="json")
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        409,
        f"the file is already committed by job {commit['id']}",
    )


def test_a_commit_over_its_accepted_limit_fails_and_writes_nothing(world, steward):
    job = upload(steward, file=csv_file([*GOOD, BAD, address_row("", ("103.8", "36.06"))])).json()
    run_worker()
    commit = steward.post(f"/api/imports/{job['id']}/commit", {"max_rejected": "1"}, format="json").json()
    run_worker()
    done = steward.get(f"/api/imports/{commit['id']}").json()
    assert (done["status"], done["exit_code"], done["message"]) == (
        "failed", 3, "2 of 5 rows rejected, more than the 1 row accepted; nothing was written",
    )  # fmt: skip
    assert not Address.objects.exists()
    # A failed commit may be tried again with more accepted.
    retry = steward.post(f"/api/imports/{job['id']}/commit", {"max_rejected": "40%"}, format="json")
    assert retry.status_code == 201
    run_worker()
    assert Address.objects.count() == 3


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        ({"max_rejected": "many"}, "max_rejected: expected a number of rows (such as 25) or a percentage of the rows "
         "read (such as 2.5%), got 'many'", "max_rejected"),
        ({"accept_topology": "perhaps"}, "accept_topology: must be true or false, got 'perhaps'", "accept_topology"),
        ({"commit": True}, "commit: is not a parameter here; known: max_rejected, accept_topology", "commit"),
    ],
)  # fmt: skip
def test_a_bad_commit_request_is_a_400_naming_the_field(world, steward, body, message, field):
    job = upload(steward, file=csv_file(GOOD)).json()
    run_worker()
    response = steward.post(f"/api/imports/{job['id']}/commit", body, format="json")
    assert (response.status_code, response.json()["error"]) == (
        400,
        {"code": "bad_parameter", "message": message, "parameter": field},
    )


def test_a_commit_body_that_is_not_an_object_is_a_400(world, steward):
    job = upload(steward, file=csv_file(GOOD)).json()
    response = steward.generic("POST", f"/api/imports/{job['id']}/commit", "null", content_type="application/json")
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        'body: must be a JSON object or a form, such as {"max_rejected": "25"}',
    )


def test_what_cannot_be_committed_is_a_409(world, steward):
    queued = upload(steward, file=csv_file(GOOD)).json()
    response = steward.post(f"/api/imports/{queued['id']}/commit", {}, format="json")
    assert (response.status_code, response.json()["error"]["message"]) == (
        409,
        f"the dry run (job {queued['id']}) is still queued; wait for it to finish",
    )
    unusable = upload(steward, file=SimpleUploadedFile("addresses.csv", b"code,name\nA1,x\n")).json()
    run_worker()
    response = steward.post(f"/api/imports/{unusable['id']}/commit", {}, format="json")
    assert (response.status_code, response.json()["error"]["message"]) == (
        409,
        f"the dry run (job {unusable['id']}) failed, there is nothing to commit: addresses.csv: missing column(s) "
        "lon, lat; "
        "the header has code, name; nothing was written",
    )
    assert steward.post("/api/imports/99999/commit", {}, format="json").status_code == 404
    assert steward.get("/api/imports/99999").status_code == 404
    assert steward.get(f"/api/imports/{queued['id']}/report.csv").json()["error"]["message"] == (
        f"import job {queued['id']} rejected no row"
    )


def test_a_grid_import_with_topology_problems_is_committed_only_when_accepted(steward, tmp_path):
    grid_layout.regions()
    grid_layout.load(grid_layout.layout(), "2024-01-01")
    rows = grid_layout.layout()
    small = grid_layout.COMMUNITY + "010101"
    grid_layout.by_code(rows)[small]["geometry"] = grid_layout.box(0, 0, 200, 500)
    path = grid_layout.write_geojson(tmp_path / "grids.geojson", rows)
    file = SimpleUploadedFile("grids.geojson", path.read_bytes(), content_type="application/geo+json")
    job = upload(steward, "grids", file=file, valid_from="2024-07-01").json()
    run_worker()
    dry = steward.get(f"/api/imports/{job['id']}").json()
    assert (dry["status"], dry["exit_code"], dry["failure"]["kind"]) == ("failed", 4, "topology")
    [problem] = dry["summary"]["topology"]
    assert (problem["kind"], problem["level"], problem["codes"]) == ("gap", "small", [grid_layout.COMMUNITY + "0101"])
    assert problem["area_m2"] == pytest.approx(25_000, rel=0.01)
    plain = steward.post(f"/api/imports/{job['id']}/commit", {}, format="json").json()
    run_worker()
    assert steward.get(f"/api/imports/{plain['id']}").json()["exit_code"] == 4
    assert Grid.objects.get(code=small).boundary.extent == pytest.approx(grid_layout.box(0, 0, 250, 500).bounds)
    accepted = steward.post(f"/api/imports/{job['id']}/commit", {"accept_topology": True}, format="json").json()
    run_worker()
    done = steward.get(f"/api/imports/{accepted['id']}").json()
    assert (done["status"], done["summary"]["notes"]) == (
        "succeeded",
        ["1 topology problem(s) accepted (--accept-topology)"],
    )
    assert Grid.objects.get(code=small).boundary.extent == pytest.approx(grid_layout.box(0, 0, 200, 500).bounds)
