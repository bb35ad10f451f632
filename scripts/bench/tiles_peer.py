"""The peer of the tile benchmark: a minimal ASGI endpoint (uvicorn + asyncpg) running the same
``ST_AsMVT`` statement as the Django view (built by :func:`layers.selectors.tiles.tile_sql` for a reader
who sees every field of the whole city), with no authentication, no cache and no framework: the ceiling a thin
async server reaches on this database. Benchmark use only; ``scripts/bench/tiles.py`` starts it.

Environment: ``MINQING_PEER_DSN`` (asyncpg DSN), ``MINQING_PEER_LAYER`` (layer id).
"""

from __future__ import annotations

import os
import re

import asyncpg

from layers.protection.scope import CITY
from layers.publishing.catalog import layer_get
from layers.selectors.tiles import tile_sql

_LAYER = layer_get(os.environ.get("MINQING_PEER_LAYER", "grids_small"))
_PATH = re.compile(r"^/tiles/[^/]+/(\d+)/(\d+)/(\d+)\.pbf$")
_pool: asyncpg.Pool | None = None


def _numbered(sql: str) -> str:
    """psycopg's ``%s`` placeholders as asyncpg's ``$1, $2, …``."""
    counter = iter(range(1, 1_000))
    return re.sub(r"%s", lambda _: f"${next(counter)}", sql)


async def app(scope, receive, send) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(os.environ["MINQING_PEER_DSN"], min_size=2, max_size=4)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    match = _PATH.match(scope["path"])
    if match is None:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    z, x, y = (int(part) for part in match.groups())
    sql, params = tile_sql(layer=_LAYER, z=z, x=x, y=y, filters={}, fields=_LAYER.fields, scope=CITY)
    async with _pool.acquire() as connection:
        body = await connection.fetchval(_numbered(sql), *params) or b""
    headers = [(b"content-type", b"application/vnd.mapbox-vector-tile"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": bytes(body)})
