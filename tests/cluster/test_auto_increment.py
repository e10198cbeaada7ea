"""Auto-increment control (Galera's wsrep_auto_increment_control) on a real 3-node
cluster: every node hands out ids of its own residue class, so concurrent inserts never
collide; when a node leaves, the survivors switch to increment 2, open sessions included."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.cluster.conftest import INIT_SQL, NODES, Cluster, running_cluster

SEQ_SQL = INIT_SQL + (
    "CREATE TABLE app.seq (id BIGINT AUTO_INCREMENT PRIMARY KEY, node INT NOT NULL, n INT);\n"
)
INSERTS_PER_CLIENT = 25
CLIENTS_PER_NODE = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("auto_increment"), SEQ_SQL) as running:
        yield running


def settings(conn: pymysql.connections.Connection, scope: str = "session") -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT @@{scope}.auto_increment_increment, @@{scope}.auto_increment_offset")
        increment, offset = cur.fetchone()
    return int(increment), int(offset)


def wait_for_globals(cluster: Cluster, nodes: range | list[int], increment: int) -> None:
    """Until every backend's GLOBAL increment is `increment` (set by the node's control)."""
    deadline = time.monotonic() + 30
    for i in nodes:
        while True:
            with cluster.backend(i) as conn:
                if settings(conn, "global")[0] == increment:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"node {i + 1}: global increment not {increment}")
            time.sleep(0.1)


def insert_concurrently(
    cluster: Cluster, conns: dict[int, list[pymysql.connections.Connection]]
) -> tuple[dict[int, list[int]], list[Any]]:
    """Autocommit INSERTs without ids from every connection at once: ids per node, errors."""
    ids: dict[int, list[int]] = {i: [] for i in conns}
    errors: list[Any] = []
    lock = threading.Lock()

    def client(node: int, conn: pymysql.connections.Connection) -> None:
        for n in range(INSERTS_PER_CLIENT):
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO app.seq (node, n) VALUES (%s, %s)", (node, n))
                    with lock:
                        ids[node].append(int(cur.lastrowid))
            except pymysql.err.MySQLError as exc:
                with lock:
                    errors.append((node, exc.args))

    threads = [
        threading.Thread(target=client, args=(node, conn))
        for node, node_conns in conns.items()
        for conn in node_conns
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return ids, errors


def test_nodes_insert_concurrently_without_colliding(cluster: Cluster) -> None:
    conns = {i: [cluster.proxy(i) for _ in range(CLIENTS_PER_NODE)] for i in range(NODES)}
    try:
        offsets = {i: settings(conns[i][0]) for i in range(NODES)}
        # increment = cluster size; offsets 1..3 in the view's member order (join order)
        assert sorted(offsets.values()) == [(3, 1), (3, 2), (3, 3)], offsets
        with cluster.proxy(0) as conn, conn.cursor() as cur:
            cur.execute("SHOW VARIABLES LIKE 'auto_increment%'")
            assert dict(cur.fetchall()) == {
                "auto_increment_increment": "3", "auto_increment_offset": str(offsets[0][1])
            }  # fmt: skip
            cur.execute("SHOW VARIABLES LIKE 'wsrep_auto_increment_control'")
            assert cur.fetchall() == (("wsrep_auto_increment_control", "ON"),)
        wait_for_globals(cluster, range(NODES), 3)

        ids, errors = insert_concurrently(cluster, conns)
        assert errors == []  # no 1213: ids never collide across nodes
        for i, node_ids in ids.items():
            assert len(node_ids) == CLIENTS_PER_NODE * INSERTS_PER_CLIENT
            assert {n % 3 for n in node_ids} == {offsets[i][1] % 3}, (i, offsets[i])
        with cluster.backend(2) as conn, conn.cursor() as cur:
            cluster.wait_same_position()
            cur.execute(
                "SELECT node, COUNT(*), COUNT(DISTINCT id) FROM app.seq GROUP BY node ORDER BY node"
            )
            expected = NODES * [CLIENTS_PER_NODE * INSERTS_PER_CLIENT]
            assert [row[1:] for row in cur.fetchall()] == [(n, n) for n in expected]
        assert len(set(cluster.checksums("app.seq"))) == 1
    finally:
        for node_conns in conns.values():
            for conn in node_conns:
                conn.close()


def test_survivors_switch_to_increment_two_when_a_node_leaves(cluster: Cluster) -> None:
    conns = {i: [cluster.proxy(i)] for i in (0, 1)}  # opened before the view change
    try:
        for i in (0, 1):
            assert settings(conns[i][0])[0] == 3
        os.kill(cluster.node_pid(2), signal.SIGTERM)  # node 3 leaves the group (clean stop)
        deadline = time.monotonic() + 90
        while not all(cluster.status(i)["cluster_size"] == 2 for i in (0, 1)):
            assert time.monotonic() < deadline, "node 3 never left the view"
            time.sleep(0.2)
        offsets = {i: settings(conns[i][0]) for i in (0, 1)}  # same sessions, new values
        assert sorted(offsets.values()) == [(2, 1), (2, 2)], offsets
        wait_for_globals(cluster, [0, 1], 2)

        ids, errors = insert_concurrently(cluster, conns)
        assert errors == []
        for i, node_ids in ids.items():
            assert {n % 2 for n in node_ids} == {offsets[i][1] % 2}, (i, offsets[i])
        assert len(set(cluster.checksums("app.seq", nodes=[0, 1]))) == 1
    finally:
        for node_conns in conns.values():
            for conn in node_conns:
                conn.close()
