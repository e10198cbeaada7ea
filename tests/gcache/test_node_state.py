"""A real node (`wsrepctl cluster up --nodes 1`): its gcache and grastate.dat in its state
dir, the lock that refuses a second process, Galera's grastate lifecycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from proxy.managed_mariadb import free_port_run
from tests.cluster.conftest import OWNED
from wsrep import grastate
from wsrep.gcache import GCache
from wsrepctl.node_config import NodeConfigError, load_node_config

pytestmark = pytest.mark.slow


def wsrepctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsrepctl", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def node_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port_run(1)
    up = wsrepctl(
        "cluster", "up", "--nodes", "1", "--dir", str(tmp_path / "c"), "--base-port", str(port),
        "--detach", *OWNED, timeout=240,
    )  # fmt: skip
    try:
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        yield tmp_path / "c", port
    finally:
        down = wsrepctl("cluster", "down", "--dir", str(tmp_path / "c"))
        assert down.returncode == 0, down.stderr


def test_node_gcache_and_grastate_lifecycle(node_dir: tuple[Path, int]) -> None:
    cluster, port = node_dir
    state = cluster / "node1"
    running = grastate.read(state / "grastate.dat")
    assert running is not None and running.seqno == -1 and not running.safe_to_bootstrap
    assert (state / "gcache" / "gcache.state").exists()

    # a second process on the same state dir: refused by the gcache lock, before it
    # touches the backend or the files
    second = wsrepctl("join", "--config", str(state / "node.toml"))
    assert second.returncode == 2, second
    assert f"gcache {state / 'gcache'} is open in another process" in second.stderr
    assert grastate.read(state / "grastate.dat") == running

    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE durable")
        cur.execute("CREATE TABLE durable.t (id INT PRIMARY KEY)")
        for i in range(5):
            cur.execute("INSERT INTO durable.t VALUES (%s)", (i,))
        cur.execute("SELECT cluster_uuid, seqno FROM wsrep.position")
        cluster_uuid, seqno = cur.fetchone()
    assert int(seqno) >= 7

    down = wsrepctl("cluster", "down", "--dir", str(cluster))
    assert down.returncode == 0, down.stderr
    # a clean stop: the committed position; the last member of the primary component
    saved = grastate.read(state / "grastate.dat")
    assert saved == grastate.GraState(uuid.UUID(cluster_uuid), int(seqno), True)
    status = wsrepctl("status", "--dir", str(cluster))
    assert f"node1: not running (grastate.dat: {cluster_uuid}:{seqno}, safe_to_bootstrap 1)" in (
        status.stdout
    ), status
    with GCache(state / "gcache") as gcache:  # the log survived, with what was delivered
        assert gcache.hard_state().cluster_uuid == uuid.UUID(cluster_uuid)
        span = gcache.seqno_range()
        assert span is not None and span[1] == int(seqno)

    # a restart with data is refused (state transfer is a later issue); the file is kept
    again = wsrepctl("join", "--config", str(state / "node.toml"), timeout=240)
    assert again.returncode == 2, again
    assert "rejoining with data needs a state transfer" in again.stderr
    assert grastate.read(state / "grastate.dat") == saved

    # a fresh backend under a gcache that delivered write sets: it would miss them
    shutil.rmtree(state / "db")
    wiped = wsrepctl("join", "--config", str(state / "node.toml"), timeout=240)
    assert wiped.returncode == 2, wiped
    assert f"has delivered up to seqno {seqno} but the backend is at" in wiped.stderr


@pytest.mark.parametrize(
    ("gcache", "says"),
    [
        ('size = "12Q"', "[gcache] invalid size '12Q'"),
        ("size = 1024", "[gcache] size 1024 must be between 1M and 1T"),
        ("sync = 1", "sync has the wrong type"),
        ('path = "x"', "[gcache] unknown key(s) ['path']"),
    ],
)
def test_bad_gcache_settings_are_refused_clearly(tmp_path: Path, gcache: str, says: str) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        '[node]\nname = "n"\nproxy = "127.0.0.1:1"\ngroup = "127.0.0.1:2"\n'
        'secret_file = "s"\n[backend]\nmanaged_dir = "db"\n[gcache]\n' + gcache + "\n"
    )
    with pytest.raises(NodeConfigError) as error:
        load_node_config(config)
    assert says in str(error.value)


def test_gcache_settings(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    base = '[node]\nname = "n"\nproxy = "127.0.0.1:1"\ngroup = "127.0.0.1:2"\n'
    config.write_text(base + 'secret_file = "s"\n[backend]\nmanaged_dir = "db"\n')
    default = load_node_config(config)
    assert default.gcache_path == tmp_path / "gcache"
    assert (default.gcache_size, default.gcache_sync) == (128 << 20, True)
    config.write_text(
        base + 'secret_file = "s"\n[backend]\nmanaged_dir = "db"\n'
        '[gcache]\ndir = "/var/gc"\nsize = "1G"\nsync = false\n'
    )
    custom = load_node_config(config)
    assert (custom.gcache_path, custom.gcache_size, custom.gcache_sync) == (
        Path("/var/gc"),
        1 << 30,
        False,
    )


def test_bad_gcache_size_on_the_command_line() -> None:
    result = wsrepctl(
        "arbitrator", "--name", "a", "--listen", "127.0.0.1:1", "--secret-file", "s",
        "--gcache-dir", "g", "--gcache-size", "lots",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--gcache-size: invalid size 'lots'" in result.stderr, result.stderr
