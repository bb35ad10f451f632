"""Import jobs (:class:`importers.models.ImportJob`): created from an upload, claimed and run by
the worker (``manage.py run_import_jobs``), read by the import page.

* :func:`import_job_create` stores an upload (size limit, suffix of the chosen importer, the
  archive guards of :func:`importers.sources.check_archive`) and queues its dry run;
  :func:`import_job_commit` queues the commit of a dry run with what the steward accepted.
* :func:`import_job_claim` takes the oldest queued job (``SELECT … FOR UPDATE SKIP LOCKED``, so
  several workers never take the same one) and holds a session advisory lock on it while it
  runs; :func:`import_jobs_recover` finds running jobs whose lock nobody holds (their worker
  died: the connection closed and PostgreSQL rolled the import back) and queues them again, up
  to ``MINQING_IMPORT_ATTEMPTS`` starts.
* :func:`import_job_run` runs one job through :func:`importers.base.run_import`, as its creator
  (audit log), with its progress recorded on the row through a connection of its own (the
  import's transaction is invisible until it commits); a commit marks the job done inside the
  import's transaction, so the job says "succeeded" exactly when the rows are there.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.db.models import Max
from django.utils import timezone

from layers.database.jobqueue import JobQueue
from layers.errors import DomainError, InvalidInput
from layers.protection.audit import Actor, acting_as

from .base import Importer, ImportFailed, run_import
from .kinds import IMPORTERS
from .models import ImportJob
from .progress import Counter, Lines, Progress, Several
from .report import ImportReport, RejectionLimit
from .sources import SourceError, check_archive, store_upload, write_json

logger = logging.getLogger("minqing.imports")

#: The kinds the import page offers, in the order a city is loaded.
KINDS = ("divisions", "boundaries", "grids", "addresses", "persons", "units")
#: Rejections and topology problems kept on the job for the page (the report file has them all).
SUMMARY_ROWS = 100
#: First key of the two-key advisory locks a worker holds on its running jobs ("IMPJ").
ADVISORY_CLASS = 0x494D504A
REPORT_NAME, PREVIEW_NAME = "rejected.csv", "preview.geojson"


class JobConflict(DomainError):
    """The job is not in a state that allows the action (409)."""

    status = 409
    code = "conflict"


def importer_class(kind: str) -> type[Importer]:
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}, got {kind[:40]!r}")
    return IMPORTERS[kind]


def job_folder(job: ImportJob) -> Path:
    return Path(settings.MINQING_IMPORT_DIR) / str(job.folder)


def report_file(job: ImportJob) -> Path | None:
    """The rejection report of a job, if it has one."""
    path = job_folder(job) / f"{job.pk}-{REPORT_NAME}"
    return path if job.has_report and path.is_file() else None


def preview_file(job: ImportJob) -> Path | None:
    path = job_folder(job) / f"{job.pk}-{PREVIEW_NAME}"
    return path if job.has_preview and path.is_file() else None


# --- creating jobs --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def upload_name(name: str) -> str:
    """The name to show for an uploaded file: its last path part, without control characters.

    >>> [upload_name(n) for n in ("grids.gpkg", "C:\\\\data\\\\网格.zip", "../../etc/passwd", "a\\x00b.csv", "")]
    ['grids.gpkg', '网格.zip', 'passwd', 'ab.csv', 'upload']
    """
    base = _UNSAFE.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return base[-200:] or "upload"


def import_job_create(*, kind: str, upload, options: dict, user) -> ImportJob:
    """Store ``upload`` (a Django ``UploadedFile``) and queue its dry run by the ``kind`` importer
    with ``options`` (already parsed: keywords of the importer). Raises :class:`InvalidInput`
    naming ``kind``, ``file`` or the option at fault; nothing is kept then."""
    cls = importer_class(kind)
    name = upload_name(upload.name or "")
    suffix = Path(name).suffix.lower()
    if suffix not in cls.formats:
        raise InvalidInput(
            "file", f"{name}: a {kind} import reads {' or '.join(cls.formats)} files, not {suffix or 'this'}"
        )
    limit = settings.MINQING_IMPORT_MAX_BYTES
    if upload.size > limit:
        raise InvalidInput("file", f"{name}: {upload.size:,} bytes; at most {limit:,} bytes are accepted")
    if upload.size == 0:
        raise InvalidInput("file", f"{name}: the file is empty")
    try:
        cls(**options)  # the importer checks its own parameters before any data is read
    except ValueError as error:
        raise InvalidInput("options", str(error)) from error
    job = ImportJob(
        kind=kind,
        action=ImportJob.Action.DRY_RUN,
        options=options,
        folder=uuid.uuid4(),
        file_name=name,
        stored_name=f"source{suffix}",
        file_size=upload.size,
        created_by=user,
    )
    folder = job_folder(job)
    folder.mkdir(parents=True, exist_ok=False)
    try:
        job.file_sha256 = store_upload(upload.chunks(), folder / job.stored_name)
        if suffix in (".zip", ".xlsx"):
            try:
                check_archive(folder / job.stored_name)
            except SourceError as error:
                raise InvalidInput("file", str(error).replace(job.stored_name, name, 1)) from error
        job.full_clean()
        job.save()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job


def import_job_commit(*, dry_run: ImportJob, user, max_rejected: RejectionLimit, accept_topology: bool) -> ImportJob:
    """Queue the commit of a finished dry run. The dry run must have read the file (a failure
    of rejected rows or of topology may be accepted here, an unusable file may not), and no
    other commit of it may be queued, running or done. Raises :class:`JobConflict` otherwise."""
    with transaction.atomic():
        dry_run = ImportJob.objects.select_for_update().get(pk=dry_run.pk)
        if dry_run.action != ImportJob.Action.DRY_RUN:
            raise JobConflict(f"job {dry_run.pk} is a commit; commit its dry run {dry_run.dry_run_id} instead")
        if dry_run.status not in ImportJob.FINISHED:
            raise JobConflict(f"the dry run (job {dry_run.pk}) is still {dry_run.status}; wait for it to finish")
        if dry_run.status == ImportJob.Status.FAILED and dry_run.failure_kind not in ("rejected", "topology"):
            raise JobConflict(f"the dry run (job {dry_run.pk}) failed, there is nothing to commit: {dry_run.message}")
        other = dry_run.commits.exclude(status=ImportJob.Status.FAILED).order_by("-id").first()
        if other is not None:
            state = "committed" if other.status == ImportJob.Status.SUCCEEDED else f"being committed ({other.status})"
            raise JobConflict(f"the file is already {state} by job {other.pk}")
        job = ImportJob(
            kind=dry_run.kind,
            action=ImportJob.Action.COMMIT,
            options=dry_run.options,
            accepted={"max_rejected": str(max_rejected), "topology": bool(accept_topology)},
            dry_run=dry_run,
            folder=dry_run.folder,
            file_name=dry_run.file_name,
            stored_name=dry_run.stored_name,
            file_size=dry_run.file_size,
            file_sha256=dry_run.file_sha256,
            created_by=user,
        )
        job.full_clean()
        job.save()
    return job


# --- the worker -----------------------------------------------------------------------------------


#: Import jobs as a queue; a new start clears the progress of the last.
QUEUE = JobQueue(
    model=ImportJob,
    lock_class=ADVISORY_CLASS,
    fresh=lambda: {"progress": {"stage": "", "done": 0, "total": None, "stages": []}},
)


def import_job_claim(*, worker: str | None = None) -> ImportJob | None:
    """The oldest queued job, now running and locked by this worker (:meth:`JobQueue.claim`)."""
    return QUEUE.claim(worker=worker)


def import_jobs_recover() -> list[int]:
    """Queue again (or, after ``MINQING_IMPORT_ATTEMPTS`` starts, fail) the running jobs whose
    worker is gone: nobody holds their advisory lock. Returns their ids."""
    recovered = []
    with transaction.atomic():
        for job in QUEUE.orphans():
            stopped = f"the worker {job.worker} stopped during the import; nothing was written"
            if job.attempts < settings.MINQING_IMPORT_ATTEMPTS:
                job.status, job.message = ImportJob.Status.QUEUED, f"{stopped}; queued again"
            else:
                job.status, job.exit_code, job.failure_kind = ImportJob.Status.FAILED, 1, "interrupted"
                job.message = f"{stopped} (started {job.attempts} times; upload the file again to retry)"
                job.finished_at = timezone.now()
            job.progress = {}
            job.save(update_fields=["status", "message", "exit_code", "failure_kind", "finished_at", "progress"])
            recovered.append(job.pk)
            logger.warning("import job %s: %s", job.pk, job.message)
    return recovered


class JobProgress(Progress):
    """Records the current stage of a running job on its row, at most every
    ``MINQING_IMPORT_PROGRESS_SECONDS`` and at each stage's start and end, through a database
    connection of its own (in autocommit), so the page sees it while the import's transaction
    is still open. Best effort: a failed write is logged, the import goes on."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.stages: list[str] = []
        self.closed = False
        self._connection = None
        self._last = 0.0

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Counter]:
        counter = _Recording(self, name, total)
        self.record(name, 0, total, force=True)
        yield counter
        self.stages.append(name)
        self.record(name, counter.done, total, force=True)

    def record(self, name: str, done: int, total: int | None, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.closed or (not force and now - self._last < settings.MINQING_IMPORT_PROGRESS_SECONDS):
            return
        self._last = now
        progress = {"stage": name, "done": done, "total": total, "stages": self.stages}
        try:
            if self._connection is None:
                self._connection = connections.create_connection(DEFAULT_DB_ALIAS)
            with self._connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE importers_importjob SET progress = %s::jsonb WHERE id = %s AND status = 'running'",
                    [json.dumps(progress), self.job_id],
                )
        except (OperationalError, InterfaceError) as error:
            logger.warning("import job %s: progress not recorded (%s)", self.job_id, error)

    def close(self) -> None:
        """No more writes (called before the job's own row is written in the import's
        transaction: a later write from the other connection would wait for that one)."""
        self.closed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Recording(Counter):
    def __init__(self, progress: JobProgress, name: str, total: int | None) -> None:
        super().__init__(total)
        self.progress, self.name = progress, name

    def update(self, n: int = 1) -> None:
        super().update(n)
        self.progress.record(self.name, self.done, self.total)


def _actor(job: ImportJob) -> Actor:
    user = job.created_by
    return Actor(user.pk, user.get_username()) if user is not None else Actor(None, f"import-job:{job.pk}")


def import_job_run(job: ImportJob, *, log: TextIO | None = None) -> ImportJob:
    """Run a claimed job to its end and record the outcome on it; release its lock."""
    progress = JobProgress(job.pk)
    folder = job_folder(job)
    try:
        cls = importer_class(job.kind)
        options = dict(job.options)
        if cls.checks_topology:
            options["accept_topology"] = bool(job.accepted.get("topology"))
        importer = cls(**options)
        importer.reporter = Several(Lines(log, label=f"import job {job.pk}"), progress) if log else progress
        commit = job.action == ImportJob.Action.COMMIT

        def before_commit(report: ImportReport) -> None:
            progress.close()
            _finish(job, report, progress.stages)

        with acting_as(_actor(job)):
            report = run_import(
                importer,
                folder / job.stored_name,
                commit=commit,
                report_path=folder / f"{job.pk}-{REPORT_NAME}",
                max_rejected=RejectionLimit.parse(job.accepted.get("max_rejected", "0")),
                source_name=job.file_name,
                preview=not commit,
                audit_detail={"job": job.pk, "sha256": job.file_sha256},
                before_commit=before_commit if commit else None,
            )
        if report.preview:
            write_json(folder / f"{job.pk}-{PREVIEW_NAME}", {"type": "FeatureCollection", "features": report.preview})
        if not report.committed:
            _finish(job, report, progress.stages)
    except (ImportFailed, ValueError) as error:
        _fail(job, "unusable", str(error))
    except (OperationalError, InterfaceError):
        raise  # the database is gone: the job stays running and is recovered once it is back
    except Exception:
        reference = uuid.uuid4().hex[:12]
        logger.exception("import job %s failed, reference %s", job.pk, reference)
        _fail(job, "error", f"internal error (reference {reference}); nothing was written")
    finally:
        progress.close()
        QUEUE.release(job.pk)
    if log is not None:
        log.write(f"import job {job.pk}: {job.action} {job.kind} {job.file_name}: {job.status}\n")
        log.flush()
    return job


def _summary(report: ImportReport) -> dict:
    path_note = f"rejected rows listed in {report.report_path}"
    return {
        "notes": [note for note in report.notes if note != path_note],
        "rejections": [
            {"row": r.row, "field": r.field, "value": r.value, "reason": r.reason}
            for r in sorted(report.rejections, key=lambda r: (r.row, r.field))[:SUMMARY_ROWS]
        ],
        "topology": [
            {
                "kind": p.kind,
                "level": p.level,
                "codes": list(p.codes),
                "area_m2": round(p.area_m2, 1),
                "lon": round(p.lon, 6),
                "lat": round(p.lat, 6),
                "describe": p.describe(),
            }
            for p in report.topology[:SUMMARY_ROWS]
        ],
        "topology_total": len(report.topology),
    }


def _finish(job: ImportJob, report: ImportReport, stages: list[str]) -> None:
    failure = report.failure
    job.status = ImportJob.Status.FAILED if failure else ImportJob.Status.SUCCEEDED
    job.exit_code = failure.exit_code if failure else 0
    job.failure_kind = failure.kind if failure else ""
    job.message = failure.message if failure else ""
    job.counts = {**report.counts, "rejected": report.rejected_rows}
    job.summary = _summary(report)
    job.has_report = bool(report.rejections)
    job.has_preview = bool(report.preview)
    job.finished_at = timezone.now()
    job.progress = {"stage": "", "done": report.counts.get("rows", 0), "total": None, "stages": stages}
    job.save()


def _fail(job: ImportJob, kind: str, message: str) -> None:
    job.status, job.exit_code, job.failure_kind, job.message = ImportJob.Status.FAILED, 1, kind, message
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "exit_code", "failure_kind", "message", "finished_at"])


def import_jobs_work(
    *, once: bool = False, stop: threading.Event | None = None, log: TextIO | None = None, poll: float | None = None
) -> int:
    """Run queued jobs one after another until ``stop`` is set, or (``once``) until none is
    queued; recover jobs of dead workers every 30 s. Returns how many jobs ran. A lost database
    is waited for, not fatal."""
    return QUEUE.work(
        run=lambda job: import_job_run(job, log=log),
        housekeeping=import_jobs_recover,
        once=once,
        stop=stop,
        poll=settings.MINQING_IMPORT_POLL_SECONDS if poll is None else poll,
    )


# --- reading ----------------------------------------------------------------------------------


def _jobs():
    # The latest commit of each dry run comes with it (one query for a whole list).
    return ImportJob.objects.select_related("created_by").annotate(latest_commit=Max("commits__id"))


def import_jobs_recent(*, limit: int = 30) -> list[ImportJob]:
    return list(_jobs().order_by("-id")[:limit])


def import_job_get(*, job_id: int) -> ImportJob | None:
    return _jobs().filter(pk=job_id).first()


def import_job_describe(job: ImportJob, *, urls: Mapping[str, str]) -> dict:
    """A job as the import page reads it; ``urls`` are its links (self, report, preview, commit)."""
    latest_commit = getattr(job, "latest_commit", None)
    if latest_commit is None and job.action == ImportJob.Action.DRY_RUN and not hasattr(job, "latest_commit"):
        latest_commit = job.commits.order_by("-id").values_list("id", flat=True).first()
    return {
        "id": job.pk,
        "kind": job.kind,
        "action": job.action,
        "status": job.status,
        "file": {"name": job.file_name, "size": job.file_size, "sha256": job.file_sha256},
        "options": job.options,
        "accepted": job.accepted,
        "created_by": job.created_by.get_username() if job.created_by else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
        "progress": job.progress,
        "counts": job.counts,
        "summary": job.summary,
        "exit_code": job.exit_code,
        "failure": {"kind": job.failure_kind, "message": job.message} if job.failure_kind else None,
        "message": job.message,
        "dry_run": job.dry_run_id,
        "commit": latest_commit,
        "links": dict(urls),
    }
