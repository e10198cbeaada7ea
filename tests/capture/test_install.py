"""Installing, regenerating and removing the capture triggers."""

from __future__ import annotations

import pytest

from proxy.backend_client import BackendClient, BackendError, QueryResult
from proxy.capture import install, uninstall
from tests.capture.conftest import PairFactory

pytestmark = pytest.mark.mariadb

NOTES = (
    "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(40) NOT NULL DEFAULT '') ENGINE=InnoDB",
    "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(40))",
    "CREATE TRIGGER first_bi BEFORE INSERT ON notes FOR EACH ROW "
    "SET NEW.body = CONCAT(NEW.body, 'x')",
    "CREATE TRIGGER second_bi BEFORE INSERT ON notes FOR EACH ROW "
    "SET NEW.body = CONCAT(NEW.body, 'y')",
    "CREATE TRIGGER notes_ad AFTER DELETE ON notes FOR EACH ROW "
    "INSERT INTO log (msg) VALUES (CONCAT('deleted ', OLD.id))",
)


class Recording:
    """A session that remembers what it was asked to run."""

    def __init__(self, inner: BackendClient) -> None:
        self.inner = inner
        self.sent: list[str] = []

    async def query(self, sql: str) -> QueryResult:
        self.sent.append(sql)
        return await self.inner.query(sql)


async def triggers(conn: BackendClient, schema: str) -> list[tuple[bytes | None, ...]]:
    result = await conn.query(
        "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, "
        "ACTION_ORDER, ACTION_STATEMENT FROM information_schema.TRIGGERS "
        f"WHERE TRIGGER_SCHEMA = '{schema}' ORDER BY 1, 3, 4, 5"
    )
    return [tuple(r) for r in result.rows]


async def test_install_is_idempotent_and_keeps_user_trigger_order(
    pair_factory: PairFactory,
) -> None:
    pair = await pair_factory(*NOTES)
    before = await triggers(pair.a, pair.schema)
    recording = Recording(pair.a)
    await install(recording, [pair.schema])
    assert await triggers(pair.a, pair.schema) == before
    assert [s for s in recording.sent if s.startswith(("CREATE OR REPLACE", "DROP"))] == []
    user = {r[1]: r for r in before if not r[1].startswith(b"wsrep_")}  # type: ignore[union-attr]
    assert [user[n][4] for n in (b"first_bi", b"second_bi")] == [b"1", b"2"]
    assert all(r[5].startswith(b"IF @wsrep_applier IS NULL THEN ") for r in user.values())  # type: ignore[union-attr]
    await pair.replicate("INSERT INTO notes (id) VALUES (1), (2)", "DELETE FROM notes WHERE id = 2")
    await pair.assert_same()
    rows = (await pair.b.query("SELECT body FROM notes")).rows
    assert rows == [(b"xy",)]  # user triggers ran once, in their order, on a only
    assert (await pair.b.query("SELECT msg FROM log")).rows == [(b"deleted 2",)]


async def test_guarding_keeps_definer_and_sql_mode(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE k (id INT PRIMARY KEY, s VARCHAR(9)) ENGINE=InnoDB",
        "CREATE USER IF NOT EXISTS 'trig_owner'@'localhost'",
        "GRANT ALL ON *.* TO 'trig_owner'@'localhost'",
        "SET SESSION sql_mode = 'PIPES_AS_CONCAT,ANSI_QUOTES'",
        "CREATE DEFINER = 'trig_owner'@'localhost' TRIGGER k_bi BEFORE INSERT ON k "
        "FOR EACH ROW SET NEW.s = NEW.s || '!'",
        "SET SESSION sql_mode = DEFAULT",
    )
    await install(pair.a, [pair.schema])
    meta = (
        await pair.a.query(
            "SELECT DEFINER, SQL_MODE, ACTION_STATEMENT FROM information_schema.TRIGGERS "
            f"WHERE TRIGGER_SCHEMA = '{pair.schema}' AND TRIGGER_NAME = 'k_bi'"
        )
    ).rows
    assert meta == [
        (
            b"trig_owner@localhost",
            b"PIPES_AS_CONCAT,ANSI_QUOTES",
            b"IF @wsrep_applier IS NULL THEN SET NEW.s = NEW.s || '!'; END IF",
        )
    ]
    await pair.replicate("INSERT INTO k VALUES (1, 'hi')")  # || still concatenates
    assert (await pair.b.query("SELECT s FROM k")).rows == [(b"hi!",)]


async def test_uninstall_restores_user_triggers(pair_factory: PairFactory) -> None:
    pair = await pair_factory(*NOTES)
    await uninstall(pair.a, [pair.schema])
    left = await triggers(pair.a, pair.schema)
    assert [(r[1], r[4], r[5]) for r in left] == [
        (b"notes_ad", b"1", b"INSERT INTO log (msg) VALUES (CONCAT('deleted ', OLD.id))"),
        (b"first_bi", b"1", b"SET NEW.body = CONCAT(NEW.body, 'x')"),
        (b"second_bi", b"2", b"SET NEW.body = CONCAT(NEW.body, 'y')"),
    ]
    schemas = (await pair.a.query("SHOW DATABASES LIKE 'wsrep'")).rows
    assert schemas == []
    await pair.a.query("INSERT INTO notes (id) VALUES (7)")  # plain table again
    await install(pair.a, [pair.schema])  # and back, for the other tests' shared server


async def test_regenerated_after_ddl(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE t (a INT NOT NULL, b INT) ENGINE=InnoDB",
        "CREATE TABLE p (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE g (id INT PRIMARY KEY, pt POINT) ENGINE=InnoDB",
    )
    with pytest.raises(BackendError, match="no primary key"):
        await pair.a.query("INSERT INTO t VALUES (1, 1)")
    with pytest.raises(BackendError, match="type point is not supported"):
        await pair.a.query("INSERT INTO g VALUES (1, NULL)")
    await pair.both(
        "ALTER TABLE t ADD PRIMARY KEY (a), ADD COLUMN c VARCHAR(10) DEFAULT 'new'",
        "CREATE TABLE c (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES p (id) "
        "ON DELETE CASCADE) ENGINE=InnoDB",
        "CREATE TRIGGER p_bd BEFORE DELETE ON p FOR EACH ROW SET @seen = OLD.id",
        "RENAME TABLE t TO t2",
    )
    await pair.install()
    await pair.replicate(
        "INSERT INTO t2 (a, b) VALUES (1, 1), (2, 2)",
        "INSERT INTO p VALUES (1), (2)",
        "INSERT INTO c VALUES (10, 1), (20, 2)",
    )
    await pair.replicate("DELETE FROM p WHERE id = 1", "UPDATE t2 SET c = 'changed' WHERE a = 2")
    await pair.assert_same()
    order = [(r[1], r[4]) for r in await triggers(pair.a, pair.schema) if r[0] == b"p"]
    p_id = pair.catalog.shapes[(pair.schema, "p")].table_id
    renamed = [r[1] for r in await triggers(pair.a, pair.schema) if r[0] == b"t2"]
    t2_id = pair.catalog.shapes[(pair.schema, "t2")].table_id
    assert renamed == [f"wsrep_{t2_id}_{s}".encode() for s in ("ad", "ai", "au")]
    assert [n for n, o in order if o == b"2"] == [f"wsrep_{p_id}_bd".encode()]  # after p_bd
    assert (await pair.b.query("SELECT id FROM c")).rows == [(b"20",)]


async def test_self_referencing_tree_cascades_and_other_cycles_are_refused(
    pair_factory: PairFactory,
) -> None:
    pair = await pair_factory(
        "CREATE TABLE tree (id INT PRIMARY KEY, parent INT, "
        "FOREIGN KEY (parent) REFERENCES tree (id) ON DELETE CASCADE) ENGINE=InnoDB",
        "CREATE TABLE leaf (id INT PRIMARY KEY, node INT, "
        "FOREIGN KEY (node) REFERENCES tree (id) ON DELETE SET NULL) ENGINE=InnoDB",
        "CREATE TABLE a (id INT PRIMARY KEY, b_id INT) ENGINE=InnoDB",
        "CREATE TABLE b (id INT PRIMARY KEY, a_id INT, "
        "FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE) ENGINE=InnoDB",
        "ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE",
    )
    await pair.replicate(
        "INSERT INTO tree VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (5, 1), (6, NULL)",
        "INSERT INTO leaf SELECT seq, seq % 6 + 1 FROM seq_1_to_24",
    )
    captured = await pair.replicate("DELETE FROM tree WHERE id = 2")
    gone = sorted(c.values[0] for c in captured.changes if c.table.name == "tree")
    assert gone == [2, 3, 4]
    await pair.assert_same()
    assert (await pair.b.query("SELECT COUNT(*) FROM leaf WHERE node IS NULL")).rows == [(b"12",)]
    with pytest.raises(BackendError, match="cascade in a cycle"):
        await pair.a.query("INSERT INTO a VALUES (1, NULL)")


async def test_tables_that_cannot_replicate_refuse_writes(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE u (id INT PRIMARY KEY, v UUID) ENGINE=InnoDB",
        "CREATE TABLE m (id INT PRIMARY KEY) ENGINE=MyISAM",
        "CREATE TABLE h (id INT PRIMARY KEY) ENGINE=InnoDB WITH SYSTEM VERSIONING",
    )
    for statement, reason in (
        ("INSERT INTO u VALUES (1, UUID())", "type uuid is not supported"),
        ("INSERT INTO m VALUES (1)", "is MyISAM; only plain InnoDB"),
        ("INSERT INTO h VALUES (1)", "is InnoDB system versioned; only plain InnoDB"),
    ):
        with pytest.raises(BackendError, match=reason):
            await pair.a.query(statement)
