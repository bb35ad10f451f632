"""``run_import_jobs [--once]``: the import worker. Runs the jobs of the import page one after
another in the background (``make run`` starts it beside the server), writing one line per
stage to its output; a job whose worker died is queued again (importers/jobs.py)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandParser

from importers.jobs import import_jobs_work


class Command(BaseCommand):
    help = "Run queued import jobs (the import page's dry runs and commits) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run the queued jobs, then stop")
        parser.add_argument(
            "--poll", type=float, help="seconds between looks for new jobs (MINQING_IMPORT_POLL_SECONDS)"
        )

    def handle(self, *args, **options) -> None:
        stop = threading.Event()

        def finish_current_then_stop(signum, frame) -> None:
            # SIGTERM (a service manager stopping the worker): the running job finishes first.
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, finish_current_then_stop)
        log = getattr(self.stdout, "_out", self.stdout)
        if not options["once"]:
            self.stdout.write("import worker: waiting for jobs")
        try:
            ran = import_jobs_work(once=options["once"], stop=stop, log=log, poll=options["poll"])
        except KeyboardInterrupt:
            # Ctrl-C in `make run`: a job cut short was rolled back and is queued again at the next start.
            self.stdout.write("import worker: interrupted")
            return
        self.stdout.write(f"import worker: {ran} job(s) run")
