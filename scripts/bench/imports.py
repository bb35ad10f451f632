"""import_addresses_1m: the address importer end to end vs psycopg2 executemany and vs a bare
COPY → staging → INSERT … SELECT pipeline, into the same table with the same indexes.

Ours reads and validates the CSV, converts and checks coordinates, COPYs, links every address
to its small grid (8,700 grids) and upserts; the bare pipeline only COPYs and inserts.

import_readers: a live city's readers during a city-scale import. The address table holds
``rows`` addresses; while a third as many new ones are imported (committed, through the importer),
another process reads single addresses by id and by code, as the map wall, the tablets and the
geocoder do, one due every 5 ms; the p99 of those reads over the whole import (each timed from
when it was due), against a budget of 50 ms.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction

from importers.base import run_import
from importers.registry import AddressImporter

from .harness import Result, benchmark, median_seconds

#: The benchmark city: 100 × 87 small grids over Lanzhou's valley, ~64 vertices each.
AREA = (103.55, 35.95, 104.15, 36.20)
COLUMNS, ROWS = 100, 87

ROADS = [
    "庆阳路",
    "张掖路",
    "酒泉路",
    "皋兰路",
    "南昌路",
    "天水北路",
    "东岗西路",
    "民主西路",
    "白银路",
    "武都路",
    "中山路",
    "金昌路",
]


def ensure_city_grids() -> None:
    """8,700 small grids under 580 medium and 30 large, all in one synthetic community (SQL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_grid WHERE level = 'small'")
        if cursor.fetchone()[0] == COLUMNS * ROWS:
            return
        print("bench: building 8,700 benchmark grids", flush=True)
        cursor.execute("TRUNCATE layers_grid, layers_region CASCADE")
        cursor.execute(
            """
            INSERT INTO layers_region (code, name, level, parent_id, boundary_source) VALUES
              ('620100000000', '兰州市', 'city', NULL, '');
            INSERT INTO layers_region (code, name, level, parent_id, boundary_source)
              SELECT '620102000000', '城关区', 'district', id, '' FROM layers_region WHERE code = '620100000000';
            INSERT INTO layers_region (code, name, level, parent_id, boundary_source)
              SELECT '620102001000', '基准街道', 'street', id, '' FROM layers_region WHERE code = '620102000000';
            INSERT INTO layers_region (code, name, level, parent_id, boundary_source)
              SELECT '620102001001', '基准社区', 'community', id, '' FROM layers_region WHERE code = '620102001000';
            """
        )
        lon0, lat0, lon1, lat1 = AREA
        dx, dy = (lon1 - lon0) / COLUMNS, (lat1 - lat0) / ROWS
        cell = """ST_Multi(ST_Segmentize(ST_MakeEnvelope(%(lon0)s + %(dx)s * c0, %(lat0)s + %(dy)s * r0,
                  %(lon0)s + %(dx)s * c1, %(lat0)s + %(dy)s * r1, 4326), %(seg)s))"""
        params = {"lon0": lon0, "lat0": lat0, "dx": dx, "dy": dy, "seg": dx / 16}
        community = "(SELECT id FROM layers_region WHERE code = '620102001001')"
        cursor.execute(
            f"""
            INSERT INTO layers_grid (code, name, level, parent_id, community_id, boundary)
            SELECT format('620102001001L%%s_%%s', lc, lr), '大网格', 'large', NULL, {community},
                   {cell.replace("c0", "lc*10").replace("c1", "(lc+1)*10").replace("r0", "lr*29").replace("r1", "(lr+1)*29")}
            FROM generate_series(0, 9) lc, generate_series(0, 2) lr;
            INSERT INTO layers_grid (code, name, level, parent_id, community_id, boundary)
            SELECT format('620102001001M%%s_%%s', mc, mr), '中网格', 'medium',
                   (SELECT id FROM layers_grid WHERE code = format('620102001001L%%s_%%s', mc / 2, mr / 29)),
                   {community},
                   {cell.replace("c0", "mc*5").replace("c1", "(mc+1)*5").replace("r0", "mr*3").replace("r1", "(mr+1)*3")}
            FROM generate_series(0, 19) mc, generate_series(0, 28) mr;
            INSERT INTO layers_grid (code, name, level, parent_id, community_id, boundary)
            SELECT format('620102001001S%%s_%%s', sc, sr), '小网格', 'small',
                   (SELECT id FROM layers_grid WHERE code = format('620102001001M%%s_%%s', sc / 5, sr / 3)),
                   {community},
                   {cell.replace("c0", "sc").replace("c1", "(sc+1)").replace("r0", "sr").replace("r1", "(sr+1)")}
            FROM generate_series(0, {COLUMNS - 1}) sc, generate_series(0, {ROWS - 1}) sr;
            ANALYZE layers_grid;
            """,
            params,
        )


def address_csv(rows: int, *, seed: int = 7, first: int = 0) -> Path:
    """A deterministic CSV of ``rows`` standard addresses spread over the benchmark city, codes
    numbered from ``first``."""
    path = settings.VAR_DIR / "bench" / (f"addresses_{rows}.csv" if not first else f"addresses_{rows}_from_{first}.csv")
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lon0, lat0, lon1, lat1 = AREA
    road = np.array(ROADS)[rng.integers(0, len(ROADS), rows)]
    door = rng.integers(1, 400, rows).astype(str)
    building = rng.integers(1, 30, rows).astype(str)
    entrance = rng.integers(1, 6, rows).astype(str)
    floor = rng.integers(1, 25, rows)
    room = (floor * 100 + rng.integers(1, 5, rows)).astype(str)
    frame = pd.DataFrame(
        {
            "code": [f"620102{i:010d}" for i in range(first, first + rows)],
            "district": "城关区",
            "street": "基准街道",
            "road": road,
            "door_number": np.char.add(door, "号"),
            "compound": "",
            "building": np.char.add(building, "号楼"),
            "entrance": np.char.add(entrance, "单元"),
            "floor": floor.astype(str),
            "room": np.char.add(room, "室"),
            "lon": np.round(rng.uniform(lon0, lon1, rows), 7),
            "lat": np.round(rng.uniform(lat0, lat1, rows), 7),
        }
    )
    frame["full_text"] = (
        "甘肃省兰州市城关区基准街道"
        + frame["road"]
        + frame["door_number"]
        + frame["building"]
        + frame["entrance"]
        + frame["room"]
    )
    frame.to_csv(path, index=False)
    return path


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE layers_address CASCADE")
        cursor.execute("CHECKPOINT")


_TEXT = [
    "code",
    "district_name",
    "street_name",
    "road",
    "door_number",
    "compound_name",
    "building_number",
    "entrance",
    "floor",
    "room",
    "full_text",
]
_CSV_TEXT = [
    "code",
    "district",
    "street",
    "road",
    "door_number",
    "compound",
    "building",
    "entrance",
    "floor",
    "room",
    "full_text",
]


def _bare_pipeline(path: Path) -> None:
    """The peer: COPY the raw file into an UNLOGGED staging table, one INSERT … SELECT."""
    header = path.open(encoding="utf-8").readline().strip().split(",")
    with transaction.atomic(), connection.cursor() as cursor:
        columns = ", ".join(f"{c} {'float8' if c in ('lon', 'lat') else 'text'}" for c in header)
        cursor.execute(f"CREATE UNLOGGED TABLE bench_staging ({columns})")
        with path.open("rb") as handle:
            cursor.copy_expert(
                f"COPY bench_staging ({', '.join(header)}) FROM STDIN WITH (FORMAT csv, HEADER true)", handle
            )
        cursor.execute(
            f"""INSERT INTO layers_address ({", ".join(_TEXT)}, location, district_code)
                SELECT {", ".join(f"coalesce({c}, '')" for c in _CSV_TEXT)}, ST_SetSRID(ST_MakePoint(lon, lat), 4326), ''
                FROM bench_staging"""
        )
        cursor.execute("DROP TABLE bench_staging")


def _executemany(path: Path, rows: int) -> float:
    """The naive peer: psycopg2 ``executemany`` of one INSERT per row; returns rows/s."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=rows)
    values = [(*(row[c] for c in _CSV_TEXT), float(row["lon"]), float(row["lat"])) for row in frame.to_dict("records")]
    placeholders = ", ".join(["%s"] * len(_TEXT))
    with transaction.atomic(), connection.cursor() as cursor:
        start = time.perf_counter()
        cursor.executemany(
            f"INSERT INTO layers_address ({', '.join(_TEXT)}, location, district_code) "
            f"VALUES ({placeholders}, ST_SetSRID(ST_MakePoint(%s, %s), 4326), '')",
            values,
        )
        elapsed = time.perf_counter() - start
    return rows / elapsed


@benchmark("import_addresses", data="synthetic")
def import_addresses(*, repeats: int, rows: int) -> list[Result]:
    ensure_city_grids()
    path = address_csv(rows)
    importer = AddressImporter()
    ours = rows / median_seconds(lambda: run_import(importer, path, commit=True), repeats=repeats, before=_truncate)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE grid_id IS NOT NULL), count(*) FROM layers_address")
        with_grid, total = cursor.fetchone()
    bare = rows / median_seconds(lambda: _bare_pipeline(path), repeats=repeats, before=_truncate)
    # executemany runs once over every row: at its speed repeats would take minutes each, and a
    # small sample into an empty table would flatter it (index upkeep grows with the table).
    _truncate()
    naive = _executemany(path, rows)
    _truncate()
    scale = f"{rows:,} addresses, 8,700 grids"
    note = f"ours also validated, converted and linked {with_grid:,}/{total:,} rows to small grids"
    return [
        Result("import_addresses", "rows/s", ours, "COPY + INSERT…SELECT (bare)", bare, 0.7, scale, note),
        Result("import_addresses", "rows/s", ours, "psycopg2 executemany", naive, 4.0, scale, "executemany timed once"),
    ]


#: Interval of the reader's schedule (seconds): 200 reads a second.
READ_INTERVAL = 0.005


def _read_addresses(params: dict, stop, ids: tuple[int, int], codes: list[str], results) -> None:
    """In a process of its own (as the wall's and the tablets' servers are): read one address
    at a time, alternately by id and by code, on a fixed schedule (one every READ_INTERVAL)
    until ``stop``, then send the latencies through ``results``. Each read's latency runs from
    the time it was due, not from when it was sent: a read stuck behind a lock for ten seconds
    delays the two thousand reads due meanwhile, as it would delay the wall's and the tablets'
    requests (counted from sending, one stuck read would be one slow sample among thousands and
    the p99 would hide the stall)."""
    import psycopg2

    rng = np.random.default_rng(5)
    latencies: list[float] = []
    # Autocommit and no "with connection" block (psycopg2 opens a transaction for one): each read
    # is its own transaction, as a web request's is, and holds no lock between reads.
    reader = psycopg2.connect(**params)
    reader.autocommit = True
    try:
        cursor = reader.cursor()
        due = time.perf_counter()
        while not stop.is_set():
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if len(latencies) % 2:
                key = "id", int(rng.integers(ids[0], ids[1] + 1))
            else:
                key = "code", codes[int(rng.integers(0, len(codes)))]
            cursor.execute(f"SELECT id, code, full_text, grid_id FROM layers_address WHERE {key[0]} = %s", [key[1]])
            cursor.fetchall()
            done = time.perf_counter()
            # Every read that fell due while this one waited counts from its own due time.
            while due <= done:
                latencies.append(done - due)
                due += READ_INTERVAL
    finally:
        reader.close()
    results.send(latencies)


@benchmark("import_readers", data="synthetic")
def import_readers(*, repeats: int, rows: int) -> list[Result]:
    ensure_city_grids()
    base, extra = address_csv(rows), address_csv(rows // 3, seed=8, first=rows)
    importer = AddressImporter()
    _truncate()
    run_import(importer, base, commit=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE layers_address")
        cursor.execute("SELECT min(id), max(id) FROM layers_address")
        ids = cursor.fetchone()
    codes = [f"620102{i:010d}" for i in range(0, rows, max(1, rows // 10_000))]
    p99s, p50s, worst, reads, seconds = [], [], [], [], []
    for _ in range(repeats):
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM layers_address WHERE code >= %s", [f"620102{rows:010d}"])
            cursor.execute("VACUUM ANALYZE layers_address")
        context = multiprocessing.get_context("fork")
        stop, (receive, send) = context.Event(), context.Pipe(duplex=False)
        reader = context.Process(
            target=_read_addresses, args=(connection.get_connection_params(), stop, ids, codes, send)
        )
        reader.start()
        time.sleep(1.0)  # the reader's own baseline before the import starts
        start = time.perf_counter()
        report = run_import(importer, extra, commit=True)
        seconds.append(time.perf_counter() - start)
        time.sleep(0.5)
        stop.set()
        latencies = receive.recv()
        reader.join()
        assert report.counts["created"] == rows // 3, report.counts
        ordered = sorted(latencies)
        p99s.append(ordered[int(0.99 * (len(ordered) - 1))])
        p50s.append(statistics.median(ordered))
        worst.append(ordered[-1])
        reads.append(len(ordered))
    p99 = statistics.median(p99s)
    scale = f"{rows // 3:,} new addresses into {rows:,}, 8,700 grids"
    note = (
        f"reads by id and by code due every {READ_INTERVAL * 1000:g} ms from another process during the import, "
        "latency from the time each was due "
        f"(median of {repeats}: {statistics.median(reads):,.0f} reads, p50 {statistics.median(p50s) * 1000:.2f} ms, "
        f"p99 {p99 * 1000:.2f} ms, slowest {statistics.median(worst) * 1000:.0f} ms; the import took "
        f"{statistics.median(seconds):.1f} s)"
    )
    return [Result("import_readers", "1/p99 (1/s)", 1 / p99, "target p99 50 ms", 1 / 0.050, 1.0, scale, note)]
