"""The drain's round trips: the capture rows, then every table's final images at once."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.backend_client import BackendClient, QueryResult
from proxy.capture import drain
from proxy.capture import mariadb_sql as sql
from tests.capture.conftest import PairFactory

TABLES = ("t1", "t2", "t3")


class Counting:
    """A session that counts its round trips (one per `query`/`query_all` call)."""

    def __init__(self, inner: BackendClient) -> None:
        self.inner = inner
        self.scripts: list[str] = []

    async def query(self, text: str) -> QueryResult:
        self.scripts.append(text)
        return await self.inner.query(text)

    async def query_all(self, text: str) -> Sequence[QueryResult]:
        self.scripts.append(text)
        return await self.inner.query_all(text)


async def test_three_tables_drain_in_two_round_trips(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        *(f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB" for t in TABLES)
    )
    await pair.replicate(*(f"INSERT INTO {t} VALUES (1, 'old'), (2, 'gone')" for t in TABLES))
    await pair.a.query("START TRANSACTION")
    for t in TABLES:
        await pair.a.query(f"UPDATE {t} SET v = 'new {t}' WHERE id = 1")
        await pair.a.query(f"DELETE FROM {t} WHERE id = 2")
        await pair.a.query(f"INSERT INTO {t} VALUES (3, 'added')")
    session = Counting(pair.a)
    captured = await drain(session, pair.catalog)
    await pair.a.query("COMMIT")
    assert len(session.scripts) == 2, session.scripts
    assert session.scripts[0] == sql.CAPTURED
    assert session.scripts[1].count("SELECT") >= len(TABLES)
    ops = sorted((c.table.name, c.op.name, c.values[0]) for c in captured.changes)
    assert ops == sorted(
        (t, op, key) for t in TABLES for op, key in (("UPSERT", 1), ("DELETE", 2), ("UPSERT", 3))
    )
    assert len(captured.keys) == len(TABLES) * 3  # PRIMARY of rows 1, 2 and 3 per table


async def test_more_keys_than_one_read_takes(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE a (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE b (id INT PRIMARY KEY) ENGINE=InnoDB",
    )
    captured = await pair.replicate(
        "INSERT INTO a SELECT seq FROM seq_1_to_1201",
        "INSERT INTO b SELECT seq FROM seq_1_to_7",
    )
    assert len(captured.changes) == 1208
    await pair.assert_same()
