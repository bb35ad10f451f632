"""The import worker: jobs claimed once each (SKIP LOCKED), progress visible from other sessions
while the import's transaction is open, a job whose worker died queued again (then failed), and
a worker process killed in the middle of an import leaves nothing written and the job recovered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections, transaction

from importers.jobs import (
    ADVISORY_CLASS,
    JobProgress,
    import_job_claim,
    import_job_create,
    import_jobs_recover,
    import_jobs_work,
)
from importers.models import ImportJob
from layers.models import Address
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import ADDRESS_HEADER, IN_WEST, address_row


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    settings.MINQING_IMPORT_DIR = tmp_path / "imports"
    settings.MINQING_REPORT_DIR = tmp_path / "reports"


def addresses_upload(rows: int, name: str = "addresses.csv") -> SimpleUploadedFile:
    lines = [",".join(ADDRESS_HEADER), *(",".join(address_row(f"J{i:07d}", IN_WEST)) for i in range(rows))]
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode())


def queue(rows: int = 3, *, user=None) -> ImportJob:
    return import_job_create(kind="addresses", upload=addresses_upload(rows), options={}, user=user)


def other_connection():
    """A second session on the test database (as another worker or web process has)."""
    return connections.create_connection("default")


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_job():
    first, second = queue(), queue()
    claimed = []

    def claim() -> None:
        try:
            with transaction.atomic():
                claimed.append(import_job_claim(worker="thread"))
                time.sleep(0.3)  # both claims overlap
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = sorted(job.pk for job in claimed if job is not None)
    assert ids == [first.pk, second.pk]
    assert claimed.count(None) == 1
    assert set(ImportJob.objects.values_list("status", "attempts")) == {("running", 1)}


@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_to_other_sessions_while_the_import_transaction_is_open():
    job = queue()
    import_job_claim()
    progress = JobProgress(job.pk)
    observer = other_connection()
    try:
        with transaction.atomic():  # the import's own transaction, not yet committed
            Address.objects.create(code="X", full_text="X", location="SRID=4326;POINT(103.83 36.06)")
            with progress.stage("write addresses", total=3) as stage:
                stage.update(3)
                with observer.cursor() as cursor:
                    cursor.execute("SELECT progress FROM importers_importjob WHERE id = %s", [job.pk])
                    seen = cursor.fetchone()[0]
                    cursor.execute("SELECT count(*) FROM layers_address")
                    rows = cursor.fetchone()[0]
            transaction.set_rollback(True)
    finally:
        progress.close()
        observer.close()
    seen = json.loads(seen) if isinstance(seen, str) else seen  # Django leaves jsonb as text
    assert seen == {"stage": "write addresses", "done": 0, "total": 3, "stages": []}  # recorded at the start
    assert rows == 0  # …while the rows themselves are invisible until the commit
    ended = {"stage": "write addresses", "done": 3, "total": 3, "stages": ["write addresses"]}
    assert ImportJob.objects.get(pk=job.pk).progress == ended


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_died_is_queued_again_then_failed():
    job = queue()
    import_job_claim()  # this session holds the job's lock, as its worker does
    other = other_connection()
    try:
        with other.cursor() as cursor:
            # Another worker sees the job running with its lock held: alive, left alone.
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_CLASS, job.pk])
            assert cursor.fetchone()[0] is False
    finally:
        other.close()
    connection.close()  # the worker's session ends: PostgreSQL releases the lock
    assert import_jobs_recover() == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.attempts, job.message) == (
        "queued",
        1,
        f"the worker {job.worker} stopped during the import; nothing was written; queued again",
    )
    import_job_claim()
    connection.close()
    assert import_jobs_recover() == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.exit_code, job.failure_kind) == ("failed", 1, "interrupted")
    assert job.message.endswith("(started 2 times; upload the file again to retry)")


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_the_queued_jobs_in_order_then_stops_when_told_once():
    grid_tree(region_chain()["community"])
    first, second = queue(2), queue(3)
    assert import_jobs_work(once=True) == 2
    assert dict(ImportJob.objects.values_list("id", "status")) == {first.pk: "succeeded", second.pk: "succeeded"}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.started_at < second.started_at
    assert (first.counts["rows"], second.counts["rows"]) == (2, 3)


# --- a worker process -----------------------------------------------------------------------------


def start_worker(log_path) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.test",
        "MINQING_PG_DATABASE": connection.settings_dict["NAME"],
        "MINQING_IMPORT_DIR": str(settings.MINQING_IMPORT_DIR),
        "MINQING_REPORT_DIR": str(settings.MINQING_REPORT_DIR),
        "MINQING_IMPORT_POLL_SECONDS": "0.2",
        "MINQING_IMPORT_PROGRESS_SECONDS": "0.1",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "run_import_jobs"],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, *, seconds: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_writes_nothing_and_the_job_is_run_again(tmp_path):
    """kill -9 while the rows are being written: no row of the file exists afterwards, the job
    stays "running" with nobody holding it, and the next worker queues it again and finishes it."""
    grid_tree(region_chain()["community"])
    user = get_user_model().objects.create_user("steward")
    job = queue(60_000, user=user)
    worker = start_worker(tmp_path / "worker-1.log")
    try:
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).progress.get("stage") == "write addresses",
            what="the import to reach its write stage",
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    job.refresh_from_db()
    assert (job.status, Address.objects.count()) == ("running", 0)
    worker = start_worker(tmp_path / "worker-2.log")
    try:
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).status in ImportJob.FINISHED, what="the job to finish")
        job.refresh_from_db()
        assert (job.attempts, job.counts["rows"], job.failure_kind) == (2, 60_000, "")
        assert job.status == "succeeded"  # a dry run: nothing written by design
        assert Address.objects.count() == 0
        log = (tmp_path / "worker-2.log").read_text()
        assert f"import job {job.pk}: read: 60,000 rows in" in log
        assert "\r" not in log
        # SIGTERM: the worker stops between jobs.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
