"""Statements whose re-execution would diverge come out identical, since only rows travel."""

from __future__ import annotations

import pytest

from proxy.backend_client import BackendError
from proxy.capture import Op, discard, drain
from proxy.capture import mariadb_sql as sql
from tests.capture.conftest import PairFactory, connect

pytestmark = pytest.mark.mariadb

ITEMS = (
    "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(64) NOT NULL UNIQUE, "
    "qty INT NOT NULL DEFAULT 0, note VARCHAR(64), at DATETIME(6)) ENGINE=InnoDB"
)


async def test_nondeterministic_functions_and_auto_increment(pair_factory: PairFactory) -> None:
    pair = await pair_factory(ITEMS)
    # b's auto-increment would hand out different ids if it re-ran the inserts
    await pair.b.query("SET SESSION auto_increment_increment = 7, auto_increment_offset = 3")
    await pair.a.query("SET SESSION auto_increment_increment = 3, auto_increment_offset = 2")
    await pair.replicate(
        "INSERT INTO items (sku, qty, note, at) VALUES "
        "(UUID(), FLOOR(RAND() * 1000), UUID(), NOW(6)), "
        "(CONCAT('s', RAND()), 1, NULL, SYSDATE(6))",
        "INSERT INTO items (sku, note) SELECT CONCAT('x', seq, UUID()), RAND() FROM seq_1_to_50",
    )
    await pair.assert_same()
    ids = (await pair.b.query("SELECT MIN(id), MAX(id), COUNT(*) FROM items")).rows
    assert ids == [(b"2", b"155", b"52")]


async def test_order_by_limit_and_multi_table(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        ITEMS, "CREATE TABLE stock (sku VARCHAR(20) PRIMARY KEY, level INT) ENGINE=InnoDB"
    )
    await pair.replicate(
        "INSERT INTO items (sku, qty) SELECT CONCAT('k', seq), seq % 7 FROM seq_1_to_40",
        "INSERT INTO stock SELECT sku, qty * 10 FROM items",
    )
    await pair.replicate(
        "UPDATE items SET note = 'top' ORDER BY qty DESC, id LIMIT 5",
        "DELETE FROM items WHERE qty = 0 ORDER BY id DESC LIMIT 2",
        "UPDATE items i JOIN stock s ON s.sku = i.sku SET i.qty = i.qty + 1, s.level = RAND() * 5 "
        "WHERE i.id % 3 = 0",
        "DELETE i, s FROM items i JOIN stock s ON s.sku = i.sku WHERE i.id % 5 = 0",
    )
    await pair.assert_same()


async def test_upserts_replace_and_key_changes(pair_factory: PairFactory) -> None:
    pair = await pair_factory(ITEMS)
    await pair.replicate(
        "INSERT INTO items (id, sku, qty) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)"
    )
    await pair.replicate(
        "INSERT INTO items (id, sku, qty) VALUES (1, 'a', 10), (4, 'd', 4) "
        "ON DUPLICATE KEY UPDATE qty = qty + VALUES(qty), note = 'dup'",
        # REPLACE removes both rows it collides with (id 2 and sku 'c')
        "REPLACE INTO items (id, sku, qty) VALUES (2, 'c', 99)",
        "UPDATE items SET id = 40 WHERE id = 4",
    )
    await pair.assert_same()
    # a unique-key swap through a third value, and a key changed then changed back
    await pair.replicate(
        "UPDATE items SET sku = 'tmp' WHERE id = 1",
        "UPDATE items SET sku = 'a' WHERE id = 2",
        "UPDATE items SET sku = 'c' WHERE id = 1",
        "UPDATE items SET id = 5 WHERE id = 40",
        "UPDATE items SET id = 40 WHERE id = 5",
    )
    await pair.assert_same()
    rows = (await pair.b.query("SELECT id, sku FROM items ORDER BY id")).rows
    assert rows == [(b"1", b"c"), (b"2", b"a"), (b"40", b"d")]


async def test_case_insensitive_key_change(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE tags (name VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, n INT)"
    )
    await pair.replicate("INSERT INTO tags VALUES ('apple', 1), ('pear ', 2)")
    captured = await pair.replicate(
        "UPDATE tags SET name = 'APPLE' WHERE name = 'apple'",
        "UPDATE tags SET name = 'pear' WHERE name = 'pear'",
    )
    await pair.assert_same()
    # 'apple'/'APPLE' and 'pear '/'pear' are one key each for certification
    assert len(captured.keys) == 2


async def test_update_captures_the_new_key_only_when_its_bytes_change(
    pair_factory: PairFactory,
) -> None:
    pair = await pair_factory(
        "CREATE TABLE tags (name VARCHAR(20) COLLATE utf8mb4_general_ci, at TIMESTAMP(6), "
        "v DOUBLE, n INT, PRIMARY KEY (name, at, v)) ENGINE=InnoDB"
    )
    await pair.replicate("INSERT INTO tags VALUES ('a', '2020-01-01 00:00:00', 0, 1)")
    await pair.a.query("BEGIN")
    updates = [
        ("n = 2", 1),  # key unchanged: only the old key is captured
        ("name = 'A'", 2),  # equal under the collation, other bytes
        ("v = -0e0", 1),  # stored (and read) as 0
        ("v = 0.5", 2),
        ("at = at + INTERVAL 1 MICROSECOND", 2),
        ("name = 'A', n = 3", 1),
    ]
    for change, captures in updates:
        before = len((await pair.a.query(sql.CAPTURED)).rows)
        await pair.a.query(f"UPDATE tags SET {change}")
        assert len((await pair.a.query(sql.CAPTURED)).rows) - before == captures, change
    await pair.a.query("ROLLBACK")
    await pair.replicate(*(f"UPDATE tags SET {change}" for change, _ in updates))
    await pair.assert_same()


async def test_user_triggers_and_stored_procedures(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        ITEMS,
        "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(80), r DOUBLE)",
        "CREATE TRIGGER items_bi BEFORE INSERT ON items FOR EACH ROW "
        "SET NEW.note = CONCAT('by trigger ', UUID())",
        "CREATE TRIGGER items_ai AFTER INSERT ON items FOR EACH ROW "
        "INSERT INTO audit (what, r) VALUES (CONCAT('insert ', NEW.sku), RAND())",
        "CREATE TRIGGER items_au AFTER UPDATE ON items FOR EACH ROW "
        "INSERT INTO audit (what, r) VALUES (CONCAT('update ', NEW.sku), RAND())",
        "CREATE PROCEDURE restock(n INT) BEGIN DECLARE i INT DEFAULT 0; "
        "WHILE i < n DO INSERT INTO items (sku, qty) VALUES (CONCAT('p', i), FLOOR(RAND() * 9)); "
        "SET i = i + 1; END WHILE; UPDATE items SET qty = qty + 1 ORDER BY id LIMIT 3; END",
    )
    await pair.replicate("CALL restock(12)")
    await pair.replicate("UPDATE items SET qty = 0 WHERE id > 10")
    await pair.assert_same()
    audit = (await pair.b.query("SELECT COUNT(*) FROM audit")).rows
    assert audit == [(b"17",)]  # 12 inserts + 3 + 2 updates, not run again on b


async def test_cascades_reach_every_level(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE p (id INT PRIMARY KEY, code INT NOT NULL UNIQUE) ENGINE=InnoDB",
        "CREATE TABLE c (id INT PRIMARY KEY, pid INT, pcode INT, "
        "FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE, "
        "FOREIGN KEY (pcode) REFERENCES p (code) ON UPDATE CASCADE ON DELETE SET NULL)",
        "CREATE TABLE g (id INT PRIMARY KEY, cid INT, "
        "FOREIGN KEY (cid) REFERENCES c (id) ON DELETE CASCADE) ENGINE=InnoDB",
    )
    await pair.replicate(
        "INSERT INTO p SELECT seq, seq * 10 FROM seq_1_to_6",
        "INSERT INTO c SELECT seq, seq % 6 + 1, ((seq + 2) % 6 + 1) * 10 FROM seq_1_to_30",
        "INSERT INTO g SELECT seq, seq % 30 + 1 FROM seq_1_to_90",
    )
    captured = await pair.replicate("DELETE FROM p WHERE id IN (1, 2)")
    assert {c.table.name for c in captured.changes if c.op is Op.DELETE} == {"p", "c", "g"}
    assert any(c.table.name == "c" and c.op is Op.UPSERT for c in captured.changes)  # SET NULL
    await pair.replicate("UPDATE p SET code = code + 1000 WHERE id = 5")
    await pair.assert_same()
    left = (
        await pair.b.query("SELECT COUNT(*), SUM(pcode IS NULL), SUM(pcode > 1000) FROM c")
    ).rows
    assert left == [(b"20", b"10", b"5")]


async def test_table_without_key_refuses_writes(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE loose (a INT, b INT UNIQUE)",  # b is nullable: not an identifying key
        "INSERT INTO loose VALUES (1, 1)",
        "CREATE TABLE keyed (k INT NOT NULL, UNIQUE KEY (k))",
    )
    for statement in (
        "INSERT INTO loose VALUES (1, 1)",
        "UPDATE loose SET a = 2",
        "DELETE FROM loose",
    ):
        with pytest.raises(BackendError) as err:
            await pair.a.query(statement)
        assert err.value.sqlstate == "45000"
        assert "loose has no primary key or unique NOT NULL key" in err.value.message
    await pair.replicate("INSERT INTO keyed VALUES (5), (6)", "UPDATE keyed SET k = 7 WHERE k = 5")
    await pair.assert_same()


async def test_capture_is_per_transaction(pair_factory: PairFactory) -> None:
    pair = await pair_factory(ITEMS)
    other = await connect(pair.servers[0])
    try:
        await other.query(f"USE {pair.schema}")
        await pair.a.query("BEGIN")
        await other.query("BEGIN")
        await pair.a.query("INSERT INTO items (id, sku) VALUES (1, 'mine')")
        await other.query("INSERT INTO items (id, sku) VALUES (2, 'theirs')")
        await other.query("INSERT INTO items (id, sku) VALUES (3, 'gone')")
        await other.query("ROLLBACK")
        mine = await drain(pair.a, pair.catalog)
        await pair.a.query("COMMIT")
        assert [c.values[:2] for c in mine.changes] == [(1, b"mine")]
        # inserted and deleted in one transaction: nothing to replicate
        await pair.a.query("BEGIN")
        await pair.a.query("INSERT INTO items (id, sku) VALUES (9, 'brief')")
        await pair.a.query("DELETE FROM items WHERE id = 9")
        assert (await drain(pair.a, pair.catalog)).changes == []
        await pair.a.query("COMMIT")
        # a commit that bypassed the drain leaves rows under this connection id ...
        await other.query("INSERT INTO items (id, sku) VALUES (5, 'direct')")
        await discard(other)  # ... until the connection is reset for the proxy
    finally:
        await other.aclose()
    left = (await pair.a.query("SELECT COUNT(*) FROM wsrep.capture")).rows
    assert left == [(b"0",)]


async def test_rolled_back_work_leaves_no_capture_rows(pair_factory: PairFactory) -> None:
    """Capture rows are written inside the transaction: a failed statement, a rollback to
    a savepoint and a rollback take back what the triggers wrote."""
    pair = await pair_factory(ITEMS)
    await pair.replicate("INSERT INTO items (id, sku) VALUES (1, 's1')")
    await pair.a.query("BEGIN")
    await pair.a.query("INSERT INTO items (id, sku) VALUES (20, 'kept')")
    with pytest.raises(BackendError):  # the second row fails: the first is taken back too
        await pair.a.query("INSERT INTO items (id, sku) VALUES (21, 'new'), (22, 'kept')")
    await pair.a.query("SAVEPOINT s")
    await pair.a.query("UPDATE items SET qty = 5 WHERE id = 1")
    await pair.a.query("INSERT INTO items (id, sku) VALUES (23, 'undone')")
    await pair.a.query("ROLLBACK TO SAVEPOINT s")
    assert len((await pair.a.query(sql.CAPTURED)).rows) == 1
    await pair.a.query("ROLLBACK")
    assert (await pair.a.query(sql.CAPTURED)).rows == []
    captured = await pair.replicate("UPDATE items SET qty = 6 WHERE id = 1")
    assert [c.values[:3] for c in captured.changes] == [(1, b"s1", 6)]
    await pair.assert_same()


async def test_drain_does_not_block_other_sessions(pair_factory: PairFactory) -> None:
    """A drained transaction waiting for its commit (certification) must not hold locks
    that stall other sessions' capture writes."""
    pair = await pair_factory(ITEMS)
    others = [await connect(pair.servers[0]) for _ in range(2)]
    try:
        for conn in others:
            await conn.query(f"USE {pair.schema}")
            await conn.query("SET SESSION innodb_lock_wait_timeout = 1")
            await conn.query("BEGIN")
        await others[1].query("INSERT INTO items (id, sku) VALUES (1, 'newer session')")
        await pair.a.query("BEGIN")
        await pair.a.query("INSERT INTO items (id, sku) VALUES (2, 'draining'), (3, 'too')")
        await drain(pair.a, pair.catalog)  # not committed yet
        # sessions with connection ids on either side of a's keep capturing
        await others[0].query("INSERT INTO items (id, sku) VALUES (4, 'another')")
        await others[1].query("UPDATE items SET qty = 1 WHERE id = 1")
        await pair.a.query("COMMIT")
        for conn in others:
            assert len((await drain(conn, pair.catalog)).changes) == 1
            await conn.query("COMMIT")
    finally:
        for conn in others:
            await conn.aclose()


async def test_large_transaction_and_big_rows(pair_factory: PairFactory) -> None:
    """More rows than any batch (reads, deletes, statements) and a row over 1 MiB."""
    pair = await pair_factory(
        "CREATE TABLE bulk (id INT PRIMARY KEY, b LONGBLOB, n DOUBLE) ENGINE=InnoDB"
    )
    await pair.replicate(
        "INSERT INTO bulk SELECT seq, RANDOM_BYTES(1 + seq % 900), RAND() FROM seq_1_to_1300",
        "INSERT INTO bulk VALUES (0, REPEAT(RANDOM_BYTES(1024), 3 * 1024), 0)",
    )
    captured = await pair.replicate(
        "UPDATE bulk SET n = n * 2, b = REVERSE(b) WHERE id % 2 = 0",
        "DELETE FROM bulk WHERE id % 3 = 0",
        "UPDATE bulk SET id = id + 10000 WHERE id BETWEEN 1 AND 600",
    )
    assert len(captured.changes) > 1000
    await pair.assert_same()


async def test_update_cascade_into_keys(pair_factory: PairFactory) -> None:
    """ON UPDATE CASCADE rewrites children whose primary key holds the FK columns: their
    old keys go, their new keys (two levels down) arrive."""
    pair = await pair_factory(
        "CREATE TABLE acct (code VARCHAR(8) PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE line (code VARCHAR(8), n INT, PRIMARY KEY (code, n), "
        "FOREIGN KEY (code) REFERENCES acct (code) ON UPDATE CASCADE) ENGINE=InnoDB",
        "CREATE TABLE note (code VARCHAR(8), n INT, m INT, body TEXT, PRIMARY KEY (code, n, m), "
        "FOREIGN KEY (code, n) REFERENCES line (code, n) ON UPDATE CASCADE) ENGINE=InnoDB",
    )
    await pair.replicate(
        "INSERT INTO acct VALUES ('a'), ('b')",
        "INSERT INTO line SELECT IF(seq % 2, 'a', 'b'), seq FROM seq_1_to_10",
        "INSERT INTO note SELECT IF(seq % 2, 'a', 'b'), seq, 1, UUID() FROM seq_1_to_10",
    )
    await pair.replicate("UPDATE acct SET code = 'z' WHERE code = 'a'")
    await pair.assert_same()
    rows = (await pair.b.query("SELECT code, COUNT(*) FROM note GROUP BY code")).rows
    assert rows == [(b"b", b"5"), (b"z", b"5")]


async def test_user_sql_mode_does_not_change_the_capture(pair_factory: PairFactory) -> None:
    pair = await pair_factory(ITEMS)
    await pair.a.query(
        "SET SESSION sql_mode = 'ORACLE,ANSI_QUOTES,NO_BACKSLASH_ESCAPES,PIPES_AS_CONCAT,"
        "HIGH_NOT_PRECEDENCE,NO_ZERO_DATE,STRICT_ALL_TABLES', time_zone = '-03:00'"
    )
    await pair.replicate(
        "INSERT INTO items (id, sku, note, at) VALUES (1, 'a' || 'b', NULL, NOW(6)), "
        "(2, 'c\\d', 'q''uote', '2024-02-29 23:59:59.999999')",
        "UPDATE items SET id = 3, note = NULL WHERE id = 1",
    )
    await pair.assert_same()


async def test_names_that_need_quoting(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE `we``ird tbl` (`ké y` INT PRIMARY KEY, `cöl ⌘` VARCHAR(9), "
        "`select` INT UNIQUE, `p``id` INT, "
        "FOREIGN KEY (`p``id`) REFERENCES `we``ird tbl` (`ké y`) ON DELETE SET NULL)"
    )
    await pair.replicate(
        "INSERT INTO `we``ird tbl` VALUES (1, 'ü', 10, NULL), (2, '😀', 20, 1)",
        "UPDATE `we``ird tbl` SET `ké y` = 3 WHERE `ké y` = 2",
    )
    await pair.replicate("DELETE FROM `we``ird tbl` WHERE `ké y` = 1")
    await pair.assert_same()
