"""Several applier connections: write sets whose keys don't overlap apply side by side
(`apply_changes`), commits go in seqno order (`commit_at`), driven by wsrep.ordering."""

from __future__ import annotations

import random

import pytest
import trio

from proxy.backend_client import BackendClient
from proxy.capture import (
    Position,
    apply_changes,
    commit_at,
    decode_changes,
    drain,
    prepare_applier_session,
    read_position,
    record_position,
)
from tests.capture.conftest import CLUSTER, PairFactory, connect
from wsrep.ordering import OrderingGate

pytestmark = pytest.mark.mariadb

APPLIERS = 4
WRITE_SETS = 40


async def test_parallel_appliers_commit_in_order(pair_factory: PairFactory) -> None:
    # Primary key only: a unique secondary index makes InnoDB's duplicate check take
    # next-key locks, so appliers of disjoint rows can block each other, a later one holding
    # a gap an earlier one needs while it waits for its commit turn. Resolving that is the
    # BF abort of `proxy.replication.Appliers` (tested on real clusters), not this driver's.
    pair = await pair_factory(
        "CREATE TABLE t (id INT PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB",
        "INSERT INTO t SELECT seq, 0 FROM seq_1_to_40",
    )
    rng = random.Random(3)
    log: list[tuple[int, bytes]] = []  # (depends_seqno, payload) for seqno 1, 2, ...
    last_writer: dict[bytes, int] = {}  # key ident -> seqno of its last write set
    for seqno in range(1, WRITE_SETS + 1):
        ids = rng.sample(range(1, 41), rng.randint(1, 3))
        await pair.a.query("START TRANSACTION")
        for i in ids:
            await pair.a.query(f"UPDATE t SET v = v * 3 + {seqno} WHERE id = {i}")
        captured = await drain(pair.a, pair.catalog)
        await record_position(pair.a, Position(CLUSTER, seqno))
        await pair.a.query("COMMIT")
        depends = max((last_writer.get(k.ident, 0) for k in captured.keys), default=0)
        last_writer.update((k.ident, seqno) for k in captured.keys)
        log.append((depends, captured.payload()))
    assert any(d < s for s, (d, _) in enumerate(log, start=1) if s > 1)  # some overlap

    gate = OrderingGate(last_committed=0)
    idle: list[BackendClient] = []
    for _ in range(APPLIERS):
        idle.append(await connect(pair.servers[1]))
        await prepare_applier_session(idle[-1])
    free = trio.Semaphore(APPLIERS)

    async def apply(seqno: int, depends: int, payload: bytes, conn: BackendClient) -> None:
        await gate.wait_apply_turn(depends)
        await apply_changes(conn, decode_changes(payload))
        await gate.wait_commit_turn(seqno)
        await commit_at(conn, Position(CLUSTER, seqno))
        gate.commit(seqno)
        idle.append(conn)
        free.release()

    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for seqno, (depends, payload) in enumerate(log, start=1):
                    await free.acquire()  # in seqno order, so the oldest always has one
                    nursery.start_soon(apply, seqno, depends, payload, idle.pop())
    finally:
        for conn in idle:
            await conn.aclose()
    assert await read_position(pair.b) == Position(CLUSTER, WRITE_SETS)
    await pair.assert_same()
