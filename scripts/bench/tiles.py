"""Vector tile benchmark, beside its peer in the same run.

tile_grids: z14 tiles of ``grids_small`` over the city, rotating over every z14 tile that
intersects the small grids' extent (never one hot tile). Ours is what production serves,
``mapserver.asgi`` under uvicorn (2 workers; the tile URL answered by the asynchronous tile
server with token auth as a superuser, the tile cache OFF via ``MINQING_TILE_CACHE_SECONDS=0``);
the peer is a minimal uvicorn + asyncpg endpoint (2 workers, pool of 4 per worker) running the
same SQL (``scripts/bench/tiles_peer.py``). Clients are Python threads with keep-alive
connections on loopback, each request timed. Rows: requests/s at 4 clients (ours uncached /
peer), p50 at one client (ratio against the 5 ms budget), requests/s at 4 clients with the cache
warm, and the Django view itself under gunicorn (2 sync workers, cache off) for the record.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from basemaps.tiles import tiles_covering

from .harness import Result, bench_reader, benchmark
from .locate import _free_port

LAYER = "grids_small"
ZOOM = 14
#: Seconds each measurement runs (after a warm-up pass of WARMUP_SECONDS).
SECONDS = 8.0
WARMUP_SECONDS = 2.0


def _tiles() -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(boundary) e FROM layers_grid WHERE level = 'small') q"
        )
        bbox = cursor.fetchone()
    return list(tiles_covering(bbox, ZOOM))


def _token() -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=bench_reader("bench-tiles", superuser=True))[0].key


def _wait(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("the server exited before it listened") from None
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the server did not listen within 30 s")


def _start(command: list[str], port: int, extra_env: dict[str, str]) -> subprocess.Popen:
    env = os.environ | {"DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "settings.dev")}
    env["MINQING_PG_DATABASE"] = connection.settings_dict["NAME"]
    env |= extra_env
    # The server's own output goes to var/bench/ so that a failed run can be read afterwards.
    log = Path(settings.BASE_DIR, "var", "bench", f"tile-server-{Path(command[1]).name}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603  (our own venv's servers, fixed arguments)
            command, cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    _wait(server, port)
    return server


def _uvicorn(app: str, port: int) -> list[str]:
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    return [uvicorn, app, "--port", str(port), "--host", "127.0.0.1",
            "--workers", "2", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]  # fmt: skip


def _ours(port: int, *, cache: bool) -> subprocess.Popen:
    return _start(_uvicorn("mapserver.asgi:application", port), port, _cache_env(cache))


def _django_view(port: int) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "mapserver.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    return _start(command, port, _cache_env(False))


def _cache_env(cache: bool) -> dict[str, str]:
    return {"MINQING_TILE_CACHE_SECONDS": "3600" if cache else "0"}


def _peer(port: int) -> subprocess.Popen:
    db = connection.settings_dict
    dsn = f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}&port={db['PORT']}"
    return _start(
        _uvicorn("scripts.bench.tiles_peer:app", port), port, {"MINQING_PEER_DSN": dsn, "MINQING_PEER_LAYER": LAYER}
    )


def _load(
    port: int,
    tiles: list[tuple[int, int]],
    *,
    clients: int,
    seconds: float,
    headers: dict,
    url: Callable[[int, int], str] | None = None,
) -> tuple[float, float]:
    """Requests/s and p50 (ms) of ``clients`` keep-alive clients for ``seconds``, each walking the
    tiles from its own offset (``url(x, y)`` the path of a tile; default this module's layer at
    :data:`ZOOM`). Every answer is checked: 200 with a Content-Length."""
    url = url or (lambda x, y: f"/tiles/{LAYER}/{ZOOM}/{x}/{y}.pbf")
    timings: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds
    errors: list[str] = []

    def run(k: int) -> None:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = k * len(tiles) // clients
        while time.monotonic() < stop:
            x, y = tiles[i % len(tiles)]
            i += 1
            start = time.perf_counter()
            client.request("GET", url(x, y), headers=headers)
            response = client.getresponse()
            body = response.read()
            timings[k].append(time.perf_counter() - start)
            if response.status != 200 or response.getheader("Content-Length") != str(len(body)):
                errors.append(f"{response.status} {body[:120]!r}")
                return
        client.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        raise RuntimeError(f"tile server answered {errors[0]}")
    flat = [t for per in timings for t in per]
    return len(flat) / elapsed, statistics.median(flat) * 1000


def _measure(port: int, tiles, headers) -> dict[str, tuple[float, float]]:
    _load(port, tiles, clients=4, seconds=WARMUP_SECONDS, headers=headers)
    return {
        "c1": _load(port, tiles, clients=1, seconds=SECONDS, headers=headers),
        "c4": _load(port, tiles, clients=4, seconds=SECONDS, headers=headers),
    }


@benchmark("tile_grids")
def tile_grids(*, repeats: int, rows: int) -> list[Result]:
    tiles = _tiles()
    auth = {"Authorization": f"Token {_token()}"}
    measured = {}
    for name, start, headers in (
        ("ours", lambda port: _ours(port, cache=False), auth),
        ("peer", _peer, {}),
        ("cached", lambda port: _ours(port, cache=True), auth),
        ("django", _django_view, auth),
    ):
        port = _free_port()
        server = start(port)
        try:
            if name == "cached":  # fill the cache of both workers before measuring
                _load(port, tiles, clients=4, seconds=max(WARMUP_SECONDS, len(tiles) / 100), headers=headers)
            measured[name] = _measure(port, tiles, headers)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ours, peer, cached, django = (measured[name] for name in ("ours", "peer", "cached", "django"))
    scale = f"{len(tiles)} z14 tiles of {LAYER}"
    summary = (
        f"c=1: ours {ours['c1'][0]:.0f} rps p50 {ours['c1'][1]:.2f} ms, peer {peer['c1'][0]:.0f} rps "
        f"p50 {peer['c1'][1]:.2f} ms; c=4: ours {ours['c4'][0]:.0f} rps p50 {ours['c4'][1]:.2f} ms, peer "
        f"{peer['c4'][0]:.0f} rps p50 {peer['c4'][1]:.2f} ms; cache warm c=4: {cached['c4'][0]:.0f} rps "
        f"p50 {cached['c4'][1]:.2f} ms; the Django view under gunicorn (2 sync workers) c=4: "
        f"{django['c4'][0]:.0f} rps p50 {django['c4'][1]:.2f} ms. Ours: mapserver.asgi under uvicorn (uvloop, "
        "httptools) 2 workers, tile cache off; peer: uvicorn 2 workers + asyncpg, same SQL."
    )
    print(f"bench: tile_grids: {summary}", flush=True)
    return [
        Result("tile_grids_c4", "req/s", ours["c4"][0], "uvicorn+asyncpg", peer["c4"][0], 0.8, scale, summary),
        # p50 as "per second" so higher is better: 1000 / p50 ms. Target ratio 1.0 against 5 ms.
        Result("tile_grids_p50_c1", "1/p50 (1/s)", 1000 / ours["c1"][1], "target 5 ms", 200.0, 1.0, scale),
        Result("tile_grids_cached_c4", "req/s", cached["c4"][0], "ours uncached", ours["c4"][0], 1.0, scale),
    ]
