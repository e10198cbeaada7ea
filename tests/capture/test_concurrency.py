"""Concurrent sessions on the origin: every committed transaction's rows, and only its
own, reach the other server when write sets are applied in commit order."""

from __future__ import annotations

import random

import pytest
import trio

from proxy.backend_client import BackendClient, BackendError
from proxy.capture import Position, apply_write_set, decode_changes, drain, record_position
from tests.capture.conftest import CLUSTER, PairFactory, connect

pytestmark = pytest.mark.mariadb

WORKERS = 4
TRANSACTIONS = 25  # per worker


def statements(rng: random.Random) -> list[str]:
    ids = [rng.randint(1, 60) for _ in range(3)]
    return [
        f"UPDATE acct SET balance = balance - 5, touched = NOW(6) WHERE id = {ids[0]}",
        f"UPDATE acct SET balance = balance + 5, touched = NOW(6) WHERE id = {ids[1]}",
        f"INSERT INTO ledger (acct, amount, tag) VALUES ({ids[0]}, -5, UUID()), "
        f"({ids[1]}, 5, UUID())",
        f"DELETE FROM ledger WHERE acct = {ids[2]} ORDER BY id LIMIT 1",
    ]


async def test_concurrent_sessions_commit_in_order(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE acct (id INT PRIMARY KEY, balance BIGINT NOT NULL, touched DATETIME(6))",
        "CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, acct INT NOT NULL, "
        "amount INT NOT NULL, tag CHAR(36), KEY (acct), "
        "FOREIGN KEY (acct) REFERENCES acct (id) ON DELETE CASCADE) ENGINE=InnoDB",
        "INSERT INTO acct SELECT seq, 1000, NULL FROM seq_1_to_60",
    )
    order = trio.Lock()  # stands in for total order: drain, commit and log one at a time
    log: list[bytes] = []
    stats = {"committed": 0, "deadlocks": 0}

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn: BackendClient = await connect(pair.servers[0])
        try:
            await conn.query(f"USE {pair.schema}")
            for _ in range(TRANSACTIONS):
                try:
                    await conn.query("BEGIN")
                    for sql in statements(rng):
                        await conn.query(sql)
                    async with order:
                        captured = await drain(conn, pair.catalog)
                        await record_position(conn, Position(CLUSTER, len(log) + 1))
                        await conn.query("COMMIT")
                        log.append(captured.payload())
                    stats["committed"] += 1
                except BackendError as exc:
                    assert exc.code in (1213, 1205), exc  # deadlock / lock wait: retry later
                    stats["deadlocks"] += 1
                    await conn.query("ROLLBACK")
        finally:
            await conn.aclose()

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for seed in range(WORKERS):
                nursery.start_soon(worker, seed)
    assert stats["committed"] == len(log) > WORKERS * TRANSACTIONS // 2
    for seqno, payload in enumerate(log, start=1):
        await apply_write_set(pair.b, decode_changes(payload), Position(CLUSTER, seqno))
    await pair.assert_same()
    total = (await pair.b.query("SELECT SUM(balance) FROM acct")).rows
    assert total == [(b"60000",)]
