"""SIGKILL during load: one node's process and its mariadbd are killed by pid while
clients on all three nodes write; the two survivors keep committing, every commit
acknowledged to any client (the killed node's included: an acknowledged commit was
ordered, so the survivors have it) is on both survivors, and their checksums are equal.
The killed node's clients see connection errors, never a wrong answer."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pymysql
import pytest

from proxy.managed_mariadb import process_alive
from tests.cluster.conftest import NODES, Cluster, running_cluster

INIT_SQL = """
CREATE DATABASE chaos;
CREATE TABLE chaos.acks (id BIGINT PRIMARY KEY, node INT NOT NULL, note VARCHAR(64));
"""
CLIENTS_PER_NODE = 2
BEFORE_KILL = 2.0  # seconds of load on all three nodes
# Seconds of load after the kill; past 10 (the cluster's inactive timeout) the survivors
# also evict the dead node under load.
AFTER_KILL = float(os.environ.get("WSREP_CHAOS_AFTER_KILL", "4"))
MAX_WRITES = 5_000  # per client: bounded in count as well as in time
# Connection-level errors: what a client of a dead node may see.
CONNECTION_ERRORS = {2003, 2006, 2013}
# What a survivor may answer besides OK while the group settles on the smaller view:
# 1213 conflict, 1205 lock wait, 1047 not primary for a moment, 1180 outcome unknown
# (a commit ordered or not: it is neither counted as acknowledged nor as lost).
SURVIVOR_ERRORS = {1213, 1205, 1047, 1180}


@dataclass
class Load:
    """What every client tried and what it was told."""

    attempted: set[int] = field(default_factory=set)
    acknowledged: list[tuple[int, int, float]] = field(default_factory=list)  # id, node, when
    errors: Counter[tuple[int, int]] = field(default_factory=Counter)  # (node, code)
    failures: list[BaseException] = field(default_factory=list)


def _write(conn: pymysql.connections.Connection, ids: list[int], node: int) -> None:
    """One autocommit INSERT, or an explicit transaction of two."""
    with conn.cursor() as cur:
        if len(ids) == 1:
            cur.execute("INSERT INTO chaos.acks VALUES (%s, %s, 'autocommit')", (ids[0], node))
            return
        conn.begin()
        for row in ids:
            cur.execute("INSERT INTO chaos.acks VALUES (%s, %s, 'transaction')", (row, node))
        conn.commit()


def _client(cluster: Cluster, slot: int, node: int, load: Load, until: float) -> None:
    conn: pymysql.connections.Connection | None = None
    try:
        for n in range(MAX_WRITES):
            if time.monotonic() > until:
                return
            first = (slot * MAX_WRITES + n) * 2
            ids = [first, first + 1] if n % 3 == 2 else [first]
            try:
                if conn is None:
                    conn = cluster.proxy(node, connect_timeout=5, read_timeout=60)
                load.attempted.update(ids)
                _write(conn, ids, node)
                now = time.monotonic()
                load.acknowledged.extend((row, node, now) for row in ids)
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1
                load.errors[node, code] += 1
                if conn is not None:
                    with contextlib.suppress(pymysql.err.MySQLError):
                        conn.close()
                    conn = None
                time.sleep(0.05)
    except BaseException as exc:  # reported by the test
        load.failures.append(exc)
    finally:
        if conn is not None:
            with contextlib.suppress(pymysql.err.MySQLError):
                conn.close()


def _kill_node(cluster: Cluster, victim: int) -> None:
    """SIGKILL the node process and its mariadbd by pid; wait until both are gone. The
    pid file goes too, so `cluster down` never signals a recycled pid."""
    pids = [cluster.node_pid(victim), cluster.mariadbd_pid(victim)]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(process_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"pids {pids} still alive 30 s after SIGKILL"
        time.sleep(0.05)
    (cluster.dir / f"node{victim + 1}" / "node.pid").unlink()


def _ids_on(cluster: Cluster, i: int) -> set[int]:
    with cluster.backend(i) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM chaos.acks")
        return {row for (row,) in cur.fetchall()}


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("chaos"), INIT_SQL) as running:
        yield running


# node1 bootstrapped the group and leads it: killing it needs an election; node3 follows.
@pytest.mark.parametrize("victim", [0, 2], ids=["leader-node1", "follower-node3"])
def test_sigkill_a_node_and_its_mariadbd_during_load(cluster: Cluster, victim: int) -> None:
    survivors = [i for i in range(NODES) if i != victim]
    load = Load()
    start = time.monotonic()
    until = start + BEFORE_KILL + AFTER_KILL
    clients = [
        threading.Thread(target=_client, args=(cluster, slot, slot % NODES, load, until))
        for slot in range(CLIENTS_PER_NODE * NODES)
    ]
    for t in clients:
        t.start()
    time.sleep(BEFORE_KILL)
    _kill_node(cluster, victim)
    killed_at = time.monotonic()
    for t in clients:
        t.join(AFTER_KILL + 120)
    assert not any(t.is_alive() for t in clients), "a client hung"
    assert not load.failures, load.failures

    after_kill = Counter(node for _, node, when in load.acknowledged if when > killed_at)
    print(  # shown when the test fails
        f"acknowledged {len(load.acknowledged)} rows, after the kill by node {dict(after_kill)}; "
        f"errors by (node, code) {dict(load.errors)}"
    )
    assert all(after_kill[i] > 0 for i in survivors), f"commits after the kill: {after_kill}"
    victim_errors = {code for (node, code) in load.errors if node == victim}
    assert victim_errors <= CONNECTION_ERRORS, load.errors
    survivor_errors = {code for (node, code) in load.errors if node != victim}
    assert survivor_errors <= SURVIVOR_ERRORS, load.errors

    acknowledged = {row for row, _, _ in load.acknowledged}
    assert any(node == victim for _, node, _ in load.acknowledged)
    cluster.wait_same_position(timeout=60, nodes=survivors)
    for i in survivors:
        present = _ids_on(cluster, i)
        assert not acknowledged - present, f"node{i + 1} lost acknowledged commits"
        assert present <= load.attempted, f"node{i + 1} has rows nobody wrote"
    assert len(set(cluster.checksums("chaos.acks", nodes=survivors))) == 1
