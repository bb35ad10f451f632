"""Where everything of a stack lives: ports, directories, the account its engines run as, its
secrets; and the rendering of the templates with those values.

The single-machine stack (:func:`local_layout`) keeps everything under ``var/stack``: every
engine listens on 127.0.0.1 only, on ports from ``MINQING_STACK_PORT_BASE`` (default 26000) up,
and runs as an unprivileged account (``postgres`` when started as root, else the caller).
:func:`production_layout` gives the values of a real install (standard ports, ``/etc`` and
``/var/lib`` paths, one host per node), for ``render --production``.
"""

from __future__ import annotations

import base64
import getpass
import os
import secrets
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Roles of the database, as scripts/db.sh names them for the development cluster.
OWNER_ROLE, APP_ROLE = "minqing", "minqing_app"
DATABASE = "minqing"
SCOPE = "minqing"
#: Secrets made once per stack: database passwords and the application's keys.
SECRET_NAMES = ("superuser", "replication", "rewind", "owner", "app", "django", "personal-data-key")


@dataclass(frozen=True)
class Node:
    """One Patroni-managed PostgreSQL node."""

    name: str
    host: str
    pg_port: int
    rest_port: int
    data: Path
    sockets: Path


@dataclass(frozen=True)
class Layout:
    """A stack's places and ports."""

    root: Path
    account: str
    nodes: tuple[Node, ...]
    etcd_client: int
    etcd_peer: int
    haproxy_primary: int
    haproxy_replicas: int
    haproxy_stats: int
    app_port: int
    https_port: int
    http_port: int
    host: str = "127.0.0.1"
    server_name: str = "localhost"
    #: Production values differ: the same templates render both.
    production: bool = False
    extra: dict = field(default_factory=dict)
    #: Where the secrets are made and kept (default ``root/secrets``; a production render keeps
    #: them beside the rendered files for the operator to install).
    secrets_root: Path | None = None

    # --- places --------------------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def pids(self) -> Path:
        return self.root / "pid"

    @property
    def secrets(self) -> Path:
        return self.secrets_root or self.root / "secrets"

    @property
    def conf(self) -> Path:
        return Path("/etc/minqing") if self.production else self.root / "conf"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def backup_repo(self) -> Path:
        return self.root / "backup"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def nginx(self) -> Path:
        return self.root / "nginx"

    @property
    def static(self) -> Path:
        return self.root / "static"

    @property
    def anchors(self) -> Path:
        return self.root / "audit" / "anchors.jsonl"

    def ports(self) -> dict[str, int]:
        """Every port the stack listens on, by what listens there."""
        named = {
            "etcd client": self.etcd_client, "etcd peer": self.etcd_peer,
            "HAProxy primary": self.haproxy_primary, "HAProxy replicas": self.haproxy_replicas,
            "HAProxy stats": self.haproxy_stats, "application": self.app_port,
            "nginx HTTPS": self.https_port, "nginx HTTP": self.http_port,
        }  # fmt: skip
        for node in self.nodes:
            named[f"PostgreSQL {node.name}"] = node.pg_port
            named[f"Patroni {node.name}"] = node.rest_port
        return named

    # --- secrets -------------------------------------------------------------------------------

    def secret(self, name: str) -> str:
        """A secret of the stack, made on first use and kept in ``secrets/<name>`` (mode 0600)."""
        if name not in SECRET_NAMES:
            raise KeyError(name)
        path = self.secrets / name
        if not path.exists():
            self.secrets.mkdir(parents=True, exist_ok=True)
            os.chmod(self.secrets, 0o700)
            value = (
                base64.urlsafe_b64encode(os.urandom(32)).decode()
                if name == "personal-data-key"
                else secrets.token_hex(24)
            )
            path.write_text(value)
            os.chmod(path, 0o600)
        return path.read_text().strip()

    # --- URLs the application uses -------------------------------------------------------------

    def database_url(self, role: str, *, replicas: bool = False) -> str:
        user = OWNER_ROLE if role == "owner" else APP_ROLE
        port = self.haproxy_replicas if replicas else self.haproxy_primary
        return f"postgis://{user}:{self.secret(role)}@{self.host}:{port}/{DATABASE}"

    def app_environment(self) -> dict[str, str]:
        """What the application (and manage.py) needs to run on this stack."""
        return {
            "DJANGO_SETTINGS_MODULE": "settings.prod",
            "DJANGO_SECRET_KEY": self.secret("django"),
            "DJANGO_ALLOWED_HOSTS": f"{self.host},localhost",
            "MINQING_PERSONAL_DATA_KEY": self.secret("personal-data-key"),
            "MINQING_TRUSTED_PROXIES": "127.0.0.1",
            "DATABASE_URL": self.database_url("app"),
            "MINQING_OWNER_DATABASE_URL": self.database_url("owner"),
            "MINQING_REPLICA_DATABASE_URL": self.database_url("app", replicas=True),
            "MINQING_AUDIT_ANCHOR_FILE": str(self.anchors),
            "MINQING_MEDIA_ROOT": str(self.root / "media"),
            "MINQING_IMPORT_DIR": str(self.root / "imports"),
            "MINQING_REPORT_DIR": str(self.root / "reports"),
            "MINQING_STATIC_ROOT": str(self.static),
            "MINQING_PORT": str(self.app_port),
            "MINQING_HOST": self.host,
        }

    # --- rendering -----------------------------------------------------------------------------

    def values(self, node: Node | None = None) -> dict[str, str]:
        """The template variables (``$name`` in templates/), for one node where it matters."""
        etcd_hosts = f"{self.host}:{self.etcd_client}"
        values = {
            "root": str(self.root),
            "repo": str(ROOT),
            "account": self.account,
            # pgBackRest's repository: on the application's host (production: README "Production").
            "repo_host": self.host,
            "scope": SCOPE,
            "database": DATABASE,
            "owner_role": OWNER_ROLE,
            "app_role": APP_ROLE,
            "host": self.host,
            "server_name": self.server_name,
            "etcd_hosts": etcd_hosts,
            "etcd_client": str(self.etcd_client),
            "etcd_peer": str(self.etcd_peer),
            "haproxy_primary": str(self.haproxy_primary),
            "haproxy_replicas": str(self.haproxy_replicas),
            "haproxy_stats": str(self.haproxy_stats),
            "app_port": str(self.app_port),
            "https_port": str(self.https_port),
            "http_port": str(self.http_port),
            "logs": str(self.logs),
            "pids": str(self.pids),
            "conf": str(self.conf),
            "tls": str(self.tls),
            "nginx": str(self.nginx),
            "static": str(self.static),
            "backup_repo": str(self.backup_repo),
            "max_lag_bytes": str(16 * 1024 * 1024),
            "superuser_password": self.secret("superuser"),
            "replication_password": self.secret("replication"),
            "rewind_password": self.secret("rewind"),
            "owner_password": self.secret("owner"),
            "app_password": self.secret("app"),
            "pg_bin": "/usr/lib/postgresql/15/bin",
            "pg_hba_net": "samenet" if self.production else "127.0.0.1/32",
            "haproxy_servers_primary": self._haproxy_servers("/primary"),
            "haproxy_servers_replicas": self._haproxy_servers(f"/replica?lag={16 * 1024 * 1024}"),
            "pgbackrest_hosts": self._pgbackrest_hosts(),
            **self.extra,
        }
        if node is not None:
            values |= {
                "node": node.name,
                "node_host": node.host,
                "pg_port": str(node.pg_port),
                "rest_port": str(node.rest_port),
                "data": str(node.data),
                "sockets": str(node.sockets),
            }
        return values

    def _haproxy_servers(self, check: str) -> str:
        return "\n".join(f"    server {n.name} {n.host}:{n.pg_port} check port {n.rest_port}" for n in self.nodes)

    def _pgbackrest_hosts(self) -> str:
        lines = []
        for number, node in enumerate(self.nodes, start=1):
            lines.append(f"pg{number}-path={node.data}")
            lines.append(f"pg{number}-port={node.pg_port}")
            lines.append(f"pg{number}-socket-path={node.sockets}")
            if self.production and node.host != self.host:
                lines.append(f"pg{number}-host={node.host}")
        return "\n".join(lines)

    def render(self, template: str, *, node: Node | None = None) -> str:
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        return string.Template(text).substitute(self.values(node))


def _account() -> str:
    """Engines refuse (PostgreSQL) or should not (the rest) run as root: as root, the Debian
    ``postgres`` account runs them."""
    return "postgres" if os.geteuid() == 0 else getpass.getuser()


def local_layout(*, root: Path | None = None, base: int | None = None, nodes: int = 2) -> Layout:
    """The unprivileged single-machine stack under ``var/stack``."""
    base = base if base is not None else int(os.environ.get("MINQING_STACK_PORT_BASE", "26000"))
    root = root or ROOT / "var" / "stack"
    return Layout(
        root=root,
        account=_account(),
        nodes=tuple(
            Node(
                name=f"n{i}",
                host="127.0.0.1",
                pg_port=base + 432 + i,
                rest_port=base + 8 + i,
                data=root / f"n{i}" / "data",
                sockets=root / f"n{i}" / "run",
            )
            for i in range(1, nodes + 1)
        ),
        etcd_client=base + 379,
        etcd_peer=base + 380,
        haproxy_primary=base + 500,
        haproxy_replicas=base + 501,
        haproxy_stats=base + 502,
        app_port=base + 800,
        https_port=base + 443,
        http_port=base + 80,
    )


def production_layout(*, hosts: list[str], secrets: Path, root: Path = Path("/var/lib/minqing")) -> Layout:
    """A real install: one database node per host (standard ports), the application, HAProxy
    and nginx on the first host; files in /var/lib/minqing and configuration in /etc."""
    return Layout(
        root=root,
        account="postgres",
        nodes=tuple(
            Node(
                name=f"pg{i}",
                host=host,
                pg_port=5432,
                rest_port=8008,
                data=Path("/var/lib/postgresql/15/main"),
                sockets=Path("/var/run/postgresql"),
            )
            for i, host in enumerate(hosts, start=1)
        ),
        etcd_client=2379,
        etcd_peer=2380,
        haproxy_primary=5000,
        haproxy_replicas=5001,
        haproxy_stats=7000,
        app_port=8000,
        https_port=443,
        http_port=80,
        host=hosts[0],
        server_name="minqing.example.gov.cn",
        production=True,
        secrets_root=secrets,
    )


def prepare(layout: Layout) -> None:
    """The stack's directories, owned by its account (its engines write there)."""
    for path in (layout.root, layout.logs, layout.pids, layout.conf, layout.etcd_data, layout.backup_repo,
                 layout.tls, layout.nginx, layout.nginx / "tmp", layout.static, layout.anchors.parent,
                 *(n.sockets for n in layout.nodes), *(n.data.parent for n in layout.nodes)):  # fmt: skip
        path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for path in [layout.root, *layout.root.rglob("*")]:
            if layout.secrets in (path, *path.parents) or layout.static in (path, *path.parents):
                continue
            shutil.chown(path, layout.account)
        os.chmod(layout.etcd_data, 0o700)
        for node in layout.nodes:
            os.chmod(node.sockets, 0o700)
