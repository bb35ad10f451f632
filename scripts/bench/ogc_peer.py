"""OGC API Features pages over HTTP beside tipg, in the same run, on the same table.

ogc_tipg: p50 of a 1,000-feature page of the ``addresses`` collection, first and deep, from our
server (``scripts/serve.sh``: uvicorn, one worker, token authentication, the keyset SQL, the
throttles and the access decision) and from tipg 1.6.1 (PyPI, requirements-bench.txt; uvicorn,
one worker) serving the same ``layers_address`` table. One client with a kept-alive connection
(``http.client``), requests in turn. Deep: ours follows ``after`` = the id 2,000 rows before the
end (what a ``next`` link holds there), tipg ``offset`` = rows − 2,000 (what its ``next`` link
holds). tipg is asked for the table's own text columns that our layer also publishes
(``properties=code,full_text,road,door_number``); ours adds the district and small-grid codes
(joins). Target ≥ 10× on both.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from .harness import Result, bench_reader, benchmark

PAGE = 1_000
PAGE_REQUESTS = 30
PAGE_WARMUP = 3
TARGET = 10.0
TIPG_PROPERTIES = "code,full_text,road,door_number"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, path: str, headers: dict, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            link = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            link.request("GET", path, headers=headers)
            if link.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server on port {port} did not answer {path} within {seconds:.0f} s")


@contextmanager
def _server(command: list[str], env: dict, port: int, ready_path: str, headers: dict):
    log = open(Path(settings.VAR_DIR) / "bench" / f"server-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    try:
        _wait_for(port, ready_path, headers)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _page_p50(port: int, path: str, headers: dict) -> float:
    link = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    timings = []
    for i in range(PAGE_WARMUP + PAGE_REQUESTS):
        start = time.perf_counter()
        link.request("GET", path, headers=headers)
        response = link.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        features = body.count(b'"Feature"')
        if response.status != 200 or features != PAGE:
            raise RuntimeError(f"GET {path} answered {response.status} with {features} features: {body[:300]!r}")
        if i >= PAGE_WARMUP:
            timings.append(elapsed)
    link.close()
    return statistics.median(timings)


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db["HOST"] or "127.0.0.1"
    # A Unix socket directory goes percent-encoded in the host's place (tipg's settings want a
    # host; asyncpg decodes it back into the path).
    return f"postgresql://{user}{password}@{quote(host, safe='')}:{db['PORT'] or 5432}/{db['NAME']}"


@benchmark("ogc_tipg")
def ogc_tipg(*, repeats: int, rows: int) -> list[Result]:
    if shutil.which("uvicorn", path=str(Path(settings.BASE_DIR) / ".venv" / "bin")) is None:
        raise RuntimeError("uvicorn is missing from .venv")
    try:
        import tipg  # noqa: F401
    except ImportError:
        raise RuntimeError("tipg is missing: scripts/bench.sh installs requirements-bench.txt") from None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), (SELECT id FROM layers_address ORDER BY id DESC OFFSET 2000 LIMIT 1) FROM layers_address"
        )
        count, deep_after = cursor.fetchone()
    token = Token.objects.get_or_create(user=bench_reader("bench-ogc-http"))[0].key
    ours_port, peer_port = _free_port(), _free_port()
    (Path(settings.VAR_DIR) / "bench").mkdir(parents=True, exist_ok=True)
    base_env = os.environ | {"MINQING_RUN_WORKERS": "1"}
    ours_env = base_env | {"MINQING_PORT": str(ours_port)}
    peer_env = base_env | {
        "DATABASE_URL": _database_url(),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.layers_address"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
    }
    ours_headers = {"Authorization": f"Token {token}", "Accept": "application/geo+json"}
    peer_headers = {"Accept": "application/geo+json"}
    ours_first = f"/ogc/collections/addresses/items?limit={PAGE}"
    ours_deep = f"{ours_first}&after={deep_after}"
    peer_first = f"/collections/public.layers_address/items?limit={PAGE}&properties={TIPG_PROPERTIES}"
    peer_deep = f"{peer_first}&offset={count - 2000}"
    uvicorn = str(Path(settings.BASE_DIR) / ".venv" / "bin" / "uvicorn")
    peer_command = [uvicorn, "tipg.main:app", "--host", "127.0.0.1", "--port", str(peer_port), "--workers", "1"]
    figures: dict[str, list[float]] = {"ours_first": [], "ours_deep": [], "peer_first": [], "peer_deep": []}
    with (
        _server(["bash", "scripts/serve.sh"], ours_env, ours_port, "/ogc/", ours_headers),
        _server(peer_command, peer_env, peer_port, "/collections", peer_headers),
    ):
        for _ in range(repeats):
            # Interleaved, so that neither side gets a quieter minute of the machine.
            figures["ours_first"].append(_page_p50(ours_port, ours_first, ours_headers))
            figures["peer_first"].append(_page_p50(peer_port, peer_first, peer_headers))
            figures["ours_deep"].append(_page_p50(ours_port, ours_deep, ours_headers))
            figures["peer_deep"].append(_page_p50(peer_port, peer_deep, peer_headers))
    p50 = {name: statistics.median(values) for name, values in figures.items()}
    scale = (
        f"{PAGE:,}-feature pages over HTTP × {PAGE_REQUESTS} × {repeats}, addresses {count:,} rows "
        f"({connection.settings_dict['NAME']}), one uvicorn worker each"
    )
    note = (
        f"p50 first page: ours {p50['ours_first'] * 1000:.1f} ms, tipg {p50['peer_first'] * 1000:.1f} ms; "
        f"deep page: ours {p50['ours_deep'] * 1000:.1f} ms (after id {deep_after:,}), "
        f"tipg {p50['peer_deep'] * 1000:.1f} ms (offset {count - 2000:,}); tipg asked for properties={TIPG_PROPERTIES}"
    )
    return [
        Result(
            "ogc_http_first", "pages/s", 1 / p50["ours_first"], "tipg 1.6.1", 1 / p50["peer_first"], TARGET, scale, note
        ),
        Result(
            "ogc_http_deep", "pages/s", 1 / p50["ours_deep"], "tipg 1.6.1", 1 / p50["peer_deep"], TARGET, scale, note
        ),
    ]
