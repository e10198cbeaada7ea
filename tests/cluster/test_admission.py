"""Admission on a real 3-node cluster: causal reads (wsrep_sync_wait) and a node cut off
from the primary component (1047, dirty reads), through the text protocol (PyMySQL) and
server-side prepared statements (mysql-connector-python)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import mysql.connector
import pymysql
import pytest

from tests.cluster.conftest import Cluster

NOT_READY = 1047
CAUSAL_ROUNDS = 12


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.1)


def value_of(conn: pymysql.connections.Connection, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def run(conn: pymysql.connections.Connection, sql: str) -> tuple[tuple[Any, ...], ...]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return tuple(cur.fetchall())


def error_of(run: Callable[[], object]) -> int | None:
    """The MySQL error code `run()` raised, None if it succeeded."""
    try:
        run()
    except (pymysql.err.MySQLError, mysql.connector.Error) as exc:
        code = getattr(exc, "errno", None) or exc.args[0]
        return int(code)
    return None


def connector(cluster: Cluster, i: int) -> Any:
    """mysql-connector-python (pure Python): its `cursor(prepared=True)` sends
    COM_STMT_PREPARE / COM_STMT_EXECUTE."""
    return mysql.connector.connect(
        host="127.0.0.1",
        port=cluster.base_port + i,
        user="root",
        password="",
        autocommit=True,
        use_pure=True,
        ssl_disabled=True,
        connection_timeout=30,
    )


def test_causal_read_sees_a_write_committed_on_another_node(cluster: Cluster) -> None:
    """Node 3's applier is held up by a lock (a backend transaction the BF abort watchdog
    kills after ~0.2 s), so a plain read there may miss node 1's commit; a causal read
    (wsrep_sync_wait = 1) must always see it."""
    with cluster.proxy(0) as writer, cluster.proxy(2) as causal, cluster.proxy(2) as plain:
        with causal.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SHOW SESSION VARIABLES LIKE 'wsrep_sync_wait'")
            assert cur.fetchall() == (("wsrep_sync_wait", "1"),)
        assert value_of(plain, "SELECT @@wsrep_sync_wait") == 0
        stale = 0
        for round_ in range(1, CAUSAL_ROUNDS + 1):
            value = 1000 + round_
            holder = cluster.backend(2)
            try:
                with holder.cursor() as cur:  # what node 3's applier will wait for
                    cur.execute("BEGIN")
                    cur.execute("SELECT v FROM app.t WHERE id = 1 FOR UPDATE")
                with writer.cursor() as cur:
                    cur.execute("UPDATE app.t SET v = %s WHERE id = 1", (value,))
                if value_of(plain, "SELECT v FROM app.t WHERE id = 1") != value:
                    stale += 1  # allowed without sync_wait
                assert value_of(causal, "SELECT v FROM app.t WHERE id = 1") == value, round_
            finally:
                with contextlib.suppress(pymysql.err.MySQLError):
                    holder.close()  # killed by the watchdog, usually
        print(f"plain reads that missed the write: {stale} of {CAUSAL_ROUNDS}")
        with causal.cursor() as cur:
            cur.execute("SHOW STATUS LIKE 'wsrep_causal_reads'")
            assert int(cur.fetchone()[1]) >= CAUSAL_ROUNDS  # Galera's counter of causal waits
    assert len(set(cluster.checksums("app.t"))) == 1


def test_causal_read_on_prepared_statements(cluster: Cluster) -> None:
    conn = connector(cluster, 2)
    try:
        text = conn.cursor()
        text.execute("SET SESSION wsrep_sync_wait = 1")
        prepared = conn.cursor(prepared=True)
        with cluster.proxy(0) as writer, writer.cursor() as cur:
            for value in (2001, 2002, 2003):
                cur.execute("UPDATE app.t SET v = %s WHERE id = 2", (value,))
                prepared.execute("SELECT v FROM app.t WHERE id = ?", (2,))
                assert prepared.fetchall() == [(value,)]
    finally:
        conn.close()


@contextlib.contextmanager
def isolated(cluster: Cluster, node: int) -> Iterator[None]:
    """The other two node processes stopped (SIGSTOP) until the block ends (SIGCONT):
    `node` hears from nobody, and check-quorum takes it out of the primary component."""
    others = [cluster.node_pid(i) for i in range(3) if i != node]
    try:
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: not cluster.status(node)["ready"], 30, "out of the primary component")
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


# (statement, error without dirty reads, error with wsrep_dirty_reads = 1)
TEXT_CASES = [
    ("SELECT v FROM app.t WHERE id = 1", NOT_READY, None),
    ("INSERT INTO app.t VALUES (50, 0, 'np')", NOT_READY, NOT_READY),
    ("UPDATE app.t SET v = 0 WHERE id = 1", NOT_READY, NOT_READY),
    ("DELETE FROM app.t WHERE id = 2", NOT_READY, NOT_READY),
    ("BEGIN", NOT_READY, None),
    ("SELECT 1", None, None),
    ("SELECT @@version, @@autocommit", None, None),
    ("SHOW TABLES FROM app", None, None),
    ("SET autocommit = 1", None, None),
    ("USE app", None, None),
    ("DO 1", NOT_READY, None),
]


def test_isolated_node_refuses_until_it_rejoins(cluster: Cluster) -> None:
    text = cluster.proxy(2)
    conn = connector(cluster, 2)
    prepared_read = conn.cursor(prepared=True)
    prepared_read.execute("SELECT v FROM app.t WHERE id = ?", (1,))  # prepared while primary
    before = prepared_read.fetchall()
    try:
        with isolated(cluster, 2):
            seen = []
            for dirty in (0, 1):
                with text.cursor() as cur:
                    cur.execute(f"SET SESSION wsrep_dirty_reads = {dirty}")
                for sql, *_ in TEXT_CASES:
                    seen.append(error_of(lambda sql=sql: run(text, sql)))  # type: ignore[misc]
                    if sql == "BEGIN" and seen[-1] is None:
                        run(text, "ROLLBACK")
            expected = [case[1] for case in TEXT_CASES] + [case[2] for case in TEXT_CASES]
            assert seen == expected
            with text.cursor() as cur:
                cur.execute(
                    "SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_cluster_status')"
                )
                assert dict(cur.fetchall()) == {
                    "wsrep_ready": "OFF", "wsrep_cluster_status": "non-Primary"
                }  # fmt: skip
            text.select_db("app")  # COM_INIT_DB is allowed, as in Galera
            text.ping(reconnect=False)  # COM_PING too
            with cluster.proxy(2) as fresh:  # a new connection is accepted
                assert error_of(lambda: run(fresh, "SELECT * FROM app.t")) == NOT_READY

            text_cursor = conn.cursor()
            text_cursor.execute("SET SESSION wsrep_dirty_reads = 0")

            def execute(sql: str, params: tuple[int, ...], cursor: Any = None) -> object:
                cur = cursor or conn.cursor(prepared=True)
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None

            read = "SELECT v FROM app.t WHERE id = ?"
            assert error_of(lambda: execute(read, (1,), prepared_read)) == NOT_READY  # EXECUTE
            assert error_of(lambda: execute(read, (1,))) == NOT_READY  # PREPARE
            insert = "INSERT INTO app.t VALUES (?, 0, 'np')"
            assert error_of(lambda: execute(insert, (51,))) == NOT_READY
            text_cursor.execute("SET SESSION wsrep_dirty_reads = 1")
            assert execute(read, (1,), prepared_read) == before  # dirty reads allow reads
            assert execute(read, (1,)) == before
            assert error_of(lambda: execute(insert, (52,))) == NOT_READY  # never writes
            text_cursor.execute("SET SESSION wsrep_dirty_reads = 0")

        wait_for(lambda: cluster.status(2)["ready"], 60, "back in the primary component")
        wait_for(
            lambda: error_of(lambda: run(text, "SELECT 1 FROM app.t LIMIT 1")) is None,
            30,
            "serving reads again",
        )
        prepared_read.execute("SELECT v FROM app.t WHERE id = ?", (1,))
        assert prepared_read.fetchall() == before
        with text.cursor() as cur:
            cur.execute("INSERT INTO app.t VALUES (53, 0, 'after')")
        with cluster.proxy(0) as other:
            wait_for(
                lambda: value_of(other, "SELECT COUNT(*) FROM app.t WHERE id = 53") == 1,
                30,
                "replicated from the rejoined node",
            )
        rows = value_of(text, "SELECT COUNT(*) FROM app.t WHERE id IN (50, 51, 52)")
        assert rows == 0  # nothing refused reached a backend
    finally:
        conn.close()
        text.close()
    assert len(set(cluster.checksums("app.t"))) == 1


@pytest.mark.parametrize("value", ["16", "-1", "'x'", "1 + 1"])
def test_bad_sync_wait_is_refused_and_the_session_goes_on(cluster: Cluster, value: str) -> None:
    with cluster.proxy(1) as conn:
        assert error_of(lambda: value_of(conn, f"SET wsrep_sync_wait = {value}")) in (
            1231, 1232, 1235
        )  # fmt: skip
        assert value_of(conn, "SELECT @@wsrep_sync_wait") == 0
        assert value_of(conn, "SELECT COUNT(*) FROM app.t") >= 2
