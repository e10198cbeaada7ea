"""What the later `last_seen` of locking-write transactions relies on, checked on a real
mariadbd: which tables the catalog trusts, and that InnoDB's locking writes take no read
view (so the drain's consistent read, the first, sees the latest committed rows)."""

from __future__ import annotations

import pytest

from proxy.backend_client import BackendClient
from proxy.capture import mariadb_sql as sql
from tests.capture.conftest import PairFactory, connect

pytestmark = pytest.mark.mariadb

TABLES = (
    "CREATE TABLE plain (id INT PRIMARY KEY, n INT NOT NULL)",
    "CREATE TABLE triggered (id INT PRIMARY KEY, n INT NOT NULL)",
    "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, n INT)",
    "CREATE TRIGGER triggered_bi BEFORE INSERT ON triggered FOR EACH ROW "
    "INSERT INTO log (n) VALUES (NEW.n)",
    "CREATE TABLE parent (id INT PRIMARY KEY)",
    "CREATE TABLE child (id INT PRIMARY KEY, p INT, "
    "FOREIGN KEY (p) REFERENCES parent (id) ON DELETE CASCADE)",
    "CREATE TABLE strict_parent (id INT PRIMARY KEY)",
    "CREATE TABLE strict_child (id INT PRIMARY KEY, p INT, "
    "FOREIGN KEY (p) REFERENCES strict_parent (id))",
    "CREATE TABLE no_key (n INT)",
    "CREATE VIEW plain_view AS SELECT * FROM plain",
)


async def test_the_catalog_trusts_plain_tables_only(pair_factory: PairFactory) -> None:
    pair = await pair_factory(*TABLES)
    trusted = {
        name
        for (schema, name) in pair.catalog.shapes
        if pair.catalog.writes_only_lock((schema, name))
    }
    # triggered: a user trigger may read anything; parent: its cascade's capture trigger
    # runs a consistent read; no_key: not replicable; a view is not a base table.
    assert trusted == {"plain", "log", "child", "strict_parent", "strict_child"}


async def _committed_meanwhile_is_visible(
    first: str, other: BackendClient, conn: BackendClient
) -> bool:
    """Run `first` in a transaction on `conn`, commit a change of row 2 on `other`, and
    say whether `conn`'s next consistent read sees it (no read view taken yet). `conn`
    rolls back; `other` writes as an applier (no capture rows left behind)."""
    await other.query("UPDATE plain SET n = 0 WHERE id = 2")
    await conn.query("START TRANSACTION")
    await conn.query(first)
    await other.query("UPDATE plain SET n = n + 1 WHERE id = 2")
    seen = (await conn.query("SELECT n FROM plain WHERE id = 2")).rows == [(b"1",)]
    await conn.query("ROLLBACK")
    return seen


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "READ COMMITTED"])
async def test_locking_writes_take_no_read_view(pair_factory: PairFactory, isolation: str) -> None:
    pair = await pair_factory(*TABLES)
    other = await connect(pair.servers[0])
    try:
        await other.query(f"USE `{pair.schema}`")
        await other.query(f"SET {sql.APPLIER_FLAG} = 1")
        await other.query("INSERT INTO plain VALUES (1, 0), (2, 0), (3, 0)")
        await pair.a.query(f"SET SESSION TRANSACTION ISOLATION LEVEL {isolation}")
        for write in (
            "UPDATE plain SET n = n + 1 WHERE id = 1",
            "DELETE FROM plain WHERE id = 3",
            "INSERT INTO plain VALUES (4, 0) ON DUPLICATE KEY UPDATE n = n + 1",
            "REPLACE INTO plain VALUES (1, 5)",
        ):
            assert await _committed_meanwhile_is_visible(write, other, pair.a), write
        # the contrast: a plain read takes the snapshot (REPEATABLE READ keeps it)
        snapshot = await _committed_meanwhile_is_visible(
            "SELECT n FROM plain WHERE id = 1", other, pair.a
        )
        assert snapshot is (isolation == "READ COMMITTED")
    finally:
        await pair.a.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        await other.aclose()
    left = await pair.a.query(f"SELECT COUNT(*) FROM {sql.CAPTURE}")
    assert left.rows == [(b"0",)], "capture rows left behind"
