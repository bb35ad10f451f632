"""Production configuration from the same templates as the drills (``python -m scripts.stack
render --production DIR --hosts db1,db2,db3``): one folder per host with the files to install
under its ``/etc``, and ``secrets/`` with the passwords and keys the files use (install them
readable by their service only, and keep the personal-data key away from the database and its
backups: README "Production").
"""

from __future__ import annotations

import os
from pathlib import Path

from .layout import TEMPLATES, Layout

UNITS = sorted(path.name for path in (TEMPLATES / "systemd").iterdir())


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def render_production(layout: Layout, out: Path) -> list[Path]:
    written = []
    hosts = [node.host for node in layout.nodes]
    cluster = ",".join(f"e{i}=http://{host}:{layout.etcd_peer}" for i, host in enumerate(hosts, start=1))
    layout.extra["etcd_hosts"] = ",".join(f"{host}:{layout.etcd_client}" for host in hosts)
    for number, node in enumerate(layout.nodes, start=1):
        base = out / node.host
        written.append(_write(base / "etc/patroni/config.yml", layout.render("patroni.yml", node=node), 0o600))
        written.append(_write(base / "etc/minqing/post_bootstrap.sh", layout.render("post_bootstrap.sh"), 0o700))
        # The repository lives on the application's host; the other nodes reach it over SSH.
        backrest = "pgbackrest.conf" if node.host == layout.host else "pgbackrest-node.conf"
        written.append(_write(base / "etc/minqing/pgbackrest.conf", layout.render(backrest, node=node), 0o640))
        written.append(
            _write(
                base / "etc/default/etcd",
                f"ETCD_NAME=e{number}\nETCD_DATA_DIR=/var/lib/etcd/default\n"
                f"ETCD_LISTEN_CLIENT_URLS=http://{node.host}:{layout.etcd_client}\n"
                f"ETCD_ADVERTISE_CLIENT_URLS=http://{node.host}:{layout.etcd_client}\n"
                f"ETCD_LISTEN_PEER_URLS=http://{node.host}:{layout.etcd_peer}\n"
                f"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://{node.host}:{layout.etcd_peer}\n"
                f"ETCD_INITIAL_CLUSTER={cluster}\nETCD_INITIAL_CLUSTER_STATE=new\n",
            )
        )
    app = out / layout.host
    written.append(_write(app / "etc/haproxy/haproxy.cfg", layout.render("haproxy.cfg")))
    written.append(_write(app / "etc/nginx/nginx.conf", layout.render("nginx.conf")))
    written.append(_write(app / "etc/minqing/proxy_params", layout.render("proxy_params")))
    environment = layout.app_environment() | {"MINQING_AUDIT_ANCHOR_FILE": "/srv/minqing-anchors/anchors.jsonl"}
    written.append(
        _write(app / "etc/minqing/minqing.env", "".join(f"{k}={v}\n" for k, v in sorted(environment.items())), 0o600)
    )
    for unit in UNITS:
        written.append(_write(app / "etc/systemd/system" / unit, layout.render(f"systemd/{unit}")))
    return written
