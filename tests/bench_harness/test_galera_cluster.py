"""The Galera comparison cluster: 3 real nodes come up Synced, replicate, and all stop."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import cluster_bench, galera_cluster
from bench.galera_cluster import GaleraCluster, GaleraError, wsrep_status
from proxy.managed_mariadb import process_alive

pytestmark = pytest.mark.mariadb
needs_galera = pytest.mark.skipif(
    bool(galera_cluster.missing_prerequisites()),
    reason=f"missing {galera_cluster.missing_prerequisites()}",
)

SCRIPT = Path(galera_cluster.__file__)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GaleraCluster]:
    with GaleraCluster(tmp_path_factory.mktemp("galera")) as running:
        pids = [node.pid for node in running.nodes]
        assert all(pid is not None and process_alive(pid) for pid in pids)
        yield running
    # Leaving the block stopped every node: the last check of the smoke test.
    assert not any(process_alive(pid) for pid in pids if pid is not None)


@needs_galera
def test_three_nodes_synced_in_one_cluster(cluster: GaleraCluster) -> None:
    states = [wsrep_status(node) for node in cluster.nodes]
    assert [s["wsrep_local_state_comment"] for s in states] == ["Synced"] * 3
    assert [s["wsrep_cluster_size"] for s in states] == ["3"] * 3
    assert len({s["wsrep_cluster_state_uuid"] for s in states}) == 1
    assert len({node.port for node in cluster.nodes}) == 3


@needs_galera
def test_a_row_written_on_a_joiner_is_on_every_node(cluster: GaleraCluster) -> None:
    with cluster.nodes[1].connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS smoke")
        cur.execute("CREATE TABLE smoke.t (id INT PRIMARY KEY, v VARCHAR(20))")
        cur.execute("INSERT INTO smoke.t VALUES (1, 'from galera2')")
    for node in cluster.nodes:
        with node.connect() as conn, conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")  # causal read: sees every commit
            cur.execute("SELECT id, v FROM smoke.t")
            assert cur.fetchall() == ((1, "from galera2"),), node.name


@needs_galera
def test_bench_cell_runs_on_every_node_and_counts_conflicts(cluster: GaleraCluster) -> None:
    nodes = cluster.addresses()
    cluster_bench.prepare_tables(nodes)
    cell = cluster_bench.run_cell(
        "galera", "oltp_write_only", nodes, threads=2, seconds=1, home=cluster.base_dir
    )
    assert len(cell.runs) == 3
    assert all(run.transactions > 0 for run in cell.runs)
    assert cell.tps > 0 and cell.p95_ms > 0
    assert cell.conflicts is not None and cell.conflicts.cert_failures >= 0
    # the three mariadbd of this cluster, and the CPU they used to commit
    assert cell.cpu is not None and cell.cpu.processes == 3
    assert cell.cpu_ms_per_trx is not None and cell.cpu_ms_per_trx > 0


@needs_galera
def test_script_up_then_down(tmp_path: Path) -> None:
    up = subprocess.run(
        [sys.executable, str(SCRIPT), "up", "--dir", str(tmp_path), "--nodes", "2"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert [line.split()[0] for line in up.stdout.splitlines()] == ["galera1", "galera2"]
        running = GaleraCluster.from_state(tmp_path)
        pids = [node.pid for node in running.nodes]
        assert all(pid is not None and process_alive(pid) for pid in pids)
    finally:
        down = subprocess.run(
            [sys.executable, str(SCRIPT), "down", "--dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert down.returncode == 0, down.stderr
    assert not any(process_alive(pid) for pid in pids if pid is not None)
    assert not (tmp_path / galera_cluster.STATE_FILE).exists()


def test_down_without_a_cluster_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert galera_cluster.main(["down", "--dir", str(tmp_path)]) == 1
    assert "no cluster state" in capsys.readouterr().err


def test_missing_provider_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(galera_cluster, "PROVIDER", tmp_path / "no-libgalera.so")
    with pytest.raises(GaleraError, match="galera-4"):
        GaleraCluster(tmp_path).start()
    assert not list(tmp_path.glob("galera*/data"))  # nothing was started


def test_up_refuses_a_dir_with_a_running_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / galera_cluster.STATE_FILE).write_text("[]")
    assert galera_cluster.main(["up", "--dir", str(tmp_path)]) == 1
    assert "already up" in capsys.readouterr().err
    assert not list(tmp_path.glob("galera*/"))  # no node dir: nothing was started


@pytest.mark.parametrize("argv", [["--nodes", "0"], ["--nodes", "x"], ["--appliers", "0"]])
def test_bad_script_arguments_are_refused(tmp_path: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        galera_cluster.main(["up", "--dir", str(tmp_path), *argv])
    assert exit_info.value.code == 2


def test_every_node_gets_its_own_ports() -> None:
    nodes = galera_cluster.NodePorts.allocate(3)
    ports = [p for n in nodes for p in (n.sql, n.group, n.ist, n.sst)]
    assert len(nodes) == 3
    assert len(set(ports)) == 12
