"""Clients no one here wrote, against a live server holding a feature in every collection: the OGC
test suite for OGC API – Features Core (``ogctests`` from PyPI), owslib, GDAL's OAPIF driver with
its default settings (``ogr2ogr``) under a tight per-user rate, and QGIS's OAPIF provider
(Debian's ``python3-qgis``, headless).

The suites run in their own processes (a pytest session of their own for ogctests, the system
Python for QGIS), so they see the server only over HTTP, as they would anywhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token

from layers.models import Address, Compound, ReaderScope, Region
from layers.publishing import catalog
from tests.worlds.events import IN_EAST, IN_WEST, report, world
from tests.worlds.factories import box
from tests.worlds.grid_worker import populate

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 57
QGIS_PYTHON = "/usr/bin/python3"


def full_world() -> None:
    """Every catalog layer gets features: regions and grids, a compound, buildings, addresses,
    units (the populated west grid), and events on both sides of the grid line."""
    areas = world()
    lon, lat = IN_WEST
    for level in ("district", "street"):  # the chain's upper regions, outlined around the community
        Region.objects.filter(pk=areas[level].pk).update(boundary=box(lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1))
    populate(areas["west"], households=24, prefix="Q", units=3)
    Compound.objects.create(
        code="C001", name="测试小区", boundary=box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    )
    Address.objects.create(code="E001", road="东路", door_number="1号", full_text="东路1号", location=Point(*IN_EAST))
    for i in range(EVENTS):
        report(category="hazard.fire" if i % 2 else "dispute.neighbour", at=IN_WEST if i % 3 else IN_EAST)
    from layers.services import linking

    linking.relink_all()


@pytest.fixture
def token(django_user_model) -> str:
    user = django_user_model.objects.create_user("outside-client")
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    ReaderScope.objects.create(user=user, level="city")
    return Token.objects.create(user=user).key


def sql_count(layer_id: str) -> int:
    """The layer's rows with a geometry, counted in SQL from the catalog's own description."""
    layer = catalog.layer_get(layer_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {layer.source} WHERE ({layer.where}) AND {layer.geometry_sql} IS NOT NULL"
        )
        return cursor.fetchone()[0]


def test_ogc_conformance_suite_core_passes(live_server, token, tmp_path):
    """ogctests' features/core against /ogc/: every abstract test passes (none skipped)."""
    full_world()
    report_file = tmp_path / "ogctests.xml"
    # ogctests asks for the API definition without the client's headers: it is public.
    script = textwrap.dedent(
        f"""
        import sys, httpx
        from ogctests.main import run_ogctests
        client = httpx.Client(base_url={live_server.url + "/ogc"!r}, headers={{"Authorization": "Token {token}"}},
                              timeout=60)
        flags = ["-p", "no:django", "-p", "no:cacheprovider", "-c", {str(tmp_path / "pytest.ini")!r},
                 "--rootdir", {str(tmp_path)!r}, "-q", "-W", "ignore", "--junitxml", {str(report_file)!r}]
        sys.exit(run_ogctests("features/core", {live_server.url + "/ogc"!r}, flags, test_client=client))
        """
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    done = subprocess.run(  # noqa: S603  (our interpreter, our script)
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    cases = ET.parse(report_file).getroot().iter("testcase")  # noqa: S314  (written by our own subprocess)
    outcomes = {}
    for case in cases:
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        outcomes[case.get("name")] = "passed" if problem is None else f"{problem.tag}: {problem.get('message')}"
    assert len(outcomes) >= 29, done.stdout[-3000:]
    failed = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert failed == {}, done.stdout[-5000:]


def test_owslib_reads_every_collection_to_the_sql_count(live_server, token):
    from owslib.ogcapi.features import Features

    full_world()
    api = Features(live_server.url + "/ogc/", headers={"Authorization": f"Token {token}"})
    assert "paths" in api.api()  # the service-desc, read through the landing page
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    ids = [c["id"] for c in api.collections()["collections"]]
    assert set(ids) == set(catalog.LAYERS)
    for collection in ids:
        seen, after = 0, None
        while True:
            page = api.collection_items(collection, limit=20, **({"after": after} if after else {}))
            seen += page["numberReturned"]
            following = [link["href"] for link in page["links"] if link["rel"] == "next"]
            if not following:
                break
            after = following[0].split("after=")[1].split("&")[0]
        assert seen == sql_count(collection), collection
        assert page.get("numberMatched", seen) == seen
    projected = api.collection_items("events", crs="http://www.opengis.net/def/crs/EPSG/0/4544", limit=1)
    northing, easting = projected["features"][0]["geometry"]["coordinates"]
    assert 3_000_000 < northing < 5_000_000 and 300_000 < easting < 500_000


def test_gdal_with_default_settings_copies_whole_layers_under_a_tight_user_rate(live_server, token, settings, tmp_path):
    """ogr2ogr with no open options (its own page size) copies every feature, though the user's
    rate allows only a handful of requests a minute: continuation pages count per scan."""
    full_world()
    settings.MINQING_THROTTLE_RATES = settings.MINQING_THROTTLE_RATES | {"user": "8/min"}
    cache.clear()
    env = os.environ | {"GDAL_HTTP_HEADERS": f"Authorization: Token {token}", "GDAL_HTTP_TIMEOUT": "30"}
    target = tmp_path / "copy.gpkg"
    for layer in ("events", "addresses"):
        done = subprocess.run(  # noqa: S603  (gdal-bin, fixed arguments)
            [shutil.which("ogr2ogr"), "-f", "GPKG", str(target), f"OAPIF:{live_server.url}/ogc/", layer, "-append"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "429" not in done.stderr and "Too Many" not in done.stderr, done.stderr
    info = subprocess.run(  # noqa: S603
        [shutil.which("ogrinfo"), "-ro", "-so", "-al", str(target)], capture_output=True, text=True, check=True
    ).stdout
    counts = dict(re.findall(r"Layer name: (\w+).*?Feature Count: (\d+)", info, re.S))
    counts = {name: int(count) for name, count in counts.items()}
    assert counts == {"events": sql_count("events"), "addresses": sql_count("addresses")}
    cache.clear()


QGIS_SCRIPT = """
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from qgis.core import QgsApplication, QgsNetworkAccessManager, QgsVectorLayer
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
root, token, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")

def with_token(request):
    # What a QGIS 3.22 script or plugin does to send a header on every request of a connection.
    if request.url().toString().startswith(root):
        request.setRawHeader(b"Authorization", ("Token " + token).encode())

QgsNetworkAccessManager.setRequestPreprocessor(with_token)
# The provider's own messages go to stderr, for the test's failure message.
QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: print(tag, text, file=sys.stderr))
counts = {}
for name in names:
    layer = QgsVectorLayer(f"url='{root}' typename='{name}'", name, "OAPIF")
    counts[name] = [layer.isValid(), sum(1 for _ in layer.getFeatures()) if layer.isValid() else -1,
                    layer.crs().authid() if layer.isValid() else ""]
print(json.dumps(counts), flush=True)
# Leave without tearing QGIS down: 3.22 can crash while its providers' network threads stop.
os._exit(0)
"""


def test_qgis_oapif_provider_opens_layers_with_the_sql_count(live_server, token, tmp_path):
    """QGIS 3.22 (Debian's python3-qgis, installed by scripts/setup.sh) finds the API definition
    through the landing page, takes its page size from it and reads whole layers. 3.22 has no
    per-connection headers: the token is added by a request preprocessor, as a script would."""
    full_world()
    names = ["events", "addresses", "grids_small", "buildings"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VIRTUAL_ENV", "PYTHON"))}
    env |= {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
    done = subprocess.run(  # noqa: S603  (Debian's python3 with QGIS, our script)
        [QGIS_PYTHON, "-c", QGIS_SCRIPT, f"{live_server.url}/ogc", token, ",".join(names)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts == {name: [True, sql_count(name), "EPSG:4326"] for name in names}, done.stderr[-3000:]
