"""Galera's clean shutdown on a real 3-node cluster: a node stopped with SIGTERM leaves the
group, so stopping nodes one by one keeps the last one primary and serving; the last one
to leave is the only one safe to bootstrap from, and `wsrepctl bootstrap` refuses the others.
(A failure, SIGKILL or partition, is tested in test_chaos.py and test_admission.py.)"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pymysql

from proxy.managed_mariadb import process_alive
from tests.cluster.conftest import INIT_SQL, Cluster, _wsrepctl, running_cluster
from wsrep import grastate

WAIT = 60.0  # generous: four engineers' clusters share two cores


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f}s"
        time.sleep(0.2)


def stop(cluster: Cluster, i: int) -> None:
    """SIGTERM node i's process (0-based) and wait until it is gone."""
    pid = cluster.node_pid(i)
    os.kill(pid, signal.SIGTERM)
    wait_for(f"node{i + 1} exits", lambda: not process_alive(pid))


def saved(cluster: Cluster, i: int) -> grastate.GraState:
    state = grastate.read(cluster.dir / f"node{i + 1}" / grastate.FILE_NAME)
    assert state is not None
    return state


def test_nodes_stopped_one_by_one_leave_and_the_last_one_serves(tmp_path: Path) -> None:
    with running_cluster(tmp_path, INIT_SQL) as cluster:
        with cluster.proxy(2) as conn, conn.cursor() as cur:
            cur.execute("UPDATE app.t SET v = 3 WHERE id = 1")
        cluster.wait_same_position()

        stop(cluster, 2)
        wait_for("a view of node1 and node2", lambda: cluster.status(0)["cluster_size"] == 2)
        stop(cluster, 1)
        # node1 alone is still a primary component (1 of 1), not 1 of 3
        wait_for("node1 alone", lambda: cluster.status(0)["cluster_size"] == 1)
        status = cluster.fresh_status(0)
        assert status["cluster_status"] == "Primary" and status["ready"], status
        with cluster.proxy(0) as conn, conn.cursor() as cur:
            cur.execute("UPDATE app.t SET v = 1 WHERE id = 1")
            cur.execute("INSERT INTO app.t VALUES (3, 1, 'alone')")
            cur.execute("SELECT v FROM app.t WHERE id IN (1, 3) ORDER BY id")
            assert cur.fetchall() == ((1,), (1,))

        logs = "".join((cluster.dir / f"node{i}" / "node.log").read_text() for i in (1, 2, 3))
        assert "removing node3: it leaves the group" in logs
        assert "removing node2: it leaves the group" in logs
        assert "evicting" not in logs  # they left; nobody waited for their silence
        uuid = saved(cluster, 2).cluster_uuid
        for i in (1, 2):  # left cleanly (a committed position), but not last
            state = saved(cluster, i)
            assert state.cluster_uuid == uuid != grastate.NIL_UUID and state.seqno > 0
            assert not state.safe_to_bootstrap

        # bootstrapping from node2 could lose node1's later writes: refused, nothing touched
        node2 = cluster.dir / "node2"
        before = (node2 / grastate.FILE_NAME).read_bytes()
        refused = _wsrepctl("bootstrap", "--config", str(node2 / "node.toml"), timeout=120)
        assert refused.returncode == 2, refused
        assert grastate.UNSAFE_BOOTSTRAP in refused.stderr, refused.stderr
        assert (node2 / grastate.FILE_NAME).read_bytes() == before
        assert not (node2 / "node.pid").exists() and not (node2 / "db" / "mysqld.pid").exists()
        committed = cluster.positions([0])[0]
    # `cluster down` stopped node1 last: the only one safe to bootstrap from
    last = saved(cluster, 0)
    assert last.safe_to_bootstrap and last.seqno == committed and last.cluster_uuid == uuid

    # `cluster up` on the dir bootstraps node1: refused too had node1 not left last
    node1 = cluster.dir / "node1" / grastate.FILE_NAME
    grastate.write(node1, grastate.GraState(uuid, committed, False))
    up = _wsrepctl(
        "cluster", "up", "--nodes", "3", "--dir", str(cluster.dir), "--base-port",
        str(cluster.base_port), "--detach", timeout=240,
    )  # fmt: skip
    assert up.returncode == 1, up
    assert "node1 exited with status 2" in up.stderr and grastate.UNSAFE_BOOTSTRAP in up.stderr
    assert saved(cluster, 0) == grastate.GraState(uuid, committed, False)


def test_a_stopped_leader_hands_over_and_writes_go_on(tmp_path: Path) -> None:
    """SIGTERM on the group leader's node: once its removal committed it tells a caught-up
    follower to campaign at once (Raft's TimeoutNow) rather than leave the others waiting
    out an election timeout; a client of another node sees a pause, not 1047.
    (bench/leader_stall.py measures the write stall.)"""
    with running_cluster(tmp_path, INIT_SQL) as cluster:
        leader = cluster.leader()
        writer = (leader + 1) % 3
        acks: list[float] = []
        refused: list[int] = []
        done = threading.Event()

        def write() -> None:
            deadline = time.monotonic() + WAIT
            with cluster.proxy(writer) as conn, conn.cursor() as cur:
                while not done.is_set() and time.monotonic() < deadline:
                    try:
                        cur.execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
                        acks.append(time.monotonic())
                    except pymysql.err.OperationalError as exc:
                        refused.append(exc.args[0])
                        time.sleep(0.01)

        client = threading.Thread(target=write, daemon=True)
        client.start()
        wait_for("writes before the stop", lambda: len(acks) >= 10)
        stopped_at = time.monotonic()
        stop(cluster, leader)
        try:
            wait_for("a write after the stop", lambda: acks[-1] > stopped_at + 0.2)
        finally:
            done.set()
            client.join(WAIT)
        logs = [(cluster.dir / f"node{i + 1}" / "node.log").read_text() for i in range(3)]
        handed = re.search(r"handing over to (node\d)", logs[leader])
        assert handed, logs[leader][-2000:]
        successor = int(handed.group(1)[4:]) - 1
        assert "hands leadership over: campaigning now" in logs[successor]
        assert cluster.leader() == successor
        # The writer's node was without a primary view for the election's few tens of ms:
        # its statements waited (`not_ready_hold`) instead of getting 1047.
        assert 1047 not in refused, refused
        cluster.wait_same_position(nodes=[i for i in range(3) if i != leader])
