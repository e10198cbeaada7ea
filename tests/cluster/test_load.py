"""Brute-force aborts of statements in flight, and many clients on every node at once:
clients only ever see 1213 (or a lock wait timeout) and keep their connections; nodes
converge."""

from __future__ import annotations

import random
import threading
import time

import pymysql
import pytest

from tests.cluster.conftest import NODES, Cluster, run_clients

HOT_ROWS = range(100, 120)  # a small hot set, like sysbench's special distribution
LOAD_SECONDS = 12.0
CLIENTS_PER_NODE = 4
# What a client may see under conflicting load (Galera's answers): certification failure
# or BF abort, and a lock wait timeout.
RETRYABLE = (1213, 1205)
IN_TRANS, AUTOCOMMIT = 0x0001, 0x0002  # server status flags


def _errno(exc: BaseException) -> int:
    return int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else -1


def test_statement_in_flight_aborted_for_an_applier_gets_1213(cluster: Cluster) -> None:
    """A local statement waiting on a lock while its transaction holds a row an applier
    needs is interrupted: the client gets 1213 (not the backend's 1317), its transaction
    is rolled back, and its connection keeps working."""
    with cluster.proxy(0) as setup, setup.cursor() as cur:
        cur.execute("INSERT INTO app.t VALUES (901, 0, 'a'), (902, 0, 'b')")
    cluster.wait_same_position()
    blocker = cluster.backend(1)  # holds row 902 so that the local statement waits
    local = cluster.proxy(1)
    outcome: list[BaseException | None] = []

    def waiting_statement() -> None:
        try:
            local.cursor().execute("UPDATE app.t SET note = 'local' WHERE id = 902")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    try:
        blocker.begin()
        blocker.cursor().execute("UPDATE app.t SET note = 'blocker' WHERE id = 902")
        local.begin()
        local.cursor().execute("UPDATE app.t SET note = 'local' WHERE id = 901")
        waiter = threading.Thread(target=waiting_statement)
        waiter.start()
        time.sleep(0.5)  # the statement now waits for the blocker's lock
        with cluster.proxy(0) as remote, remote.cursor() as cur:
            cur.execute("UPDATE app.t SET note = 'remote wins' WHERE id = 901")
        waiter.join(30)
        assert outcome and isinstance(outcome[0], pymysql.err.OperationalError), outcome
        assert _errno(outcome[0]) == 1213, outcome[0]
        blocker.rollback()
        cluster.wait_same_position()  # the applier commits once the abort freed its row
        with local.cursor() as cur:  # the session goes on, outside any transaction
            cur.execute("SELECT @@in_transaction, note FROM app.t WHERE id = 901")
            assert cur.fetchone() == (0, "remote wins")
            cur.execute("UPDATE app.t SET v = v + 1 WHERE id = 902")
    finally:
        local.close()
        blocker.close()
    assert len(set(cluster.checksums("app.t"))) == 1


@pytest.mark.parametrize("autocommit", [True, False])
def test_commit_answer_comes_from_the_proxy_with_the_right_status(
    cluster: Cluster, autocommit: bool
) -> None:
    """The proxy answers a replicated COMMIT itself (the backend committed already): the
    OK says "not in a transaction" and keeps the autocommit bit, and the session goes on."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        conn.autocommit(autocommit)
        for round_ in range(2):
            conn.begin()
            cur.execute("INSERT INTO app.t VALUES (%s, 0, 'committed')", (700 + round_,))
            assert conn.server_status & IN_TRANS
            conn.commit()
            assert not conn.server_status & IN_TRANS
            assert bool(conn.server_status & AUTOCOMMIT) == autocommit
            cur.execute("SELECT @@autocommit")
            assert cur.fetchone() == (int(autocommit),)
    cluster.wait_same_position()
    for i in range(NODES):
        with cluster.backend(i) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM app.t WHERE id IN (700, 701)")
            assert cur.fetchone() == (2,)


def test_many_clients_on_every_node_see_only_conflict_errors(cluster: Cluster) -> None:
    """Sysbench-like write transactions on a hot set from every node for a bounded time:
    no 1180 (no verdict), no 2013 (lost connection), no client left hanging; every
    node commits something (one client on a hot set may lose every race in a noisy
    12 s: first committer wins) and all backends end identical."""
    with cluster.proxy(0) as setup, setup.cursor() as cur:
        values = ", ".join(f"({i}, 0, 'hot')" for i in HOT_ROWS)
        cur.execute(f"INSERT INTO app.t VALUES {values}")
    cluster.wait_same_position()
    deadline = time.monotonic() + LOAD_SECONDS
    committed = [0] * (CLIENTS_PER_NODE * NODES)

    def transaction(conn: pymysql.connections.Connection, rng: random.Random) -> None:
        a, b = rng.sample(HOT_ROWS, 2)
        with conn.cursor() as cur:
            conn.begin()
            cur.execute("UPDATE app.t SET v = v + 1 WHERE id = %s", (a,))
            cur.execute("UPDATE app.t SET note = %s WHERE id = %s", (f"c{rng.random()}", b))
            cur.execute("DELETE FROM app.t WHERE id = %s", (b,))
            cur.execute("INSERT INTO app.t VALUES (%s, 0, 'again')", (b,))
            conn.commit()

    def client(slot: int) -> None:
        rng = random.Random(slot)
        conn = cluster.proxy(slot % NODES, read_timeout=60, write_timeout=60)
        try:
            while time.monotonic() < deadline:
                try:
                    transaction(conn, rng)
                    committed[slot] += 1
                except pymysql.err.OperationalError as exc:
                    if _errno(exc) not in RETRYABLE:
                        raise
                    conn.rollback()
        finally:
            conn.close()

    run_clients(client, len(committed), timeout=LOAD_SECONDS + 90)
    assert all(sum(committed[node::NODES]) for node in range(NODES)), committed
    assert len(set(cluster.checksums("app.t"))) == 1


@pytest.fixture(autouse=True)
def _no_leftover_rows(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM app.t WHERE id >= 100")
