"""Load and fault harness for the intake tests and the intake benchmark (loopback only, bounded
in count and time).

* :func:`serve` runs the project's application server (scripts/serve.sh, as production does)
  against a database named by a URL, on a free loopback port, and stops it afterwards;
* :func:`paced_load` sends POST /api/events at a fixed rate from a few threads, each holding one
  keep-alive connection, every report with its own ``Idempotency-Key`` and no external id (only
  the key protects a retry). Open loop: a report is due at ``start + i / rate`` whether or not
  earlier ones were answered, and its latency counts from when it was due, so a slow server
  shows as latency, not as a politely lower rate. A 503 is retried with the same key and body
  after its ``Retry-After``; a dropped connection likewise;
* :class:`ThrowawayCluster` is a PostgreSQL cluster of its own in a temporary directory (Unix
  socket there, no TCP) that a fault test may restart without touching anyone else's.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

#: The project root (where manage.py and mapserver.wsgi live).
ROOT = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: Connection error marker in an outcome's list of statuses.
NO_ANSWER = -1


def database_url(settings_dict: dict) -> str:
    """A ``DATABASE_URL`` for a Django database's settings (a socket directory as host works)."""
    password = f":{quote(settings_dict['PASSWORD'], safe='')}" if settings_dict.get("PASSWORD") else ""
    host = quote(str(settings_dict["HOST"]), safe="")
    return f"postgis://{settings_dict['USER']}{password}@{host}:{settings_dict['PORT']}/{settings_dict['NAME']}"


def app_database_url(settings_dict: dict) -> str:
    """The ``DATABASE_URL`` of the same database as the application's role (README "Database
    roles"): what a served application connects as. Its password is the project-local
    cluster's (scripts/db.sh), or ``MINQING_DB_APP_PASSWORD`` for another cluster."""
    from django.conf import settings

    from settings.base import local_database_password

    password = os.environ.get("MINQING_DB_APP_PASSWORD") or local_database_password("app")
    return database_url(settings_dict | {"USER": settings.MINQING_DB_APP_ROLE, "PASSWORD": password})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: The production settings as a deployment would set them, for a server on the loopback: one
#: trusted proxy (so "X-Forwarded-Proto: https" stands for the TLS terminator and nothing is
#: redirected to HTTPS), a throwaway secret and the development personal-data key.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "settings.prod",
    "DJANGO_SECRET_KEY": "load-test-only-" + "x" * 50,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "MINQING_PERSONAL_DATA_KEY": "ZGV2LW9ubHkta2V5LWZvci1taW5xaW5nLW1hcC0wMDA=",
    "MINQING_TRUSTED_PROXIES": "127.0.0.1",
}
#: The header the TLS-terminating proxy adds in front of a production server.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


@dataclass(frozen=True)
class Server:
    """A running application server: its loopback port, master process id and log file."""

    port: int
    pid: int
    log: Path

    def pids(self) -> list[int]:
        """The master and its workers."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [self.pid, *(int(pid) for pid in children.read_text().split())] if children.exists() else []

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far; a process gone counts 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), sum(values) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_meter(**sources: Callable[[], list[int]]) -> Iterator[dict[str, float]]:
    """CPU seconds used by each named set of processes (``sources``: callables giving pids, asked
    at the start and at the end) while the block runs, and ``machine`` busy share (0–1) of all
    cores; filled in when the block ends."""
    used: dict[str, float] = {}
    before = {name: {pid: cpu_seconds([pid]) for pid in pids()} for name, pids in sources.items()}
    busy0, total0 = machine_busy()
    yield used
    busy1, total1 = machine_busy()
    for name, pids in sources.items():
        used[name] = sum(cpu_seconds([pid]) - before[name].get(pid, 0.0) for pid in pids())
    used["machine"] = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


@contextlib.contextmanager
def serve(*, db_url: str, workers: int = 2, env: dict | None = None) -> Iterator[Server]:
    """The application server as production runs it (``scripts/serve.sh``: mapserver.asgi under
    uvicorn, ``workers`` processes) with the production settings (:data:`PRODUCTION`, which
    ``env`` may override) on a free loopback port against ``db_url``; yields the
    :class:`Server`, stopped (and waited for) on exit. Its log goes to a temporary file, printed
    on failure."""
    port = free_port()
    environment = {
        **os.environ,
        **PRODUCTION,
        "DATABASE_URL": db_url,
        "MINQING_PORT": str(port),
        "MINQING_RUN_WORKERS": str(workers),
        **(env or {}),
    }
    environment.pop("MINQING_TEST_DATABASE", None)
    log = Path(tempfile.mkstemp(prefix="minqing-server-", suffix=".log")[1])
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603  (our own script)
            ["/bin/bash", str(ROOT / "scripts" / "serve.sh")], cwd=ROOT, env=environment, stdout=output, stderr=output
        )
    try:
        _wait_listening(server, port)
        yield Server(port=port, pid=server.pid, log=log)
    except BaseException:
        print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.unlink(missing_ok=True)


def _wait_listening(server: subprocess.Popen, port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on port {port} within {seconds:g} s")


# --- the paced client -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one report's client saw: every attempt's status (``NO_ANSWER`` for a dropped or
    refused connection), the final answer's status and event id, and the latency from when the
    report was due to the final answer (seconds)."""

    index: int
    key: str
    statuses: list[int] = field(default_factory=list)
    event_id: int | None = None
    latency: float = 0.0
    #: Never sent: its turn came more than the give-up time after it was due (the run is over).
    unsent: bool = False

    @property
    def status(self) -> int:
        return self.statuses[-1] if self.statuses else NO_ANSWER


@dataclass
class LoadReport:
    outcomes: list[Outcome]
    seconds: float
    rate: float
    #: When the first report was due (``time.monotonic()``): report i was due at started + i / rate.
    started: float = 0.0
    #: The first answer seen with each status: (Retry-After header or None, body).
    samples: dict[int, tuple[str | None, bytes]] = field(default_factory=dict)

    @property
    def created(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 201]

    def attempts(self) -> Counter:
        """How many attempts ended with each status (``-1``: no answer)."""
        return Counter(status for o in self.outcomes for status in o.statuses)

    def latency_ms(self, q: float) -> float:
        values = sorted(o.latency for o in self.outcomes if o.status == 201)
        return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    def summary(self) -> str:
        unsent = sum(o.unsent for o in self.outcomes)
        return (
            f"{len(self.outcomes)} reports due at {self.rate:g}/s; {len(self.created)} answered 201 in "
            f"{self.seconds:.1f} s = {self.achieved:.1f}/s; latency from due time p50 {self.latency_ms(0.5):.1f} ms, "
            f"p99 {self.latency_ms(0.99):.1f} ms, max {self.latency_ms(1.0):.1f} ms; attempts by status "
            f"{dict(sorted(self.attempts().items()))}" + (f"; {unsent} never sent (too late)" if unsent else "")
        )

    @property
    def achieved(self) -> float:
        """Reports answered 201 per second, from the first due time to the last answer."""
        return len(self.created) / self.seconds if self.seconds else 0.0


def points_in_box(count: int, *, box: tuple[float, float, float, float], seed: int) -> list[tuple[float, float]]:
    """``count`` seeded points spread uniformly over ``box`` (lon0, lat0, lon1, lat1)."""
    rng = random.Random(seed)
    lon0, lat0, lon1, lat1 = box
    return [(rng.uniform(lon0, lon1), rng.uniform(lat0, lat1)) for _ in range(count)]


def intake_bodies(points: list[tuple[float, float]], *, categories: list[str]) -> list[bytes]:
    """One JSON intake body (bytes) per point (lon, lat): categories in turn, no external id."""
    return [
        json.dumps(
            {
                "channel": "hotline",
                "category": categories[i % len(categories)],
                "description": f"负载测试 load report {i}",
                "location": {"lon": round(lon, 7), "lat": round(lat, 7)},
            },
            ensure_ascii=False,
        ).encode("utf-8")
        for i, (lon, lat) in enumerate(points)
    ]


def paced_load(
    *,
    port: int,
    token: str,
    bodies: list[bytes],
    rate: float,
    run: str,
    clients: int = 12,
    give_up_after: float = 30.0,
    on_progress: Callable[[float], None] | None = None,
    tls: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
) -> LoadReport:
    """Send ``bodies`` to POST /api/events at ``rate`` per second (open loop) and return what
    each report's client saw. A report whose answer is a 503 or no answer is sent again, same key
    and body, until ``give_up_after`` seconds past its due time. ``on_progress(elapsed)`` runs
    in the pacing thread about once a second (the fault test restarts the database from it).
    With ``tls``, HTTPS to ``host`` through a front proxy (which sets the forwarding headers);
    without, plain HTTP to the application, saying it came through a TLS proxy."""
    jobs: queue.Queue = queue.Queue()
    outcomes = [Outcome(index=i, key=f"{run}-{i:06d}") for i in range(len(bodies))]
    samples: dict[int, tuple[str | None, bytes]] = {}
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if tls is None:
        headers |= PROXY_HEADERS

    def send(connection: http.client.HTTPConnection | None, outcome: Outcome, due: float):
        """One report until its final answer; returns the connection to keep for the next one."""
        while True:
            try:
                if connection is None:
                    connection = (
                        http.client.HTTPSConnection(host, port, timeout=30, context=tls)
                        if tls is not None
                        else http.client.HTTPConnection(host, port, timeout=30)
                    )
                connection.request(
                    "POST", "/api/events", bodies[outcome.index], {**headers, "Idempotency-Key": outcome.key}
                )
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                outcome.statuses.append(NO_ANSWER)
                if connection is not None:
                    connection.close()
                connection, wait = None, 0.2
            else:
                outcome.statuses.append(response.status)
                samples.setdefault(response.status, (response.getheader("Retry-After"), payload))
                if response.status in (200, 201):
                    outcome.event_id = json.loads(payload)["id"]
                if response.status != 503:
                    outcome.latency = time.monotonic() - due
                    return connection
                wait = float(response.getheader("Retry-After", "1"))
            if time.monotonic() + wait > due + give_up_after:
                outcome.latency = time.monotonic() - due
                return connection
            time.sleep(wait)

    def client() -> None:
        connection = None
        while (job := jobs.get()) is not None:
            index, due = job
            if time.monotonic() > due + give_up_after:
                # Hopelessly behind: the run stays bounded in time; the report counts as unsent.
                outcomes[index].unsent = True
                continue
            connection = send(connection, outcomes[index], due)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, name=f"load-client-{n}", daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start = time.monotonic() + 0.05
    next_progress = 1.0
    for index in range(len(bodies)):
        due = start + index / rate
        if (delay := due - time.monotonic()) > 0:
            time.sleep(delay)
        jobs.put((index, due))
        if on_progress is not None and due - start >= next_progress:
            next_progress += 1.0
            on_progress(due - start)
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(give_up_after + 60)
    answered = [start + o.latency + o.index / rate for o in outcomes if o.statuses]
    finished = (max(answered) if answered else time.monotonic()) - start
    return LoadReport(outcomes=outcomes, seconds=finished, rate=rate, samples=samples, started=start)


# --- a throwaway PostgreSQL cluster ---------------------------------------------------------------


class ThrowawayCluster:
    """A PostgreSQL 15 cluster in a temporary directory, reached only through a Unix socket there
    (no TCP), run as ``postgres`` when we are root (PostgreSQL refuses root). ``start()``,
    ``restart()`` and ``destroy()`` (stop and delete); a context manager destroys it on exit."""

    port = 5440

    def __init__(self) -> None:
        # Short path: a Unix socket path must stay under 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="mq-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.owner = "postgres" if os.geteuid() == 0 else None
        if self.owner:
            shutil.chown(self.root, self.owner)

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        return subprocess.run(  # noqa: S603  (fixed PostgreSQL binaries, our own arguments)
            [*prefix, *command], check=check, capture_output=True, text=True, timeout=120
        )

    def start(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "minqing", "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8")  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"listen_addresses = ''\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                "fsync = off\nfull_page_writes = off\nshared_buffers = 64MB\nmax_connections = 60\n"
            )
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        # The application's role, as scripts/db.sh makes it (trust authentication here: a test cluster).
        self.psql("postgres", f"CREATE ROLE {self.app_role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")

    #: The role a served application connects as (migrations grant it row access).
    app_role = "minqing_app"

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """``pg_ctl restart -m fast``: every session is ended, then the server comes back. With
        ``down_seconds`` the same as ``stop -m fast``, that long a pause, ``start``: a bare
        restart is over in ~0.2 s, which a busy client may never see (Django's health checks
        quietly reconnect); a longer outage makes sure requests find the database gone."""
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"]
        if down_seconds <= 0:
            self._run(*pg_ctl, "-m", "fast", "restart")
            return
        self._run(*pg_ctl, "-m", "fast", "stop")
        time.sleep(down_seconds)
        self._run(*pg_ctl, "start")

    def psql(self, database: str, *commands: str) -> str:
        arguments = [str(PG_BIN / "psql"), "-X", "-q", "-At", "-h", str(self.root), "-p", str(self.port)]
        arguments += ["-U", "minqing", "-d", database, "-v", "ON_ERROR_STOP=1"]
        for command in commands:
            arguments += ["-c", command]
        return self._run(*arguments).stdout

    def settings_dict(self, name: str, *, app: bool = False) -> dict:
        """Connection settings as the cluster's superuser (migrations, seeding) or, with ``app``,
        as the application's role."""
        user = self.app_role if app else "minqing"
        return {"USER": user, "PASSWORD": "", "HOST": str(self.root), "PORT": self.port, "NAME": name}

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
