"""Exports never take a worker down: on the real server (scripts/serve.sh, one process), a large
CSV export held open mid-stream and a GeoPackage being built leave /healthz, the API and the
tiles answering; the files then hold every row, and GDAL reads them with their Chinese intact.

Correctness only (no timing): "answering" means each request is answered while the export is
provably still in progress (the stream not read to its end, the job not finished)."""

from __future__ import annotations

import csv
import http.client
import io
import json
import shutil
import subprocess
import threading
import zipfile

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from rest_framework.authtoken.models import Token

from layers.models import Address, ExportJob
from mapserver.exportjobs import export_jobs_work
from scripts.loadgen import app_database_url, serve
from tests.worlds.city import WEST_POINT

#: Enough rows that the stream cannot sit whole in the sockets' buffers.
ROWS = 40_000


@pytest.fixture
def big_city(transactional_db, django_user_model, settings, tmp_path):
    """Committed (the server is another process): ROWS addresses with Chinese text, a superuser
    token, and an export folder both the server and this process use."""
    settings.MINQING_EXPORT_DIR = tmp_path / "exports"
    lon, lat = WEST_POINT
    Address.objects.bulk_create(
        (
            Address(
                code=f"B{i:06d}",
                road="庆阳路",
                door_number=f"{i}号",
                full_text=f"城关区庆阳路{i}号「测试」,带逗号",
                location=Point(lon + (i % 200) * 1e-5, lat + (i // 200) * 1e-5, srid=4326),
            )
            for i in range(ROWS)
        ),
        batch_size=5000,
    )
    user = django_user_model.objects.create_superuser("exporter", "exporter@example.org", "exporter-password")
    return Token.objects.create(user=user).key


def get(port: int, path: str, token: str | None = None) -> tuple[int, bytes, http.client.HTTPMessage]:
    connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection_.request("GET", path, headers={"Authorization": f"Token {token}"} if token else {})
    response = connection_.getresponse()
    body = response.read()
    connection_.close()
    return response.status, body, response.headers


def others_answer(port: int, token: str) -> None:
    """The requests every export must leave answered."""
    status, body, _ = get(port, "/healthz")
    assert status == 200, body[:200]
    status, body, _ = get(port, "/api/whoami", token)
    assert status == 200 and json.loads(body)["username"] == "exporter"
    status, _, _ = get(port, "/tiles/grids_small/14/0/0.pbf", token)
    assert status == 200


def test_large_exports_leave_the_worker_answering(big_city, tmp_path):
    token = big_city
    # make run's configuration (no HTTPS redirect), exports where this process builds them.
    env = {
        "DJANGO_SETTINGS_MODULE": "settings.dev",
        "MINQING_TRUSTED_PROXIES": "",
        "MINQING_EXPORT_DIR": str(tmp_path / "exports"),
    }
    with serve(db_url=app_database_url(connection.settings_dict), workers=1, env=env) as server:
        # A streamed CSV, held open after its first bytes: the export is in progress.
        stream = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        stream.request("GET", "/exports/addresses.csv", headers={"Authorization": f"Token {token}"})
        answer = stream.getresponse()
        assert answer.status == 200 and answer.getheader("Transfer-Encoding") == "chunked"
        first = answer.read(4096)
        others_answer(server.port, token)
        text = (first + answer.read()).decode("utf-8-sig")
        stream.close()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == ROWS
        assert rows[7]["full_text"] == "城关区庆阳路7号「测试」,带逗号"

        # A GeoPackage: the request queues a job and answers at once; the worker builds it.
        status, body, _ = get(server.port, "/exports/addresses.gpkg", token)
        assert status == 202, body[:300]
        job = json.loads(body)
        seen = []
        with _worker() as done:
            while not done.is_set():
                others_answer(server.port, token)
                seen.append(json.loads(get(server.port, f"/exports/jobs/{job['id']}", token)[1])["status"])
        state = json.loads(get(server.port, f"/exports/jobs/{job['id']}", token)[1])
        assert state["status"] == "succeeded" and state["rows_done"] == state["rows_total"] == ROWS, state
        assert set(seen) <= {"queued", "running", "succeeded"}
        status, content, headers = get(server.port, f"/exports/jobs/{job['id']}/file", token)
        assert status == 200 and int(headers["Content-Length"]) == len(content)
        path = tmp_path / "addresses.gpkg"
        path.write_bytes(content)
        assert_ogrinfo(str(path), "addresses", ROWS)

        status, body, _ = get(server.port, "/exports/addresses.shp", token)
        assert status == 202
        with _worker() as done:
            done.wait()
        shp = json.loads(get(server.port, f"/exports/jobs/{json.loads(body)['id']}", token)[1])
        status, content, _ = get(server.port, f"/exports/jobs/{shp['id']}/file", token)
        assert status == 200 and "addresses.cpg" in zipfile.ZipFile(io.BytesIO(content)).namelist()
        (tmp_path / "addresses.zip").write_bytes(content)
        assert_ogrinfo(f"/vsizip/{tmp_path / 'addresses.zip'}/addresses.shp", "addresses", ROWS)
    assert ExportJob.objects.filter(status="succeeded").count() == 2


class _worker:
    """The export worker's loop on a thread of this process until the queue is empty."""

    def __enter__(self) -> threading.Event:
        self.done = threading.Event()

        def work() -> None:
            try:
                export_jobs_work(once=True)
            finally:
                connection.close()
                self.done.set()

        self.thread = threading.Thread(target=work)
        self.thread.start()
        return self.done

    def __exit__(self, *exc) -> None:
        self.thread.join()


#: Debian's GDAL command-line reader (package gdal-bin, installed by make's set-up).
OGRINFO = shutil.which("ogrinfo") or "/usr/bin/ogrinfo"


def assert_ogrinfo(source: str, layer: str, rows: int) -> None:
    """GDAL's own reader: the feature count, and a feature's Chinese text as written."""
    summary = subprocess.run(  # noqa: S603  (our own file names)
        [OGRINFO, "-ro", "-so", source, layer], capture_output=True, text=True, check=True
    ).stdout
    assert f"Feature Count: {rows}" in summary, summary
    feature = subprocess.run(  # noqa: S603
        [OGRINFO, "-ro", "-q", source, layer, "-where", "code = 'B000007'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "城关区庆阳路7号「测试」,带逗号" in feature, feature
