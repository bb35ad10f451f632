"""``run_export_jobs [--once]``: the export worker. Builds the GeoPackage and Shapefile exports
that requests queued (mapserver/exportjobs.py), one after another, off the web workers (``make
run`` starts it beside the server); a job whose worker died is queued again."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandParser

from mapserver.exportjobs import export_jobs_work


class Command(BaseCommand):
    help = "Build queued export files (GeoPackage, zipped Shapefile) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="build the queued exports, then stop")
        parser.add_argument(
            "--poll", type=float, help="seconds between looks for new jobs (MINQING_EXPORT_POLL_SECONDS)"
        )

    def handle(self, *args, **options) -> None:
        stop = threading.Event()

        def finish_current_then_stop(signum, frame) -> None:
            stop.set()  # SIGTERM: the file being built is finished first

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, finish_current_then_stop)
        log = getattr(self.stdout, "_out", self.stdout)
        if not options["once"]:
            self.stdout.write("export worker: waiting for jobs")
        try:
            ran = export_jobs_work(once=options["once"], stop=stop, log=log, poll=options["poll"])
        except KeyboardInterrupt:
            self.stdout.write("export worker: interrupted")
            return
        self.stdout.write(f"export worker: {ran} job(s) run")
