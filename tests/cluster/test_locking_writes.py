"""A transaction made only of locking writes certifies from the seqno its node had
committed at COMMIT, not at its first statement (docs/design/certification.md, "A later
last_seen"): no spurious 1213 for a write set it had already seen applied, and still no
lost update."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import mysql.connector
import pymysql
import pytest

from tests.cluster.conftest import NODES, Cluster, commit_times, run_clients, running_cluster

pytestmark = pytest.mark.mariadb

INIT_SQL = """
CREATE DATABASE app;
CREATE TABLE app.counters (id INT PRIMARY KEY, n BIGINT NOT NULL);
CREATE TABLE app.audited (id INT PRIMARY KEY, n BIGINT NOT NULL);
CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, n BIGINT);
CREATE TRIGGER app.audited_au AFTER UPDATE ON app.audited FOR EACH ROW
  INSERT INTO app.audit (n) VALUES (NEW.n);
INSERT INTO app.counters VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (8, 0), (9, 0),
  (10, 0), (11, 0), (100, 0);
INSERT INTO app.audited VALUES (1, 0), (2, 0);
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("locking"), INIT_SQL) as running:
        yield running


def _value(cluster: Cluster, node: int, table: str, row: int) -> int:
    with cluster.backend(node) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COALESCE(MAX(n), 0) FROM app.{table} WHERE id = %s", (row,))
        return int(cur.fetchone()[0])


def _values(cluster: Cluster, table: str, row: int) -> list[int]:
    cluster.wait_same_position()
    return [_value(cluster, i, table, row) for i in range(NODES)]


def _wait_applied(cluster: Cluster, node: int, table: str, row: int, want: int) -> None:
    deadline = time.monotonic() + 30
    while _value(cluster, node, table, row) != want:
        assert time.monotonic() < deadline, f"node {node} never applied {table} {row} = {want}"
        time.sleep(0.02)


def test_an_increment_after_a_remote_one_was_applied_commits(cluster: Cluster) -> None:
    """A: BEGIN, a write of another row; B commits an increment of row 1; once A's node
    applied it, A increments row 1 too and commits (with last_seen at BEGIN: 1213)."""
    a, b = cluster.proxy(0), cluster.proxy(1)
    try:
        a.begin()
        a.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 2")
        b.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
        _wait_applied(cluster, 0, "counters", 1, 1)
        a.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
        a.commit()
    finally:
        a.close()
        b.close()
    assert _values(cluster, "counters", 1) == [2] * NODES
    assert _values(cluster, "counters", 2) == [1] * NODES


def test_prepared_statements_are_judged_by_their_text(cluster: Cluster) -> None:
    """The same through COM_STMT_PREPARE/EXECUTE (what sysbench sends), unqualified
    table names in the client's database."""
    a = mysql.connector.connect(
        host="127.0.0.1", port=cluster.base_port + 2, user="root", database="app"
    )
    b = cluster.proxy(0)
    try:
        cur = a.cursor(prepared=True)
        a.start_transaction()
        cur.execute("UPDATE counters SET n = n + ? WHERE id = ?", (1, 4))
        b.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 3")
        _wait_applied(cluster, 2, "counters", 3, 1)
        cur.execute("UPDATE counters SET n = n + ? WHERE id = ?", (1, 3))
        cur.execute("INSERT INTO counters (id, n) VALUES (?, ?)", (7, 1))
        a.commit()
    finally:
        a.close()
        b.close()
    assert _values(cluster, "counters", 3) == [2] * NODES
    assert _values(cluster, "counters", 7) == [1] * NODES


def _commit_after_a_remote_increment_fails(
    cluster: Cluster, first: str, table: str, row: int
) -> None:
    """A runs `first`; B increments `row`; once A's node applied it, A increments the row
    too: A's COMMIT gets 1213 (the snapshot rule), and B's increment alone stays."""
    a, b = cluster.proxy(0), cluster.proxy(1)
    try:
        a.begin()
        a.cursor().execute(first)
        b.cursor().execute(f"UPDATE app.{table} SET n = n + 1 WHERE id = %s", (row,))
        _wait_applied(cluster, 0, table, row, 1)
        a.cursor().execute(f"UPDATE app.{table} SET n = n + 1 WHERE id = %s", (row,))
        with pytest.raises(pymysql.err.OperationalError) as failed:
            a.commit()
        assert failed.value.args[0] == 1213
    finally:
        a.close()
        b.close()
    assert _values(cluster, table, row) == [1] * NODES


def test_a_plain_read_first_keeps_the_snapshot_rule(cluster: Cluster) -> None:
    """A SELECT before the remote write took a snapshot: the transaction still fails."""
    _commit_after_a_remote_increment_fails(
        cluster, "SELECT n FROM app.counters WHERE id = 5", "counters", 5
    )
    assert len(set(cluster.checksums("app.counters"))) == 1


def test_a_table_with_user_triggers_keeps_the_snapshot_rule(cluster: Cluster) -> None:
    """A user trigger may read anything: writes to its table are not locking writes."""
    _commit_after_a_remote_increment_fails(
        cluster, "UPDATE app.audited SET n = n + 1 WHERE id = 2", "audited", 1
    )
    assert len(set(cluster.checksums("app.audited", "app.audit"))) == 1


def test_a_ddl_during_the_transaction_keeps_the_snapshot_rule(cluster: Cluster) -> None:
    """Tables are judged by the catalog of their time; a DDL (which may have created a
    trigger) replaced it before the COMMIT: the old rule applies."""
    a, b = cluster.proxy(0), cluster.proxy(1)
    try:
        a.begin()
        a.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 6")
        b.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
        b.cursor().execute("CREATE TABLE app.later (id INT PRIMARY KEY)")
        cluster.wait_same_position()
        before = _value(cluster, 0, "counters", 1)
        a.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
        with pytest.raises(pymysql.err.OperationalError) as failed:
            a.commit()
        assert failed.value.args[0] == 1213
    finally:
        a.close()
        b.close()
    assert _values(cluster, "counters", 1) == [before] * NODES
    assert len(set(cluster.checksums("app.counters"))) == 1


def test_a_backend_deadlock_ends_the_transaction_for_the_proxy_too(cluster: Cluster) -> None:
    """InnoDB rolls its deadlock victim's whole transaction back, and its 1213 carries no
    status flags: a write the client sends next must be certified (wrapped), not run as
    an autocommit on its node only."""
    a, b = cluster.proxy(0), cluster.proxy(0)
    failures: list[pymysql.err.OperationalError] = []

    def locking(conn: pymysql.connections.Connection, row: int) -> None:
        try:
            conn.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = %s", (row,))
        except pymysql.err.OperationalError as exc:
            failures.append(exc)

    try:
        a.begin()
        a.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 8")
        b.begin()
        b.cursor().execute("UPDATE app.counters SET n = n + 1 WHERE id = 9")
        waiter = threading.Thread(target=locking, args=(a, 9))
        waiter.start()
        time.sleep(0.5)  # a waits for b's row 9
        locking(b, 8)  # and b for a's row 8: InnoDB picks one of them
        waiter.join(60)
        assert [exc.args[0] for exc in failures] == [1213]
        for conn, row in ((a, 10), (b, 11)):  # the victim writes on without a ROLLBACK
            with contextlib.suppress(pymysql.err.OperationalError):
                conn.cursor().execute("UPDATE app.counters SET n = 77 WHERE id = %s", (row,))
            with contextlib.suppress(pymysql.err.OperationalError):
                conn.commit()
    finally:
        a.close()
        b.close()
    assert _values(cluster, "counters", 10) == [77] * NODES
    assert _values(cluster, "counters", 11) == [77] * NODES
    assert len(set(cluster.checksums("app.counters"))) == 1


def test_blind_increments_on_every_node_lose_nothing(cluster: Cluster) -> None:
    """`UPDATE ... SET n = n + 1` in explicit transactions (with a write of a row of its
    own first, so the increment lands mid-transaction) from two clients per node at
    once: the final value on every node is the number of acknowledged commits."""
    per_client = 12
    acknowledged = [0] * (2 * NODES)
    start = _value(cluster, 0, "counters", 100)

    def client(slot: int) -> None:
        with cluster.proxy(slot % NODES) as conn:

            def increment() -> None:
                with conn.cursor() as cur:
                    conn.begin()
                    cur.execute(
                        "INSERT INTO app.counters VALUES (%s, 1) ON DUPLICATE KEY UPDATE n = n + 1",
                        (1000 + slot,),
                    )
                    cur.execute("UPDATE app.counters SET n = n + 1 WHERE id = 100")
                    conn.commit()

            acknowledged[slot] = commit_times(conn, increment, per_client)

    run_clients(client, 2 * NODES, timeout=180)
    total = sum(acknowledged)
    assert total > 0
    assert _values(cluster, "counters", 100) == [start + total] * NODES
    for slot in range(2 * NODES):
        assert _values(cluster, "counters", 1000 + slot) == [acknowledged[slot]] * NODES
    assert len(set(cluster.checksums("app.counters"))) == 1
