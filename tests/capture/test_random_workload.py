"""Random transactions (seeded): inserts, updates of keys and values, deletes, rows
changed several times, savepoints and failed statements; after every commit the applied
copy equals the origin."""

from __future__ import annotations

import random

import pytest

from proxy.backend_client import BackendError
from proxy.capture import Position, apply_write_set, decode_changes, drain, record_position
from tests.capture.conftest import CLUSTER, PairFactory

pytestmark = pytest.mark.mariadb

TRANSACTIONS = 60


def statement(rng: random.Random) -> str:
    a, b = rng.randint(1, 30), rng.randint(1, 30)
    tag = rng.choice(["x", "X", "y", "Y ", "z", "é", "É"])
    return rng.choice(
        [
            f"INSERT INTO r (a, b, tag, v) VALUES ({a}, {b}, '{tag}{a}', RAND())",
            f"INSERT INTO r (a, b, tag, v) VALUES ({a}, {b}, '{tag}{b}', 1) "
            "ON DUPLICATE KEY UPDATE v = v + 1",
            f"REPLACE INTO r (a, b, tag, v) VALUES ({a}, {b}, '{tag}', 2)",
            f"UPDATE r SET v = v * 2 + 1 WHERE a = {a}",
            f"UPDATE r SET a = a + {rng.randint(1, 5)} WHERE a = {a} AND b = {b}",
            f"UPDATE r SET tag = '{tag}' WHERE b = {b} ORDER BY a LIMIT 1",
            f"DELETE FROM r WHERE a = {a} ORDER BY b LIMIT 2",
            f"DELETE FROM r WHERE tag = '{tag}{a}'",
            "SAVEPOINT s",
            "ROLLBACK TO SAVEPOINT s",
        ]
    )


async def test_random_transactions(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE r (a INT NOT NULL, b INT NOT NULL, "
        "tag VARCHAR(8) COLLATE utf8mb4_general_ci UNIQUE, v DOUBLE, PRIMARY KEY (a, b)) "
        "ENGINE=InnoDB"
    )
    rng = random.Random(5)
    committed = failed = 0
    for seqno in range(1, TRANSACTIONS + 1):
        await pair.a.query("START TRANSACTION")
        for _ in range(rng.randint(1, 6)):
            try:
                await pair.a.query(statement(rng))
            except BackendError as exc:  # duplicate keys, a savepoint that is not there
                assert exc.code in (1062, 1305), exc
                failed += 1
        if rng.random() < 0.15:
            await pair.a.query("ROLLBACK")
            continue
        captured = await drain(pair.a, pair.catalog)
        await record_position(pair.a, Position(CLUSTER, seqno))
        await pair.a.query("COMMIT")
        await apply_write_set(pair.b, decode_changes(captured.payload()), Position(CLUSTER, seqno))
        committed += 1
        if seqno % 15 == 0:
            await pair.assert_same()
    await pair.assert_same()
    assert committed > TRANSACTIONS // 2 and failed > 0
