"""OGC API Features and export benchmarks, each beside its peer in the same run.

ogc_items: p50 of ``GET /ogc/collections/addresses/items?limit=1000`` (in process through
    Django's test client: URL routing, session auth, DRF, the keyset SQL, the envelope) at the
    first page and at a page deep in the collection (``after`` = an id 2,000 rows before the
    end); the budget is 50 ms p50 and deep ≤ 1.5× first.
export_geojson: the whole ``addresses`` layer as GeoJSON through ``features_stream`` (the
    export's generator, consumed and counted) vs ``ogr2ogr -f GeoJSON`` reading the same table
    (all its rows) from PostGIS; features/s, target ≥ 2×; with our peak RSS before and after.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from django.db import connection

from layers.protection.scope import CITY
from layers.publishing.catalog import layer_get
from layers.selectors.features import STREAM_BATCH, features_stream

from .harness import Result, bench_reader, benchmark, median_seconds

PAGE = 1_000
PAGE_REQUESTS = 50
PAGE_WARMUP = 5


def _client():
    from django.test import Client

    client = Client(HTTP_HOST="localhost")  # an allowed host of the dev settings
    client.force_login(bench_reader("bench-ogc"))
    return client


def _page_latencies(client, query: dict) -> list[float]:
    timings = []
    for i in range(PAGE_WARMUP + PAGE_REQUESTS):
        start = time.perf_counter()
        response = client.get("/ogc/collections/addresses/items", query)
        body = response.content
        elapsed = time.perf_counter() - start
        if response.status_code != 200 or body.count(b'"Feature"') != PAGE:
            raise RuntimeError(f"items answered {response.status_code}: {body[:200]!r}")
        if i >= PAGE_WARMUP:
            timings.append(elapsed)
    return timings


def _rows() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), (SELECT id FROM layers_address ORDER BY id DESC OFFSET 2000 LIMIT 1) FROM layers_address"
        )
        return cursor.fetchone()


@benchmark("ogc_items")
def ogc_items(*, repeats: int, rows: int) -> list[Result]:
    count, deep_after = _rows()
    database = connection.settings_dict["NAME"]
    client = _client()
    first = statistics.median(statistics.median(_page_latencies(client, {"limit": PAGE})) for _ in range(repeats))
    deep = statistics.median(
        statistics.median(_page_latencies(client, {"limit": PAGE, "after": deep_after})) for _ in range(repeats)
    )
    scale = f"{PAGE:,}-feature pages × {PAGE_REQUESTS} × {repeats}, addresses {count:,} rows ({database})"
    note = (
        f"first page p50 {first * 1000:.1f} ms, deep page (after id {deep_after:,}) p50 {deep * 1000:.1f} ms; "
        "in process through Django's test client (routing, session auth, DRF, keyset SQL, GeoJSON built by PostGIS)"
    )
    return [
        Result("ogc_items", "pages/s", 1 / first, "p50 budget 50 ms", 20.0, 1.0, scale, note),
        Result("ogc_items_deep", "pages/s", 1 / deep, "first page", 1 / first, 1 / 1.5, scale, note),
    ]


def _ours(layer) -> tuple[int, int]:
    size = features = 0
    for chunk in features_stream(layer=layer, fields=layer.fields, scope=CITY):
        size += len(chunk)
        features += chunk.count('"type" : "Feature"') + chunk.count('"type": "Feature"')
    return features, size


def _ogr2ogr(target: Path) -> None:
    settings = connection.settings_dict
    source = f"PG:host={settings['HOST']} port={settings['PORT']} dbname={settings['NAME']} user={settings['USER']}"
    target.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603  (gdal-bin, fixed arguments)
        [shutil.which("ogr2ogr"), "-f", "GeoJSON", str(target), source, "layers_address"],
        check=True,
        capture_output=True,
    )


@benchmark("export_geojson")
def export_geojson(*, repeats: int, rows: int) -> list[Result]:
    if not shutil.which("ogr2ogr"):
        raise RuntimeError("ogr2ogr (gdal-bin) is needed for the export peer")
    layer = layer_get("addresses")
    count, _ = _rows()
    database = connection.settings_dict["NAME"]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers = {}

    def run_ours() -> None:
        answers["ours"] = _ours(layer)

    ours_s = median_seconds(run_ours, repeats=repeats)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    features, size = answers["ours"]
    if features != count:
        raise AssertionError(f"features_stream wrote {features:,} features of {count:,}")
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / "out.json"
        peer_s = median_seconds(lambda: _ogr2ogr(target), repeats=repeats)
        peer_size = target.stat().st_size
    scale = f"{count:,} points, addresses ({database})"
    note = (
        f"ours {ours_s:.1f} s ({size / 1e6:,.0f} MB of GeoJSON, the catalog's 6 fields) vs ogr2ogr {peer_s:.1f} s "
        f"({peer_size / 1e6:,.0f} MB, every column of layers_address, written to a file); peak RSS of this process "
        f"{rss_before / 1024:,.0f} MB before the exports and {rss_after / 1024:,.0f} MB after "
        f"(server-side cursor, {STREAM_BATCH:,} rows per fetch: flat memory)"
    )
    return [
        Result("export_geojson", "features/s", count / ours_s, "ogr2ogr -f GeoJSON", count / peer_s, 2.0, scale, note)
    ]
