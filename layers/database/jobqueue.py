"""Background jobs kept as rows of a table (the import jobs, the export jobs): how a worker claims
one, how its liveness is known, and the worker's loop. The jobs' own work stays with their kind.

* A worker claims the oldest queued row with ``SELECT … FOR UPDATE SKIP LOCKED`` (two workers
  never take the same one) and, before the claim commits, takes a *session* advisory lock keyed
  by the queue and the job's id. It holds the lock while it runs the job, so the lock says the
  worker is alive: a running job whose lock anybody can take belongs to a dead worker
  (:meth:`JobQueue.orphans`), whatever its ``started_at`` says.
* :meth:`JobQueue.work` is the loop a management command runs: housekeeping (orphans, expiry)
  every ``RECOVER_SECONDS``, claim, run, poll. A lost database is waited for, not fatal: the
  worker outlives a failover.

A model served here has ``status`` (with ``Status.QUEUED`` and ``Status.RUNNING``),
``started_at``, ``attempts`` and ``worker``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError, close_old_connections, connection, models, transaction
from django.utils import timezone

logger = logging.getLogger("minqing.jobs")

#: Seconds between looks for jobs whose worker died.
RECOVER_SECONDS = 30.0


def worker_name() -> str:
    """This process as a job's ``worker`` names it (host and process id)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@dataclass(frozen=True)
class JobQueue:
    """The jobs of one table. ``lock_class`` is the first key of the two-key advisory locks its
    workers hold on their running jobs (one per queue, so job ids of two tables never collide);
    ``fresh`` gives the fields a new start resets (its progress)."""

    model: type[models.Model]
    lock_class: int
    fresh: Callable[[], dict] = dict

    def _advisory(self, function: str, job_id: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [self.lock_class, job_id])
            return bool(cursor.fetchone()[0]) if function != "pg_advisory_lock" else True

    def claim(self, *, worker: str | None = None) -> models.Model | None:
        """The oldest queued job, now running and locked by this session, its ``fresh`` fields
        reset for the new start; ``None`` when nothing is queued. The lock is taken
        before the claim commits, so no recovering worker ever sees the job running and unlocked."""
        with transaction.atomic():
            job = (
                self.model.objects.select_for_update(skip_locked=True)
                .filter(status=self.model.Status.QUEUED)
                .order_by("id")
                .first()
            )
            if job is None:
                return None
            self._advisory("pg_advisory_lock", job.pk)
            job.status = self.model.Status.RUNNING
            job.started_at = timezone.now()
            job.attempts += 1
            job.worker = worker or worker_name()
            fresh = self.fresh()
            for name, value in fresh.items():
                setattr(job, name, value)
            job.save(update_fields=["status", "started_at", "attempts", "worker", *fresh])
        return job

    def release(self, job_id: int) -> None:
        """Gives up this session's lock on a job it ran (finished or failed)."""
        try:
            self._advisory("pg_advisory_unlock", job_id)
        except (OperationalError, InterfaceError):
            pass  # a lost connection took the lock with it

    def orphans(self) -> Iterator[models.Model]:
        """The running jobs whose worker is gone (nobody holds their lock), locked for update:
        iterate inside ``transaction.atomic()`` and save what becomes of each."""
        for job in self.model.objects.select_for_update(skip_locked=True).filter(status=self.model.Status.RUNNING):
            if self._advisory("pg_try_advisory_lock", job.pk):
                self.release(job.pk)
                yield job

    def work(
        self,
        *,
        run: Callable[[models.Model], object],
        housekeeping: Callable[[], object],
        once: bool = False,
        stop: threading.Event | None = None,
        poll: float,
    ) -> int:
        """Runs queued jobs one after another until ``stop`` is set, or (``once``) until none is
        queued, with ``housekeeping`` every ``RECOVER_SECONDS``. Returns how many jobs ran."""
        stop = stop or threading.Event()
        ran, next_housekeeping = 0, 0.0
        while not stop.is_set():
            try:
                if not connection.in_atomic_block:  # (a test's transaction holds the worker in-process)
                    close_old_connections()  # a connection the server dropped is replaced, not reused
                if time.monotonic() >= next_housekeeping:
                    housekeeping()
                    next_housekeeping = time.monotonic() + RECOVER_SECONDS
                job = self.claim()
                if job is not None:
                    run(job)
                    ran += 1
                    continue
            except (OperationalError, InterfaceError) as error:
                logger.warning("%s worker: database unavailable (%s); retrying", self.model._meta.verbose_name, error)
                connection.close()
            if once:
                break
            stop.wait(poll)
        return ran
