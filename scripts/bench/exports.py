"""export_all: the whole ``addresses`` layer of the bench city (1.7 M rows) exported in every
format, with the wall time and the peak resident memory of the process doing it, beside
``ogr2ogr`` writing the same rows to the same format.

Ours runs in a fresh process per format (``python -m scripts.bench.exports <fmt> <dir>``, as an
analyst): GeoJSON and CSV are the streamed responses of ``/exports/addresses.<fmt>`` (Django's
test client inside the process, the body written to a file as it streams), GeoPackage and
Shapefile are export jobs queued by :func:`mapserver.exportjobs.export_job_request` and built by
the worker's own loop (:func:`mapserver.exportjobs.export_jobs_work`, what ``run_export_jobs``
runs). The process reports its resident memory after Django has started and before the export
(the baseline) and its peak (``ru_maxrss``): flat memory means the peak stays near the baseline
whatever the row count. The peer is GDAL 3.6's ``ogr2ogr`` reading the same SELECT (our
statement for the layer: the same rows, columns and joins) from the same database into the same
format; its peak memory is read from ``wait4``. Ours is timed inside the process from the request
(or the job's queueing) to the last byte written, leaving out Django's start (~2 s); ogr2ogr's
wall time includes its own start (a few tens of milliseconds).
Unit: rows/s, target ≥ 1× ogr2ogr; peak RSS beside in the note.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from .harness import Result, bench_reader, benchmark

FORMATS = ("geojson", "csv", "gpkg", "shp")
OGR_DRIVERS = {"geojson": "GeoJSON", "csv": "CSV", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
LAYER = "addresses"
USER = "bench-exports"


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def export_once(fmt: str, directory: Path) -> dict:
    """Export the whole layer as ``fmt`` into ``directory`` in this process; returns the rows,
    bytes written and this process's baseline and peak memory (KB)."""
    from django.test import Client

    from layers.models import ExportJob
    from layers.publishing.catalog import layer_get
    from mapserver.exportjobs import export_job_request, export_jobs_work, job_file

    user = bench_reader(USER)
    baseline = _rss_kb()
    started = time.perf_counter()
    if fmt in ("geojson", "csv"):
        client = Client(HTTP_HOST="localhost")  # an allowed host of the dev settings
        client.force_login(user)
        response = client.get(f"/exports/{LAYER}.{fmt}")
        if response.status_code != 200 or not response.streaming:
            raise RuntimeError(f"/exports/{LAYER}.{fmt} answered {response.status_code}: {response.content[:300]!r}")
        # Rows counted as the body streams (a feature's type member, or a line after the header):
        # reading the file back whole would be this process's peak.
        token = b'"Feature"' if fmt == "geojson" else b"\n"
        path, size, rows, tail = directory / f"{LAYER}.{fmt}", 0, 0, b""
        with path.open("wb") as output:
            for chunk in response.streaming_content:
                output.write(chunk)
                size += len(chunk)
                data = tail + chunk
                rows += data.count(token)
                tail = data[-(len(token) - 1) :] if len(token) > 1 else b""
        rows -= fmt == "csv"
    else:
        # A fresh job each run: an older built file of the same request would be returned as is.
        ExportJob.objects.filter(created_by=user).delete()
        job, _ = export_job_request(layer=layer_get(LAYER), fmt=fmt, query={}, user=user)
        export_jobs_work(once=True, poll=0.0)
        job.refresh_from_db()
        if job.status != ExportJob.Status.SUCCEEDED:
            raise RuntimeError(f"export job {job.pk} ended {job.status}: {job.message}")
        rows, size = job.rows_done, job_file(job).stat().st_size
    return {"rows": rows, "bytes": size, "seconds": time.perf_counter() - started, "baseline_kb": baseline,
            "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}  # fmt: skip


def _peer_sql() -> str:
    from layers.protection.access import reader_of
    from layers.publishing.catalog import layer_get
    from layers.selectors.features import features_rows_sql, selection_build

    reader = reader_of(bench_reader(USER))
    layer = layer_get(LAYER)
    selection = selection_build(layer=layer, scope=reader.scope)
    if selection.params:
        raise RuntimeError("the export's statement takes parameters; ogr2ogr cannot be given the same one")
    return features_rows_sql(selection=selection, fields=reader.fields_of(layer), geometry="{g} AS geometry")


def _run(command: list[str], env: dict) -> tuple[float, int, str]:
    """Wall time, peak RSS (KB) and output of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{command[0]} … {command[-1]} failed ({process.returncode}): {output[-600:]}")
    return elapsed, usage.ru_maxrss, output


@benchmark("export_all")
def export_all(*, repeats: int, rows: int) -> list[Result]:
    db = connection.settings_dict
    directory = Path(settings.VAR_DIR) / "bench" / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    sql = _peer_sql()
    pg = f"PG:dbname={db['NAME']} host={db['HOST']} port={db['PORT']} user={db['USER']} password={db['PASSWORD']}"
    env = os.environ | {"MINQING_PG_DATABASE": db["NAME"]}
    results = []
    for fmt in FORMATS:
        ours, peer = [], []
        for _ in range(repeats):
            for path in directory.glob("*"):
                path.unlink()
            _, _, output = _run([sys.executable, "-m", "scripts.bench.exports", fmt, str(directory)], env)
            figures = dict(line.split("=", 1) for line in output.split() if "=" in line)
            ours.append((float(figures["seconds"]), int(figures["peak_kb"]), int(figures["baseline_kb"]),
                         int(figures["rows"])))  # fmt: skip
            target = directory / f"peer.{'shp' if fmt == 'shp' else fmt}"
            options = ["-lco", "GEOMETRY=AS_XY"] if fmt == "csv" else []
            command = ["ogr2ogr", "-f", OGR_DRIVERS[fmt], str(target), pg, "-sql", sql, *options, "-nln", LAYER]
            elapsed, peak, _ = _run(command, env)
            peer.append((elapsed, peak))
        ours.sort()
        peer.sort()
        mid_ours, mid_peer = ours[len(ours) // 2], peer[len(peer) // 2]
        n = mid_ours[3]
        note = (
            f"ours {mid_ours[0]:.1f} s, peak RSS {mid_ours[1] / 1024:.0f} MB (baseline after start "
            f"{mid_ours[2] / 1024:.0f} MB, so +{(mid_ours[1] - mid_ours[2]) / 1024:.0f} MB for {n:,} rows); "
            f"ogr2ogr {mid_peer[0]:.1f} s, peak RSS {mid_peer[1] / 1024:.0f} MB"
        )
        print(f"bench: export_{fmt}: {note}", flush=True)
        how = "streamed response" if fmt in ("geojson", "csv") else "export job (run_export_jobs' loop)"
        scale = f"{n:,} addresses ({db['NAME']}), {how}, median of {repeats} fresh processes"
        results.append(Result(f"export_all_{fmt}", "rows/s", n / mid_ours[0], "ogr2ogr (GDAL 3.6)",
                              n / mid_peer[0], 1.0, scale, note))  # fmt: skip
    return results


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    django.setup()
    figures = export_once(sys.argv[1], Path(sys.argv[2]))
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
