"""The production configuration (``python -m scripts.stack render --production``) and the local
stack's, checked by the engines that will read them."""

from __future__ import annotations

import configparser
import shutil
import socket
import subprocess

import pytest

from scripts.stack import lifecycle
from scripts.stack.engines import StackError
from scripts.stack.layout import ROOT, local_layout, prepare, production_layout
from scripts.stack.lifecycle import certificate, render_local
from scripts.stack.production import UNITS, render_production

HOSTS = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]


@pytest.fixture
def rendered(tmp_path):
    layout = production_layout(hosts=HOSTS, secrets=tmp_path / "secrets")
    written = render_production(layout, tmp_path)
    return tmp_path, written


def backrest(path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def test_every_host_gets_its_files_and_the_first_the_application(rendered):
    out, written = rendered
    for host in HOSTS:
        for name in ("etc/patroni/config.yml", "etc/minqing/pgbackrest.conf", "etc/default/etcd"):
            assert out / host / name in written
        assert f"ETCD_LISTEN_CLIENT_URLS=http://{host}:2379" in (out / host / "etc/default/etcd").read_text()
    units = sorted(p.name for p in (out / HOSTS[0] / "etc/systemd/system").iterdir())
    assert units == UNITS and "minqing.service" in units
    assert not (out / HOSTS[1] / "etc/nginx").exists()
    # Secrets are readable by their owner only; the personal-data key is not in any database file.
    environment = out / HOSTS[0] / "etc/minqing/minqing.env"
    assert environment.stat().st_mode & 0o077 == 0
    key = (out / "secrets" / "personal-data-key").read_text().strip()
    assert f"MINQING_PERSONAL_DATA_KEY={key}" in environment.read_text()
    for host in HOSTS:
        for path in (out / host).rglob("*"):
            if path.is_file() and "minqing.env" not in path.name:
                assert key not in path.read_text(), path


def test_the_backup_repository_is_on_the_first_host_and_every_node_archives_to_it(rendered):
    out, _ = rendered
    repository = backrest(out / HOSTS[0] / "etc/minqing/pgbackrest.conf")
    assert repository["global"]["repo1-path"] == "/var/lib/minqing/backup"
    assert [repository["minqing"].get(f"pg{i}-host") for i in (1, 2, 3)] == [None, HOSTS[1], HOSTS[2]]
    for host in HOSTS[1:]:
        node = backrest(out / host / "etc/minqing/pgbackrest.conf")
        assert {"repo1-host": HOSTS[0], "repo1-host-user": "postgres"}.items() <= dict(node["global"]).items()
        assert "repo1-path" not in node["global"]
        assert sorted(node["minqing"]) == ["pg1-path", "pg1-port", "pg1-socket-path"]


def test_haproxy_accepts_its_configuration(rendered):
    out, _ = rendered
    configuration = out / HOSTS[0] / "etc/haproxy/haproxy.cfg"
    check = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", str(configuration)], capture_output=True, text=True)  # noqa: S603
    assert check.returncode == 0, check.stdout + check.stderr


def test_nginx_accepts_the_local_stacks_configuration():
    layout = local_layout(root=ROOT / "var" / "stack-config-test", base=29000)
    try:
        prepare(layout)
        (layout.root / "run").mkdir(exist_ok=True)
        render_local(layout)
        certificate(layout)
        configuration = layout.conf / "nginx.conf"
        check = subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(configuration)], capture_output=True, text=True)  # noqa: S603
        assert check.returncode == 0, check.stderr
        assert "test is successful" in check.stderr
    finally:
        shutil.rmtree(layout.root, ignore_errors=True)


def test_a_stack_does_not_start_on_ports_another_process_holds(tmp_path):
    """Two checkouts' test runs on one host would otherwise reach each other's databases."""
    layout = local_layout(root=tmp_path / "stack", base=28000)
    assert len(set(layout.ports().values())) == len(layout.ports()) == 12
    with socket.socket() as holder:
        holder.bind((layout.host, layout.haproxy_primary))
        holder.listen()
        with pytest.raises(StackError) as refused:
            lifecycle.up(layout, scale="tiny")
    assert str(refused.value) == (
        "ports in use by another process: HAProxy primary 28500 "
        "(another stack on this host? stop it, or set MINQING_STACK_PORT_BASE)"
    )
    assert not lifecycle.reaches_database(layout)
