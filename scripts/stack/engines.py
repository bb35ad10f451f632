"""Starting, watching and stopping the stack's engines under ``var/stack``.

Each engine runs as a daemon of its own session (so it outlives the command that started it and
is stopped as a group), as the stack's account, with its output in ``log/<name>.log`` and its
process id in ``pid/<name>.pid``. Waits are bounded and say what they waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .layout import ROOT, Layout, Node

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says what and where to look."""


def as_account(layout: Layout, command: list[str]) -> list[str]:
    return ["runuser", "-u", layout.account, "--", *command] if os.geteuid() == 0 else command


def start(layout: Layout, name: str, command: list[str], *, account: bool = True, env: dict | None = None) -> int:
    """Start ``command`` as a daemon named ``name``; returns its process id."""
    if running(layout, name):
        raise StackError(f"{name} is already running (pid file {layout.pids / name}.pid)")
    # The daemon keeps its own copy of the log's descriptor: ours is closed once it has started.
    with (layout.logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603  (the stack's own engines, our arguments)
            as_account(layout, command) if account else command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (layout.pids / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def pid_of(layout: Layout, name: str) -> int | None:
    path = layout.pids / f"{name}.pid"
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def running(layout: Layout, name: str) -> bool:
    pid = pid_of(layout, name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(layout: Layout, name: str, *, timeout: float = 30.0, kill: bool = False) -> None:
    """Stop the daemon's whole session: SIGTERM (SIGKILL with ``kill``, or after ``timeout``)."""
    pid = pid_of(layout, name)
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)
    if _group_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    (layout.pids / f"{name}.pid").unlink(missing_ok=True)


def _group_alive(pid: int) -> bool:
    # A leader this process started and that has exited stays a zombie, still a member of its
    # group, until it is reaped: reap it first, or a stopped engine looks alive until the timeout.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(what: str, check: Callable[[], bool], *, seconds: float, log: Path | None = None) -> float:
    """Wait until ``check()`` is true; returns the seconds it took. Raises :class:`StackError`
    naming ``what`` (and the log to read) when it is not within ``seconds``."""
    start_time = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start_time
        except OSError:
            pass
        if time.monotonic() - start_time > seconds:
            where = f"; see {log}" if log else ""
            raise StackError(f"{what}: not ready within {seconds:g} s{where}")
        time.sleep(0.2)


def http_status(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0


def port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def node_role(node: Node) -> str:
    """``primary``, ``replica`` or ``down``, as Patroni's REST API answers."""
    if http_status(f"http://{node.host}:{node.rest_port}/primary") == 200:
        return "primary"
    if http_status(f"http://{node.host}:{node.rest_port}/replica") == 200:
        return "replica"
    return "down"


def cluster_members(layout: Layout) -> list[dict]:
    """Patroni's view of the cluster (name, role, state, lag) from any node that answers."""
    for node in layout.nodes:
        try:
            with urllib.request.urlopen(f"http://{node.host}:{node.rest_port}/cluster", timeout=2) as answer:  # noqa: S310
                return json.loads(answer.read())["members"]
        except (OSError, ValueError, KeyError):
            continue
    return []


def tls_context(layout: Layout) -> ssl.SSLContext:
    """A client context trusting the stack's own certificate."""
    return ssl.create_default_context(cafile=str(layout.tls / "cert.pem"))
