"""End to end on a real 3-node cluster: writes anywhere are everywhere, conflicts give 1213
to exactly one side, read-only transactions don't replicate, nodes stay identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request

import pymysql
import pytest
from pymysql.constants import SERVER_STATUS

from proxy.backend_client import BackendClient
from proxy.protocol.wire import frame, lenenc_bytes
from tests.cluster.conftest import NODES, Cluster, commit_times, run_clients

# Conflicting-commit rounds in all, run by PAIRS client pairs at once (distinct rows).
ROUNDS = int(os.environ.get("WSREP_CLUSTER_ROUNDS", "1000"))
PAIRS = 6
LOG_TAIL = 15  # lines of each node's log a failed round shows


def _rows(cluster: Cluster, i: int, sql: str) -> tuple[tuple[object, ...], ...]:
    with cluster.backend(i) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return tuple(cur.fetchall())


def test_a_write_on_each_node_is_visible_on_all(cluster: Cluster) -> None:
    for i in range(NODES):
        with cluster.proxy(i) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO app.t VALUES (%s, %s, %s)", (100 + i, i, f"from node{i + 1}"))
    cluster.wait_same_position()
    for i in range(NODES):
        rows = _rows(cluster, i, "SELECT id, v, note FROM app.t WHERE id >= 100 ORDER BY id")
        assert rows == tuple((100 + n, n, f"from node{n + 1}") for n in range(NODES))
    assert len(set(cluster.checksums("app.t", "app.counters"))) == 1


def test_explicit_transactions_and_rollbacks(cluster: Cluster) -> None:
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        conn.begin()
        cur.execute("INSERT INTO app.t VALUES (200, 1, 'a'), (201, 2, 'b')")
        cur.execute("UPDATE app.t SET note = 'changed' WHERE id = 200")
        cur.execute("DELETE FROM app.t WHERE id = 201")
        conn.commit()
        conn.begin()
        cur.execute("INSERT INTO app.t VALUES (202, 3, 'rolled back')")
        conn.rollback()
        cur.execute("SET autocommit = 0")
        cur.execute("UPDATE app.t SET v = 42 WHERE id = 200")
        cur.execute("COMMIT")
    cluster.wait_same_position()
    for i in range(NODES):
        rows = _rows(cluster, i, "SELECT id, v, note FROM app.t WHERE id >= 200 ORDER BY id")
        assert rows == ((200, 42, "changed"),)
    assert len(set(cluster.checksums("app.t"))) == 1


def test_an_autocommit_write_answers_out_of_transaction(cluster: Cluster) -> None:
    """The proxy wraps it in a transaction; its OK must carry the flags after the COMMIT
    (mysql-connector refuses to start a transaction while they say "in transaction")."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        for sql in (
            "INSERT INTO app.t VALUES (500, 0, 'flags')",
            "UPDATE app.t SET v = 1 WHERE id = 500",
            "DELETE FROM app.t WHERE id = 500",
        ):
            cur.execute(sql)
            assert cur.rowcount == 1
            assert not conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS, sql
    assert len(set(cluster.checksums("app.t"))) == 1


def test_read_only_transactions_do_not_replicate(cluster: Cluster) -> None:
    seqno = cluster.wait_same_position()
    before = cluster.fresh_status(0)["replicated"]
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        conn.begin()
        cur.execute("SELECT * FROM app.t")
        conn.commit()
        cur.execute("SELECT COUNT(*) FROM app.t")
        cur.execute("UPDATE app.t SET v = v WHERE id = -1")  # writes nothing
    assert cluster.fresh_status(0)["replicated"] == before
    assert cluster.wait_same_position() == seqno


def _commit_at_once(conns: dict[str, pymysql.connections.Connection]) -> dict[str, object]:
    """COMMIT on every connection at the same moment; "ok" or the error code of each."""
    outcomes: dict[str, object] = {}
    barrier = threading.Barrier(len(conns), timeout=30)

    def commit(name: str, conn: pymysql.connections.Connection) -> None:
        barrier.wait()
        try:
            conn.commit()
            outcomes[name] = "ok"
        except pymysql.err.OperationalError as exc:
            outcomes[name] = exc.args[0]

    threads = [threading.Thread(target=commit, args=item) for item in conns.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def _wait_row(
    backends: list[pymysql.connections.Connection], row: int, want: tuple[object, ...]
) -> None:
    """Until every backend has `want` as (v, note) of app.t row `row` (bounded)."""
    deadline = time.monotonic() + 30
    for conn in backends:
        while True:
            with conn.cursor() as cur:
                cur.execute("SELECT v, note FROM app.t WHERE id = %s", (row,))
                got = cur.fetchone()
            if got == want:
                break
            assert time.monotonic() < deadline, f"row {row}: {got} on a node, want {want}"
            time.sleep(0.005)


def _round_failed(
    cluster: Cluster, where: str, row: int, outcomes: dict[str, object], exc: Exception
) -> AssertionError:
    """What a failed round needs to diagnose itself: where, the outcomes so far, the row
    on every node, and the end of every node's log."""
    lines = [f"{where}: {exc!r}; outcomes {outcomes}"]
    for i in range(NODES):
        try:
            got = _rows(cluster, i, f"SELECT v, note FROM app.t WHERE id = {row}")
        except pymysql.err.MySQLError as read_error:
            got = (repr(read_error),)
        log = (cluster.dir / f"node{i + 1}" / "node.log").read_text(errors="replace")
        tail = "\n    ".join(log.splitlines()[-LOG_TAIL:])
        lines.append(f"node{i + 1}: row {row} = {got}; log tail:\n    {tail}")
    return AssertionError("\n".join(lines))


def _conflicting_rounds(cluster: Cluster, pair: int, rounds: int) -> int:
    """`rounds` rounds on one row: node `pair` and the next node update it in one
    transaction each and COMMIT at the same moment; exactly one commits, the other gets
    1213, and every node ends the round with the winner's values."""
    row = 400 + pair
    nodes = {"a": pair % NODES, "b": (pair + 1) % NODES}
    with cluster.proxy(nodes["a"]) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO app.t VALUES (%s, -1, 'start')", (row,))
    clients = {name: cluster.proxy(node) for name, node in nodes.items()}
    backends = [cluster.backend(i) for i in range(NODES)]
    try:
        for round_ in range(rounds):
            where = f"pair {pair} (a: node{nodes['a'] + 1}, b: node{nodes['b'] + 1}) round {round_}"
            outcomes: dict[str, object] = {}
            try:
                for name, conn in clients.items():
                    step = f"{name}'s BEGIN + UPDATE"
                    conn.begin()
                    conn.cursor().execute(
                        "UPDATE app.t SET v = %s, note = %s WHERE id = %s", (round_, name, row)
                    )
                step = "COMMIT at once"
                outcomes = _commit_at_once(clients)
                assert sorted(map(str, outcomes.values())) == ["1213", "ok"], "not one of each"
                winner = next(name for name, outcome in outcomes.items() if outcome == "ok")
                step = f"waiting for {winner}'s values everywhere"
                _wait_row(backends, row, (round_, winner))
            except (AssertionError, pymysql.err.MySQLError) as exc:
                raise _round_failed(cluster, f"{where}, {step}", row, outcomes, exc) from exc
    finally:
        for conn in [*clients.values(), *backends]:
            conn.close()
    return rounds


def test_concurrent_updates_of_one_row_on_two_nodes(cluster: Cluster) -> None:
    """ROUNDS rounds in all, by PAIRS pairs of clients at once, each pair on its own row
    and its own two nodes (every pair of nodes, both ways round)."""
    failures: list[BaseException] = []
    done = [0] * PAIRS

    def pair_rounds(pair: int) -> None:
        try:
            rounds = ROUNDS // PAIRS + (pair < ROUNDS % PAIRS)
            done[pair] = _conflicting_rounds(cluster, pair, rounds)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=pair_rounds, args=(pair,)) for pair in range(PAIRS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not failures, "\n\n".join(map(str, failures))
    assert sum(done) == ROUNDS
    assert len(set(cluster.checksums("app.t"))) == 1


def test_refusals_are_clear_and_harmless(cluster: Cluster) -> None:
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError, match="reserved for wsrep appliers"):
            cur.execute("SET @wsrep_applier = 1")
        with pytest.raises(pymysql.err.MySQLError, match="does not replicate CREATE EVENT"):
            cur.execute("CREATE EVENT app.nope ON SCHEDULE EVERY 1 DAY DO DELETE FROM app.t")
        with pytest.raises(pymysql.err.MySQLError) as dup:
            cur.execute("INSERT INTO app.t VALUES (1, 0, 'duplicate key')")
        assert dup.value.args[0] == 1062
        cur.execute("SELECT @@in_transaction")  # the failed autocommit write left nothing open
        assert cur.fetchone() == (0,)
        cur.execute("INSERT INTO app.t VALUES (300, 0, 'still works')")
    assert len(set(cluster.checksums("app.t"))) == 1


def test_no_lost_update_from_read_modify_write_on_every_node(cluster: Cluster) -> None:
    """Two clients per node increment one counter by reading it and writing back the
    value + 1; certification (and aborts for appliers) turn every would-be lost update
    into an error, so the final value is exactly the number of acknowledged commits."""
    per_client = 8
    acknowledged = [0] * (2 * NODES)
    start = _rows(cluster, 0, "SELECT n FROM app.counters WHERE id = 1")[0][0]

    def increment(conn: pymysql.connections.Connection) -> None:
        with conn.cursor() as cur:
            conn.begin()
            cur.execute("SELECT n FROM app.counters WHERE id = 1")
            (n,) = cur.fetchone()
            cur.execute("UPDATE app.counters SET n = %s WHERE id = 1", (n + 1,))
            conn.commit()

    def client(slot: int) -> None:
        with cluster.proxy(slot % NODES) as conn:
            acknowledged[slot] = commit_times(conn, lambda: increment(conn), per_client)

    run_clients(client, 2 * NODES, timeout=120)
    cluster.wait_same_position()
    total = sum(acknowledged)
    assert total > 0
    for i in range(NODES):
        assert _rows(cluster, i, "SELECT n FROM app.counters WHERE id = 1") == ((start + total,),)
    assert len(set(cluster.checksums("app.counters"))) == 1


def test_remote_write_aborts_a_local_transaction_holding_its_row(cluster: Cluster) -> None:
    """An idle local transaction holding a row lock must not block the applier: it is
    aborted (BF abort), its client gets 1213, and the nodes converge."""
    before = cluster.fresh_status(1)["local_bf_aborts"]
    local = cluster.proxy(1)
    try:
        local.begin()
        local.cursor().execute("UPDATE app.t SET note = 'local, uncommitted' WHERE id = 2")
        with cluster.proxy(0) as remote, remote.cursor() as cur:
            cur.execute("UPDATE app.t SET note = 'remote wins' WHERE id = 2")
        cluster.wait_same_position()
        with pytest.raises(pymysql.err.OperationalError) as aborted:
            local.commit()
        assert aborted.value.args[0] == 1213
    finally:
        local.close()
    for i in range(NODES):
        assert _rows(cluster, i, "SELECT note FROM app.t WHERE id = 2") == (("remote wins",),)
    assert cluster.fresh_status(1)["local_bf_aborts"] == before + 1
    assert len(set(cluster.checksums("app.t"))) == 1


async def test_an_execute_the_proxy_answers_keeps_its_parameter_types(cluster: Cluster) -> None:
    """A client sends a prepared statement's parameter types with its first execute only.
    When the proxy answers that execute itself (here: the 1213 of a BF-aborted
    transaction), the next execute must bring them to the backend, or it answers 1210."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO app.t VALUES (600, 0, 'start')")
    cluster.wait_same_position()
    async with await BackendClient.connect("127.0.0.1", cluster.base_port + 1, "root") as local:
        await local.stream.send(frame(b"\x16UPDATE app.t SET note = ? WHERE id = ?", 0))
        prepared = (await local.stream.read_packet()).payload
        assert prepared[0] == 0x00, prepared
        for _ in range(2):  # two parameter definitions, no columns, no EOF (DEPRECATE_EOF)
            await local.stream.read_packet()
        await local.query("BEGIN")
        await local.query("UPDATE app.t SET note = 'local, uncommitted' WHERE id = 600")
        with cluster.proxy(0) as remote, remote.cursor() as cur:
            cur.execute("UPDATE app.t SET note = 'remote' WHERE id = 600")
        cluster.wait_same_position()  # the applier on node 2 aborted the local transaction
        head = b"\x17" + prepared[1:5] + b"\x00\x01\x00\x00\x00" + b"\x00"  # + NULL bitmap
        values = lenenc_bytes(b"prepared") + (600).to_bytes(8, "little")
        types = b"\xfd\x00\x08\x00"  # VAR_STRING, LONGLONG
        await local.stream.send(frame(head + b"\x01" + types + values, 0))
        refused = (await local.stream.read_packet()).payload  # answered by the proxy
        assert refused[0] == 0xFF and int.from_bytes(refused[1:3], "little") == 1213, refused
        await local.stream.send(frame(head + b"\x00" + values, 0))  # types sent before
        reply = (await local.stream.read_packet()).payload
        assert reply[0] == 0x00, reply  # not 1210 "Incorrect arguments to mysqld_stmt_execute"
    cluster.wait_same_position()
    for i in range(NODES):
        assert _rows(cluster, i, "SELECT note FROM app.t WHERE id = 600") == (("prepared",),)


def test_status_command_shows_every_node_synced(cluster: Cluster) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "wsrepctl", "status", "--dir", str(cluster.dir), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    docs = json.loads(run.stdout)
    assert sorted(docs) == [f"node{i + 1}" for i in range(NODES)]
    for doc in docs.values():
        assert doc["state"] == "SYNCED" and doc["local_state"] == 4
        assert doc["cluster_size"] == NODES and doc["cluster_status"] == "Primary"
    assert len({doc["cluster_state_uuid"] for doc in docs.values()}) == 1


def test_wsrep_status_through_every_proxy(cluster: Cluster) -> None:
    """SHOW STATUS LIKE 'wsrep%' and @@wsrep_* are answered by the node, Galera's way."""
    for i in range(NODES):
        with cluster.proxy(i) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_%'")
            status = dict(cur.fetchall())
            assert status["wsrep_cluster_size"] == str(NODES)
            assert status["wsrep_cluster_status"] == "Primary"
            assert status["wsrep_local_state_comment"] == "Synced"
            assert status["wsrep_ready"] == "ON"
            assert status["wsrep_local_index"] in {str(n) for n in range(NODES)}
            assert int(status["wsrep_last_committed"]) >= 0
            cur.execute("SELECT @@wsrep_node_name")
            assert cur.fetchone() == (f"node{i + 1}",)
            cur.execute("SHOW STATUS LIKE 'Threads_connected'")  # still the backend's
            assert cur.fetchone()[0] == "Threads_connected"
    uuids = set()
    for i in range(NODES):
        with cluster.proxy(i) as conn, conn.cursor() as cur:
            cur.execute("SHOW STATUS LIKE 'wsrep_cluster_state_uuid'")
            uuids.add(cur.fetchone()[1])
    assert len(uuids) == 1


def test_health_endpoint_says_synced_on_every_node(cluster: Cluster) -> None:
    """The clustercheck convention HAProxy's `option httpchk` relies on."""
    for i in range(NODES):
        config = tomllib.loads((cluster.dir / f"node{i + 1}" / "node.toml").read_text())
        url = f"http://{config['node']['health']}/"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
            assert reply.read() == b"Galera Cluster Node is synced.\r\n"
