"""A pipelined commit whose predecessor entered its commit and then failed (its COMMIT
lost after its position update took the row lock) must not commit past the hole."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from proxy.backend_client import BackendClient, BackendError
from proxy.capture import Position, read_position
from proxy.capture import mariadb_sql as sql
from proxy.protocol.constants import Capability
from proxy.replication import commit_in_order
from tests.capture.conftest import CLUSTER, PairFactory, connect
from wsrep.ordering import OrderingGate

pytestmark = pytest.mark.mariadb


async def _running(conn: BackendClient, thread_id: int) -> str:
    """What statement connection `thread_id` is running now ("" if none)."""
    query = f"SELECT info FROM information_schema.processlist WHERE id = {thread_id}"
    rows = (await conn.query(query)).rows
    return (rows[0][0] or b"").decode() if rows else ""


async def _commit(
    conn: BackendClient, seqno: int, gate: OrderingGate, before: Sequence[str] = ()
) -> None:
    deprecate_eof = bool(conn.capabilities & Capability.DEPRECATE_EOF)
    await commit_in_order(conn.stream, deprecate_eof, Position(CLUSTER, seqno), gate, before)


async def test_no_commit_past_a_failed_predecessor(pair_factory: PairFactory) -> None:
    pair = await pair_factory()
    first = pair.a
    second, watcher = await connect(pair.servers[0]), await connect(pair.servers[0])
    try:
        # made after the capture install: no triggers, nothing to drain
        await first.query(f"CREATE TABLE `{pair.schema}`.t (id INT PRIMARY KEY)")
        base = (await read_position(first)).seqno
        gate = OrderingGate(base)
        for n, conn in enumerate((first, second), start=1):
            await conn.query(f"USE `{pair.schema}`")
            await conn.query(f"BEGIN; INSERT INTO t VALUES ({n})")
        # base+1 entered its commit: its position update holds the row lock ...
        await first.query(sql.update_position(CLUSTER, base + 1))
        gate.enter(base + 1)
        failed: list[BackendError] = []

        async def commit_second() -> None:
            try:
                await _commit(second, base + 2, gate)
            except BackendError as exc:
                failed.append(exc)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(commit_second)  # ... so base+2's update waits for it
                while not (await _running(watcher, second.thread_id)).startswith("UPDATE"):
                    await trio.sleep(0.01)
                await first.query("ROLLBACK")  # ... and then its COMMIT is lost
        assert failed and failed[0].code == sql.ER_POSITION_BEHIND, failed
        assert gate.last_entered == base + 1  # base+2 did not enter
        await second.query("ROLLBACK")
        assert (await read_position(watcher)).seqno == base
        assert (await watcher.query(f"SELECT id FROM `{pair.schema}`.t")).rows == []

        # The replays, in order, commit both.
        for n, conn in enumerate((first, second), start=1):
            await conn.query(f"BEGIN; INSERT INTO t VALUES ({n})")
            await _commit(conn, base + n, gate)
        assert (await read_position(watcher)).seqno == base + 2
        rows = (await watcher.query(f"SELECT id FROM `{pair.schema}`.t ORDER BY id")).rows
        assert rows == [(b"1",), (b"2",)]
    finally:
        for conn in (second, watcher):
            await conn.aclose()


async def test_rows_position_and_commit_in_one_round_trip(pair_factory: PairFactory) -> None:
    """An applier whose commit turn came before it applied sends its rows ahead of the
    position update: all commit, or (the first failing statement stops the rest) none."""
    pair = await pair_factory()
    conn, watcher = pair.a, await connect(pair.servers[0])
    try:
        await conn.query(f"CREATE TABLE `{pair.schema}`.t (id INT PRIMARY KEY)")
        await conn.query(f"USE `{pair.schema}`")
        base = (await read_position(conn)).seqno
        gate = OrderingGate(base)
        rows = ["START TRANSACTION", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"]
        await _commit(conn, base + 1, gate, rows)
        assert gate.last_entered == base + 1
        gate.commit(base + 1)
        assert (await read_position(watcher)).seqno == base + 1
        assert len((await watcher.query(f"SELECT id FROM `{pair.schema}`.t")).rows) == 2

        broken = ["START TRANSACTION", "INSERT INTO t VALUES (3)", "INSERT INTO nope VALUES (4)"]
        with pytest.raises(BackendError, match="doesn't exist"):
            await _commit(conn, base + 2, gate, broken)
        assert gate.last_entered == base + 1  # the position update never ran
        await conn.query("SELECT 1")  # nothing left unread on the connection
        await conn.query("ROLLBACK")
        assert (await read_position(watcher)).seqno == base + 1
        assert len((await watcher.query(f"SELECT id FROM `{pair.schema}`.t")).rows) == 2
    finally:
        await watcher.aclose()
