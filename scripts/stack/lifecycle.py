"""Bringing the single-machine stack up and down (``python -m scripts.stack up|down|status``).

``up`` renders the configuration, makes a TLS certificate for localhost, starts etcd, the
Patroni nodes (the first bootstraps the cluster and its roles; the others join as streaming
replicas, one of them synchronous), checks the pgBackRest stanza, starts HAProxy, migrates and
seeds the database through it as the owner, collects the static files, starts the application
(as production starts it, with the application's role and a replica for reads) and nginx, and
waits for each. ``down`` stops them in the reverse order; ``--wipe`` removes ``var/stack``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from . import engines
from .engines import PG_BIN, StackError, http_status, port_open, start, stop, wait_for
from .layout import ROOT, Layout, prepare

#: Engines in start order (the application and nginx last).
ORDER = ("etcd", "patroni-*", "haproxy", "app", "nginx")


def _write(layout: Layout, name: str, text: str, *, mode: int = 0o600) -> None:
    path = layout.conf / name
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    if os.geteuid() == 0:
        shutil.chown(path, layout.account)


def render_local(layout: Layout) -> None:
    """The configuration of the local stack, in ``conf/``."""
    for node in layout.nodes:
        _write(layout, f"patroni-{node.name}.yml", layout.render("patroni.yml", node=node))
    _write(layout, "post_bootstrap.sh", layout.render("post_bootstrap.sh"), mode=0o700)
    _write(layout, "haproxy.cfg", layout.render("haproxy.cfg"))
    _write(layout, "pgbackrest.conf", layout.render("pgbackrest.conf"), mode=0o640)
    _write(layout, "nginx.conf", layout.render("nginx.conf"), mode=0o640)
    _write(layout, "proxy_params", layout.render("proxy_params"), mode=0o640)


def certificate(layout: Layout) -> None:
    """A self-signed certificate for localhost (the drills' clients trust exactly it)."""
    cert, key = layout.tls / "cert.pem", layout.tls / "key.pem"
    if cert.exists() and key.exists():
        return
    subprocess.run(  # noqa: S603
        ["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    if os.geteuid() == 0:
        for path in (cert, key):
            shutil.chown(path, layout.account)
    os.chmod(key, 0o600)


def manage(layout: Layout, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """``manage.py`` on the stack's database, as its owner (migrations, seeds, timers)."""
    return subprocess.run(  # noqa: S603  (our own manage.py)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **layout.app_environment(), "MINQING_DB_ROLE": "owner", **(env or {})},
        check=check,
        capture_output=True,
        text=True,
    )


def pgbackrest(layout: Layout, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        engines.as_account(layout, ["pgbackrest", f"--config={layout.conf / 'pgbackrest.conf'}", "--stanza=minqing",
                                    *args]),
        check=check, capture_output=True, text=True,
    )  # fmt: skip


def primary_connection(layout: Layout, role: str = "owner", *, replicas: bool = False):
    """A psycopg2 connection through HAProxy (the primary, or the replicas)."""
    return psycopg2.connect(
        host=layout.host,
        port=layout.haproxy_replicas if replicas else layout.haproxy_primary,
        dbname="minqing",
        user="minqing" if role == "owner" else "minqing_app",
        password=layout.secret(role),
        connect_timeout=3,
    )


def superuser_sql(layout: Layout, sql: str) -> str:
    """Run ``sql`` on the current primary as the cluster's superuser (peer authentication on the
    node's own socket, as the stack's account); returns psql's unaligned output."""
    primary = next((n for n in layout.nodes if engines.node_role(n) == "primary"), None)
    if primary is None:
        raise StackError("no primary")
    result = subprocess.run(  # noqa: S603
        engines.as_account(layout, [str(PG_BIN / "psql"), "-X", "-At", "-h", str(primary.sockets), "-p",
                                    str(primary.pg_port), "-U", layout.account, "-d", "postgres", "-c", sql]),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip()


def reaches_database(layout: Layout, *, replicas: bool = False) -> bool:
    """Whether HAProxy's primary (or replicas) port leads to a node in that role."""
    try:
        with primary_connection(layout, replicas=replicas) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            return cursor.fetchone()[0] == replicas
    except psycopg2.Error:
        return False


def start_etcd(layout: Layout) -> None:
    url = f"http://{layout.host}:{layout.etcd_client}"
    peer = f"http://{layout.host}:{layout.etcd_peer}"
    start(layout, "etcd", [
        "etcd", "--name", "e1", "--data-dir", str(layout.etcd_data),
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"e1={peer}",
    ])  # fmt: skip
    wait_for("etcd", lambda: http_status(f"{url}/health") == 200, seconds=30, log=layout.logs / "etcd.log")


def start_node(layout: Layout, name: str) -> None:
    node = next(n for n in layout.nodes if n.name == name)
    # pgBackRest's archive-push checks that it runs in its stanza's pg1-path; on one machine each
    # node has its own data directory, so each node's PostgreSQL (and the archive_command it runs,
    # which is the same on every node) is told its own: an environment option wins over the file.
    start(layout, f"patroni-{name}", ["patroni", str(layout.conf / f"patroni-{name}.yml")],
          env={"PGBACKREST_PG1_PATH": str(node.data)})  # fmt: skip


def start_patroni(layout: Layout) -> None:
    first, *others = layout.nodes
    start_node(layout, first.name)
    wait_for(f"Patroni {first.name} as primary", lambda: engines.node_role(first) == "primary", seconds=120,
             log=layout.logs / f"patroni-{first.name}.log")  # fmt: skip
    for node in others:
        start_node(layout, node.name)
    for node in others:
        wait_for(f"Patroni {node.name} as replica", lambda n=node: engines.node_role(n) == "replica", seconds=180,
                 log=layout.logs / f"patroni-{node.name}.log")  # fmt: skip
    if others:
        wait_for("a synchronous standby", lambda: any(m.get("role") == "sync_standby" for m in engines.cluster_members(layout)),
                 seconds=60)  # fmt: skip


def start_haproxy(layout: Layout) -> None:
    start(layout, "haproxy", ["haproxy", "-db", "-f", str(layout.conf / "haproxy.cfg")])
    wait_for("HAProxy to the primary", lambda: reaches_database(layout), seconds=30, log=layout.logs / "haproxy.log")
    if len(layout.nodes) > 1:
        wait_for("HAProxy to a replica", lambda: reaches_database(layout, replicas=True), seconds=30)


def start_app(layout: Layout) -> None:
    env = layout.app_environment() | {
        "PROMETHEUS_MULTIPROC_DIR": str(layout.root / "metrics"),
        "MINQING_RUN_WORKERS": "2",
        "MINQING_LOG_FORMAT": "json",
    }
    # As the stack's account when it can run the virtualenv's interpreter (a Debian python3 it
    # can; a python under /root it cannot), else as the caller.
    reachable = (
        subprocess.run(  # noqa: S603
            engines.as_account(layout, ["test", "-x", str(Path(sys.executable).resolve())]), check=False
        ).returncode
        == 0
    )
    start(layout, "app", ["bash", str(ROOT / "scripts" / "serve.sh")], env=env, account=reachable)
    wait_for("the application", lambda: http_status(f"http://{layout.host}:{layout.app_port}/healthz") == 200,
             seconds=60, log=layout.logs / "app.log")  # fmt: skip


def start_nginx(layout: Layout) -> None:
    start(layout, "nginx", ["nginx", "-c", str(layout.conf / "nginx.conf"), "-g", "daemon off;"])
    context = engines.tls_context(layout)
    url = f"https://localhost:{layout.https_port}/healthz"
    wait_for("nginx", lambda: http_status(url, context=context) == 200, seconds=30,
             log=layout.logs / "nginx-error.log")  # fmt: skip


def seed(layout: Layout, scale: str) -> None:
    """Migrate; for ``scale`` tiny or demo, the demo city, its events and the demo users."""
    manage(layout, "migrate", "--noinput", "-v0")
    manage(layout, "collectstatic", "--noinput", "-v0")
    if scale == "none":
        return
    ready = manage(layout, "shell", "-c", "from layers.models import Grid; print(Grid.objects.exists())")
    if ready.stdout.strip().endswith("True"):
        return
    manage(layout, "generate_demo_city", "--scale", scale, "--seed", "1", "-v0")
    manage(layout, "generate_demo_events", "--seed", "1", "--if-empty", "-v0")


def up(layout: Layout, *, scale: str = "demo", fresh: bool = False, say=print) -> None:
    if fresh:
        down(layout, wipe=True, say=lambda *_: None)
    prepare(layout)
    (layout.root / "run").mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(layout.root / "run", layout.account)
    render_local(layout)
    certificate(layout)
    _ports_free(layout)
    _semaphores_usable(layout)
    started = time.monotonic()
    steps = [
        ("etcd", lambda: start_etcd(layout)),
        ("Patroni", lambda: start_patroni(layout)),
        ("pgBackRest stanza", lambda: (pgbackrest(layout, "stanza-create"), pgbackrest(layout, "check"))),
        ("HAProxy", lambda: start_haproxy(layout)),
        (f"database ({scale})", lambda: seed(layout, scale)),
        ("application", lambda: start_app(layout)),
        ("nginx", lambda: start_nginx(layout)),
    ]
    for name, step in steps:
        if _already(layout, name):
            continue
        step_start = time.monotonic()
        try:
            step()
        except subprocess.CalledProcessError as error:
            output = (error.stderr or error.stdout or "")[-2000:]
            raise StackError(f"{name}: {' '.join(map(str, error.cmd[:4]))} … failed:\n{output}") from None
        say(f"stack: {name} ready ({time.monotonic() - step_start:.1f} s)")
    say(f"stack: up in {time.monotonic() - started:.0f} s — https://localhost:{layout.https_port}/ "
        f"(certificate {layout.tls / 'cert.pem'}), primary port {layout.haproxy_primary}, "
        f"replicas port {layout.haproxy_replicas}, HAProxy stats http://127.0.0.1:{layout.haproxy_stats}/")  # fmt: skip


def _ports_free(layout: Layout) -> None:
    """Refuse to start a stack whose ports another process holds: its engines would fail to bind,
    or worse, clients would reach the other stack (two checkouts' test runs at once, on one host)."""
    if any(engines.running(layout, name) for name in _engines(layout)):
        return  # ``up`` on a stack that is partly up: its own engines hold some of the ports
    taken = [f"{what} {port}" for what, port in layout.ports().items() if port_open(layout.host, port)]
    if taken:
        raise StackError(
            f"ports in use by another process: {', '.join(taken)} "
            "(another stack on this host? stop it, or set MINQING_STACK_PORT_BASE)"
        )


def _semaphores_usable(layout: Layout) -> None:
    """Refuse to start when the stack's account cannot create a POSIX semaphore: Patroni makes one
    (a multiprocessing pool) to ask the other nodes before it promotes itself, so without
    /dev/shm the stack would come up and then fail its first failover."""
    probe = subprocess.run(  # noqa: S603
        engines.as_account(layout, ["python3", "-c", "import multiprocessing; multiprocessing.Lock()"]),
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        raise StackError(
            f"the account {layout.account} cannot create POSIX semaphores (/dev/shm: "
            f"{probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'failed'}); Patroni needs them "
            "to fail over. Mount a tmpfs there: mount -t tmpfs -o mode=1777 tmpfs /dev/shm (scripts/setup.sh does)"
        )


def _engines(layout: Layout) -> tuple[str, ...]:
    """The stack's supervised engines, in the order they are stopped."""
    return ("nginx", "app", "haproxy", *(f"patroni-{n.name}" for n in reversed(layout.nodes)), "etcd")


def _already(layout: Layout, step: str) -> bool:
    """Whether an engine of a step is running already (``up`` twice starts nothing twice)."""
    names = {"etcd": ["etcd"], "Patroni": [f"patroni-{n.name}" for n in layout.nodes], "HAProxy": ["haproxy"],
             "application": ["app"], "nginx": ["nginx"]}.get(step)  # fmt: skip
    return bool(names) and all(engines.running(layout, name) for name in names)


def down(layout: Layout, *, wipe: bool = False, say=print) -> None:
    for name in _engines(layout):
        stop(layout, name, timeout=60)
    for node in layout.nodes:
        postmaster_stop(layout, node)
    if wipe and layout.root.exists():
        shutil.rmtree(layout.root)
    say("stack: down" + (" and wiped" if wipe else ""))


def postmaster_stop(layout: Layout, node, *, kill: bool = False) -> None:
    """Stop a node's PostgreSQL if Patroni left it running (or, with ``kill``, kill it)."""
    pidfile = node.data / "postmaster.pid"
    if not pidfile.exists():
        return
    if kill:
        try:
            os.kill(int(pidfile.read_text().split()[0]), 9)
        except (ProcessLookupError, ValueError, OSError):
            pass
        return
    subprocess.run(  # noqa: S603
        engines.as_account(layout, [str(PG_BIN / "pg_ctl"), "-D", str(node.data), "-m", "fast", "-w", "stop"]),
        check=False, capture_output=True,
    )  # fmt: skip


def status(layout: Layout) -> list[str]:
    lines = []
    for name in ("etcd", *(f"patroni-{n.name}" for n in layout.nodes), "haproxy", "app", "nginx"):
        lines.append(f"{name:12} {'running' if engines.running(layout, name) else 'stopped'}")
    for member in engines.cluster_members(layout):
        lines.append(f"  {member.get('name')}: {member.get('role')} {member.get('state')} lag {member.get('lag', 0)}")
    lines.append(
        f"primary port {layout.haproxy_primary}: {'open' if port_open(layout.host, layout.haproxy_primary) else 'closed'}"
    )
    return lines
