"""Events tiles at city scale: clustered tiles beside the plain points, and our tile server
beside tipg. Both read the bench city's year of events (:mod:`scripts.bench.events`).

events_tiles: every tile z10–z14 over the city that holds events (the tiles are found in SQL
from the events' own coordinates), each rendered uncached in process by
:func:`layers.selectors.tiles.tile_render` — the statement the tile servers run, as an analyst (city scope,
the fields the catalog gives analysts) — ``repeats`` times, the median per tile; beside it, in
the same loop, the same tile as plain points (the same layer with clustering off: the
``ST_AsMVT`` of every point, what the layer served before clusters). Sizes are of the encoded
tile before compression. Rows: the largest tile and the p95 size against the 500 KB budget, the
p95 time against 50 ms, and each of the three beside the plain points.

events_tipg: z14 tiles of the events (every z14 tile holding events; z14 draws points, so both
servers draw the same points) from our production server (``mapserver.asgi`` under uvicorn,
2 workers, tile cache off, token auth) and from tipg 1.6.1 (uvicorn, 2 workers, the same
``layers_event`` table; its buffer set to ours, 64, and its per-tile cap lifted so it draws every
point), over HTTP with keep-alive clients at 1 and 4 clients, interleaved per repeat. tipg is
asked for the table's own columns that our layer publishes (status, channel, received_at,
deadline, district_code); ours adds category, family, street, community and grid codes (joins).
Target ≥ 3× requests/s at both.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

from django.db import connection

from layers.protection.access import reader_of
from layers.protection.scope import CITY
from layers.publishing.catalog import layer_get
from layers.selectors.tiles import tile_render

from . import tiles as tile_bench
from .events import ensure_event_year
from .harness import Result, bench_reader, benchmark
from .locate import _free_port
from .ogc_peer import _database_url

ZOOMS = range(10, 15)
SIZE_BUDGET_KB = 500.0
TIME_BUDGET_MS = 50.0
TIPG_TARGET = 3.0
TIPG_PROPERTIES = "status,channel,received_at,deadline,district_code"


def event_tiles(z: int) -> list[tuple[int, int]]:
    """The tiles at zoom ``z`` that hold at least one located event (Web Mercator tile formulas
    on the stored longitude and latitude)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT floor((ST_X(location) + 180) / 360 * 2 ^ %(z)s)::int AS x,
                      floor((1 - ln(tan(radians(ST_Y(location))) + 1 / cos(radians(ST_Y(location)))) / pi())
                            / 2 * 2 ^ %(z)s)::int AS y
               FROM layers_event WHERE location IS NOT NULL ORDER BY 1, 2""",
            {"z": z},
        )
        return [(x, y) for x, y in cursor.fetchall()]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


@benchmark("events_tiles")
def events_tiles(*, repeats: int, rows: int) -> list[Result]:
    stored = ensure_event_year()
    layer = layer_get("events")
    points = dataclasses.replace(layer, cluster_maxzoom=-1)
    fields = reader_of(bench_reader("bench-events-tiles")).fields_of(layer)
    figures = {side: {"kb": [], "ms": []} for side in ("ours", "peer")}
    per_zoom = {}
    for z in ZOOMS:
        tiles = event_tiles(z)
        per_zoom[z] = [len(tiles), 0.0, 0.0]
        for x, y in tiles:
            for side, drawn in (("ours", layer), ("peer", points)):
                timings, body = [], b""
                for _ in range(repeats):
                    start = time.perf_counter()
                    body = tile_render(layer=drawn, z=z, x=x, y=y, filters={}, fields=fields, scope=CITY)
                    timings.append(time.perf_counter() - start)
                kb, ms = len(body) / 1024, statistics.median(timings) * 1000
                figures[side]["kb"].append(kb)
                figures[side]["ms"].append(ms)
                if side == "ours":
                    per_zoom[z][1], per_zoom[z][2] = max(per_zoom[z][1], kb), max(per_zoom[z][2], ms)
    count = len(figures["ours"]["kb"])
    summary = {
        side: {
            "max_kb": max(f["kb"]),
            "p95_kb": _p95(f["kb"]),
            "p95_ms": _p95(f["ms"]),
            "max_ms": max(f["ms"]),
        }
        for side, f in figures.items()
    }
    ours, peer = summary["ours"], summary["peer"]
    scale = (
        f"{count} tiles z10–z14 holding events, {stored['events']:,} events "
        f"({connection.settings_dict['NAME']}), in process, uncached, median of {repeats} per tile"
    )
    note = (
        f"clustered: max {ours['max_kb']:.0f} KB, p95 {ours['p95_kb']:.0f} KB, p95 {ours['p95_ms']:.1f} ms, "
        f"max {ours['max_ms']:.0f} ms; plain points: max {peer['max_kb']:.0f} KB, p95 {peer['p95_kb']:.0f} KB, "
        f"p95 {peer['p95_ms']:.1f} ms, max {peer['max_ms']:.0f} ms; per zoom (tiles, max KB, max ms): "
        + ", ".join(f"z{z} {n}, {kb:.0f}, {ms:.0f}" for z, (n, kb, ms) in per_zoom.items())
    )
    print(f"bench: events_tiles: {note}", flush=True)
    inverse_kb, inverse_ms = "1/MB", "1/p95 (1/s)"
    return [
        Result("events_tiles_max_size", inverse_kb, 1024 / ours["max_kb"], f"budget {SIZE_BUDGET_KB:g} KB",
               1024 / SIZE_BUDGET_KB, 1.0, scale, note),
        Result("events_tiles_p95_size", inverse_kb, 1024 / ours["p95_kb"], f"budget {SIZE_BUDGET_KB:g} KB",
               1024 / SIZE_BUDGET_KB, 1.0, scale, note),
        Result("events_tiles_p95_time", inverse_ms, 1000 / ours["p95_ms"], f"budget {TIME_BUDGET_MS:g} ms",
               1000 / TIME_BUDGET_MS, 1.0, scale, note),
        Result("events_tiles_max_size_vs_points", inverse_kb, 1024 / ours["max_kb"], "plain points",
               1024 / peer["max_kb"], 1.0, scale, note),
        Result("events_tiles_p95_time_vs_points", inverse_ms, 1000 / ours["p95_ms"], "plain points",
               1000 / peer["p95_ms"], 1.0, scale, note),
    ]  # fmt: skip


@benchmark("events_tipg")
def events_tipg(*, repeats: int, rows: int) -> list[Result]:
    try:
        import tipg  # noqa: F401
    except ImportError:
        raise RuntimeError("tipg is missing: scripts/bench.sh installs requirements-bench.txt") from None
    stored = ensure_event_year()
    z = 14
    tiles = event_tiles(z)
    ours_headers = {"Authorization": f"Token {tile_bench._token()}"}

    def ours_url(x: int, y: int) -> str:
        return f"/tiles/events/{z}/{x}/{y}.pbf"

    def peer_url(x: int, y: int) -> str:
        return f"/collections/public.layers_event/tiles/WebMercatorQuad/{z}/{x}/{y}?properties={TIPG_PROPERTIES}"

    peer_env = {
        "DATABASE_URL": _database_url(),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.layers_event"]',
        "TIPG_TILE_BUFFER": "64",
        "TIPG_MAX_FEATURES_PER_TILE": "10000000",
    }
    ours_port, peer_port = _free_port(), _free_port()
    ours_server = tile_bench._ours(ours_port, cache=False)
    try:
        peer_server = tile_bench._start(tile_bench._uvicorn("tipg.main:app", peer_port), peer_port, peer_env)
    except Exception:
        ours_server.terminate()
        raise
    figures: dict[str, list[tuple[float, float]]] = {"ours_c1": [], "peer_c1": [], "ours_c4": [], "peer_c4": []}
    seconds = tile_bench.SECONDS
    try:
        for port, headers, url in ((ours_port, ours_headers, ours_url), (peer_port, {}, peer_url)):
            tile_bench._load(port, tiles, clients=4, seconds=tile_bench.WARMUP_SECONDS, headers=headers, url=url)
        for _ in range(repeats):
            # Interleaved, so that neither side gets a quieter minute of the machine.
            for clients in (1, 4):
                for side, port, headers, url in (("ours", ours_port, ours_headers, ours_url),
                                                 ("peer", peer_port, {}, peer_url)):  # fmt: skip
                    figures[f"{side}_c{clients}"].append(
                        tile_bench._load(port, tiles, clients=clients, seconds=seconds, headers=headers, url=url)
                    )
    finally:
        for server in (ours_server, peer_server):
            server.terminate()
            server.wait(timeout=30)
    rps = {name: statistics.median(r for r, _ in values) for name, values in figures.items()}
    p50 = {name: statistics.median(p for _, p in values) for name, values in figures.items()}
    scale = (
        f"{len(tiles)} z{z} tiles holding events ({stored['events']:,} events), {seconds:g} s × {repeats} per "
        f"figure, 2 uvicorn workers each, loopback, {os.cpu_count()} cores"
    )
    note = (
        f"c=1: ours {rps['ours_c1']:.0f} rps p50 {p50['ours_c1']:.1f} ms, tipg {rps['peer_c1']:.0f} rps p50 "
        f"{p50['peer_c1']:.1f} ms; c=4: ours {rps['ours_c4']:.0f} rps p50 {p50['ours_c4']:.1f} ms, tipg "
        f"{rps['peer_c4']:.0f} rps p50 {p50['peer_c4']:.1f} ms; tipg asked for properties={TIPG_PROPERTIES}, "
        "buffer 64, no per-tile cap; ours: mapserver.asgi, tile cache off"
    )
    print(f"bench: events_tipg: {note}", flush=True)
    return [
        Result("tile_events_tipg_c1", "req/s", rps["ours_c1"], "tipg 1.6.1", rps["peer_c1"], TIPG_TARGET, scale, note),
        Result("tile_events_tipg_c4", "req/s", rps["ours_c4"], "tipg 1.6.1", rps["peer_c4"], TIPG_TARGET, scale, note),
    ]
