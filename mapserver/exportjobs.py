"""Export jobs (:class:`layers.models.ExportJob`): GeoPackage and zipped Shapefile exports, built
by the export worker (``manage.py run_export_jobs``) and never by a web worker.

Why: a whole layer as a file cannot be streamed (a GeoPackage is an SQLite database, a
Shapefile three files in a zip), and building one for 1.7 M addresses in a request held a web
worker for many seconds and all the rows in its memory: the process stopped answering its other
requests and its health check, and uvicorn replaced it. Now the request only checks the
parameters and queues a job (202 with its state); the worker reads the rows through a
server-side cursor ``MINQING_EXPORT_BATCH`` at a time and hands the batches to GDAL as one Arrow
stream, so its memory is one batch whatever the layer's size, and records its progress on the row.

* :func:`export_job_request` checks nothing itself (the view has parsed the query) and returns
  the requester's job for the same layer, format and query when one is queued, running or built
  and not yet expired, else queues a new one.
* :func:`export_job_claim` takes the oldest queued job (``SELECT … FOR UPDATE SKIP LOCKED``)
  and holds a session advisory lock on it while it runs; :func:`export_jobs_recover` queues
  again the running jobs whose lock nobody holds (their worker died), up to
  ``MINQING_EXPORT_ATTEMPTS`` starts.
* :func:`export_job_run` builds the file as its owner reads the layer *now* (the one access
  decision, :func:`layers.protection.access.reader_of`: fields and data scope), audits it with the rows
  written, and marks the job succeeded or failed with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import TextIO

import pyarrow as pa
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

import pyogrio

from layers.database.jobqueue import JobQueue
from layers.database.reading import reading
from layers.errors import DomainError
from layers.models import ExportJob
from layers.protection.access import reader_of
from layers.protection.audit import Actor, audit_record
from layers.publishing.catalog import Field, Layer, layer_get
from layers.selectors.exports import selection_count
from layers.selectors.features import features_rows_sql, selection_build

from . import params
from .errors import MinqingError

logger = logging.getLogger("minqing.exports")

#: Formats built as files by the worker (the others stream from the request).
FILE_FORMATS = ("gpkg", "shp")
#: First key of the two-key advisory locks a worker holds on its running jobs ("EXPJ").
ADVISORY_CLASS = 0x4558504A
#: Export jobs as a queue; a new start counts its rows again.
QUEUE = JobQueue(model=ExportJob, lock_class=ADVISORY_CLASS, fresh=lambda: {"rows_done": 0, "rows_total": None})


def request_key(*, layer: str, fmt: str, query: dict[str, str]) -> str:
    text = json.dumps([layer, fmt, sorted(query.items())], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def expires_at(job: ExportJob) -> dt.datetime | None:
    if job.finished_at is None or job.status != ExportJob.Status.SUCCEEDED:
        return None
    return job.finished_at + dt.timedelta(hours=settings.MINQING_EXPORT_KEEP_HOURS)


def job_folder(job: ExportJob) -> Path:
    return Path(settings.MINQING_EXPORT_DIR) / str(job.folder)


def job_file(job: ExportJob) -> Path | None:
    """The built file of a succeeded, unexpired job, if it is still there."""
    expiry = expires_at(job)
    if expiry is None or expiry <= timezone.now():
        return None
    path = job_folder(job) / job.file_name
    return path if path.is_file() else None


def export_job_request(*, layer: Layer, fmt: str, query: dict[str, str], user) -> tuple[ExportJob, bool]:
    """The requester's job for this file: one already queued, running or built (and not expired)
    for the same layer, format and query, else a new queued one. Returns it and whether it is new."""
    key = request_key(layer=layer.id, fmt=fmt, query=query)
    with transaction.atomic():
        # One request at a time per account and file: two clicks make one job.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ADVISORY_CLASS, f"{user.pk}:{key}"])
        for job in ExportJob.objects.filter(created_by=user, request_key=key).exclude(status=ExportJob.Status.FAILED):
            if job.status != ExportJob.Status.SUCCEEDED or job_file(job) is not None:
                return job, False
        job = ExportJob.objects.create(layer=layer.id, format=fmt, query=query, request_key=key, created_by=user)
    return job, True


def export_job_get(*, job_id: int, user) -> ExportJob | None:
    """The job if it is this user's (another account's job is not told apart from none)."""
    return ExportJob.objects.filter(pk=job_id, created_by_id=user.pk).first()


# --- the worker -----------------------------------------------------------------------------------


def export_job_claim(*, worker: str | None = None) -> ExportJob | None:
    """The oldest queued job, now running and locked by this worker (:meth:`JobQueue.claim`)."""
    return QUEUE.claim(worker=worker)


def export_jobs_recover() -> list[int]:
    """Queue again (or, after ``MINQING_EXPORT_ATTEMPTS`` starts, fail) the running jobs whose
    worker is gone: nobody holds their advisory lock."""
    recovered = []
    with transaction.atomic():
        for job in QUEUE.orphans():
            stopped = f"the worker {job.worker} stopped while building the file"
            if job.attempts < settings.MINQING_EXPORT_ATTEMPTS:
                job.status, job.message = ExportJob.Status.QUEUED, f"{stopped}; queued again"
            else:
                job.status, job.message = ExportJob.Status.FAILED, f"{stopped} ({job.attempts} times); ask again"
                job.finished_at = timezone.now()
            job.save(update_fields=["status", "message", "finished_at"])
            shutil.rmtree(job_folder(job), ignore_errors=True)
            recovered.append(job.pk)
            logger.warning("export job %s: %s", job.pk, job.message)
    return recovered


def export_jobs_clean() -> int:
    """Removes the files of jobs built more than ``MINQING_EXPORT_KEEP_HOURS`` ago; the rows stay
    (the audit log names them). Returns how many folders went."""
    before = timezone.now() - dt.timedelta(hours=settings.MINQING_EXPORT_KEEP_HOURS)
    removed = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, finished_at__lt=before):
        folder = job_folder(job)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def export_job_run(job: ExportJob) -> ExportJob:
    """Builds the job's file (see the module's docstring) and records the outcome on the row."""
    folder = job_folder(job)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        name, rows = _build(job, folder)
    except DomainError as error:
        return _finish(job, status=ExportJob.Status.FAILED, message=str(error.message))
    except Exception:
        logger.exception("export job %s failed", job.pk)
        shutil.rmtree(folder, ignore_errors=True)
        return _finish(job, status=ExportJob.Status.FAILED, message="the file could not be built; ask again")
    finally:
        QUEUE.release(job.pk)
    job.file_name, job.file_size, job.rows_done = name, (folder / name).stat().st_size, rows
    user = job.created_by
    audit_record(
        action="export",
        target=f"layer:{job.layer}",
        detail={"format": job.format, "filters": job.query, "rows": rows, "job": job.pk},
        actor=Actor(user.pk, user.get_username()),
    )
    return _finish(job, status=ExportJob.Status.SUCCEEDED, message="")


def _finish(job: ExportJob, *, status: str, message: str) -> ExportJob:
    job.status, job.message, job.finished_at = status, message, timezone.now()
    job.save(update_fields=["status", "message", "finished_at", "file_name", "file_size", "rows_done"])
    return job


class _Refused(MinqingError):
    code = "export_refused"


def _build(job: ExportJob, folder: Path) -> tuple[str, int]:
    """Writes the file into ``folder`` batch by batch; returns its name and the rows written."""
    from .views.ogc import FILTER_PARAMETERS, parse_feature_filters  # the exports' own parser

    reader = reader_of(job.created_by)
    layer = layer_get(job.layer)
    if layer is None or not reader.reads_layer(layer):
        raise _Refused(f"the layer {job.layer!r} is not readable by {job.created_by.get_username()} any more")
    fields = reader.fields_of(layer)
    chosen = parse_feature_filters(job.query, layer, fields, accepted=(*FILTER_PARAMETERS, "crs"))
    crs = params.parse_output_crs(job.query).in_gis_order()
    selection = selection_build(layer=layer, scope=reader.scope, **chosen)
    source = reading()
    job.rows_total = selection_count(selection=selection)
    ExportJob.objects.filter(pk=job.pk).update(rows_total=job.rows_total)
    shapefile = job.format == "shp"
    path = folder / f"{layer.id}.{'shp' if shapefile else 'gpkg'}"
    point = layer.geometry_type == "Point"
    # Polygons as MultiPolygons: a layer's rows mix both, and a file's layer has one type.
    geometry = "ST_AsBinary({g}) AS geometry" if point else "ST_AsBinary(ST_Multi({g})) AS geometry"
    sql = features_rows_sql(selection=selection, fields=fields, geometry=geometry, crs=crs)
    schema = _arrow_schema(fields)
    written = 0

    def batches():
        """The rows as Arrow record batches, read through a server-side cursor; the progress is
        recorded after each batch."""
        nonlocal written
        source.ensure_connection()
        # WITH HOLD: the cursor outlives its statement's transaction, so the progress written
        # between batches (autocommit) is seen by the requester at once.
        with source.connection.cursor(name=f"export_{uuid.uuid4().hex}", withhold=True) as cursor:
            cursor.itersize = settings.MINQING_EXPORT_BATCH
            cursor.execute(sql, selection.params)
            while rows := cursor.fetchmany(settings.MINQING_EXPORT_BATCH):
                yield _arrow_batch(rows, schema, fields)
                written += len(rows)
                ExportJob.objects.filter(pk=job.pk).update(rows_done=written)

    # One dataset open for the whole layer, fed batch by batch: GDAL writes each batch as it
    # comes (memory stays one batch), with no geometry objects made in Python on the way.
    pyogrio.write_arrow(
        pa.RecordBatchReader.from_batches(schema, batches()),
        path,
        driver="ESRI Shapefile" if shapefile else "GPKG",
        layer=None if shapefile else layer.id,
        geometry_name="geometry",
        geometry_type="Point" if point else "MultiPolygon",
        crs=f"EPSG:{crs.srid}",
        encoding="UTF-8" if shapefile else None,
    )
    if not shapefile:
        return path.name, written
    archive_path = folder / f"{layer.id}.zip"
    # The lightest compression: a .dbf is mostly the padding of its fixed-width text fields,
    # which any level shrinks about tenfold, and the higher levels cost several times the time.
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for part in sorted(folder.glob(f"{layer.id}.*")):
            if part.suffix != ".zip":
                archive.write(part, part.name)
                part.unlink()
    return archive_path.name, written


#: Arrow types of the catalog's field types. Times are ISO 8601 text: Shapefile has no date-time
#: type, and GeoPackage readers differ on its time zones.
_ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": pa.string(),
    "date": pa.string(),
}


def _arrow_schema(fields: tuple[Field, ...]) -> pa.Schema:
    """The columns of :func:`layers.selectors.features.features_rows_sql`: id, the fields, the geometry (WKB)."""
    return pa.schema([("id", pa.int64()), *((f.name, _ARROW_TYPES[f.type]) for f in fields), ("geometry", pa.binary())])


def _arrow_batch(rows: list[tuple], schema: pa.Schema, fields: tuple[Field, ...]) -> pa.RecordBatch:
    """One batch of rows (id, the fields, the geometry's WKB) as an Arrow record batch of ``schema``."""
    ids, *values, geometries = zip(*rows, strict=True)
    arrays = [pa.array(ids, type=pa.int64())]
    for field, column in zip(fields, values, strict=True):
        if field.type in ("datetime", "date"):
            column = [v.isoformat() if v is not None else None for v in column]
        elif field.type == "number":  # numeric columns arrive as Decimal
            column = [float(v) if v is not None else None for v in column]
        arrays.append(pa.array(column, type=_ARROW_TYPES[field.type]))
    arrays.append(pa.array([bytes(g) if g is not None else None for g in geometries], type=pa.binary()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def export_jobs_work(
    *, once: bool = False, stop: threading.Event | None = None, log: TextIO | None = None, poll: float | None = None
) -> int:
    """The worker's loop (:meth:`JobQueue.work`): recover, clean, claim and run until ``stop`` is
    set (or, ``once``, until nothing is queued). Returns how many jobs it ran."""

    def run(job: ExportJob) -> None:
        started = time.monotonic()
        job = export_job_run(job)
        if log is not None:
            log.write(
                f"export job {job.pk}: {job.layer}.{job.format} {job.status}, {job.rows_done:,} rows "
                f"in {time.monotonic() - started:.1f} s{': ' + job.message if job.message else ''}\n"
            )
            log.flush()

    def housekeeping() -> None:
        export_jobs_recover()
        export_jobs_clean()

    return QUEUE.work(
        run=run,
        housekeeping=housekeeping,
        once=once,
        stop=stop,
        poll=settings.MINQING_EXPORT_POLL_SECONDS if poll is None else poll,
    )
