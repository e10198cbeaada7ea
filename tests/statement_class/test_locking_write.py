"""The "locking write" verdict (proxy/locking_write.py): which DML statements read only the
rows they lock, so a transaction of them may certify from the seqno at COMMIT."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import locking_write
from proxy.capture import Catalog, Kind
from proxy.capture.shape import Column, TableShape, UniqueKey
from proxy.locking_write import is_locking_write, shape, tokens_allow
from proxy.replication import _keeps_locking_only
from proxy.session import Session
from proxy.sql_text import SqlMode
from proxy.statement_class import StatementKind, TableName, classify, classify_uncached
from proxy.statement_sqlglot import single_table_row_write

LOCKING = [
    "UPDATE t SET c = c + 1 WHERE id = 1",
    "update sbtest1 set k=k+1 where id=?",
    "UPDATE db.t SET c = ? WHERE id = ?",
    "UPDATE `t` SET `c` = IFNULL(c, 0) + 1, d = NOW(6) WHERE id BETWEEN 1 AND 5",
    "UPDATE t SET c = 1 WHERE id IN (1, 2, 3) ORDER BY id LIMIT 2",
    "UPDATE t SET c = CONCAT(c, 'x'), d = CAST(e AS CHAR(10)) WHERE id = 2",
    "DELETE FROM t WHERE id = 5",
    "DELETE FROM sbtest1 WHERE id=?",
    "DELETE FROM t WHERE a = 'it''s (SELECT 1)' RETURNING id",
    "INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    "INSERT IGNORE INTO db.t(a, b) VALUE (1, UUID())",
    "INSERT INTO t PARTITION (p0) VALUES (1)",
    "INSERT INTO t VALUES (1, 2) ON DUPLICATE KEY UPDATE c = VALUES(c) + c",
    "INSERT INTO t SET a = 1, b = RAND()",
    "REPLACE INTO t VALUES (1, NOW(), 'x')",
    "REPLACE INTO db.t (a) VALUES (?)",
    "UPDATE t SET c = 'SELECT @x FROM u WHERE f(1)' WHERE id = 1",
    "/* a comment */ UPDATE t SET c = c + 1 WHERE id = 1",
]

SNAPSHOT = [
    # reads other rows
    "UPDATE t SET c = (SELECT MAX(c) FROM u) WHERE id = 1",
    "UPDATE t SET c = 1 WHERE id IN (SELECT id FROM u)",
    "DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)",
    "INSERT INTO t SELECT * FROM u",
    "INSERT INTO t (a) SELECT 1",
    "REPLACE INTO t SELECT * FROM u",
    "INSERT INTO t VALUES ((SELECT MAX(id) FROM u))",
    "INSERT INTO t VALUES (NEXT VALUE FOR s)",
    "INSERT INTO t VALUES (NEXTVAL(s))",
    "WITH x AS (SELECT 1 AS id) UPDATE t SET c = 1 WHERE id = 1",
    # several tables
    "UPDATE t, u SET t.c = u.c WHERE t.id = u.id",
    "UPDATE t JOIN u ON t.id = u.id SET t.c = 1",
    "DELETE t FROM t JOIN u ON t.id = u.id",
    "DELETE FROM t USING t JOIN u ON t.id = u.id",
    # variables
    "UPDATE t SET c = @x WHERE id = 1",
    "UPDATE t SET c = @@max_connections WHERE id = 1",
    "INSERT INTO t VALUES (@a)",
    # functions that may be stored ones
    "UPDATE t SET c = f(1) WHERE id = 1",
    "UPDATE t SET c = db.f(c) WHERE id = 1",
    "UPDATE t SET c = `f`(c) WHERE id = 1",
    "INSERT INTO t VALUES (to_date('2020'))",
    "UPDATE t SET c = array_agg(c), d = levenshtein(a, b) WHERE id = 1",
    "UPDATE t SET c = 1 WHERE MATCH (a) AGAINST ('x')",
    # not a plain DML statement
    "SELECT c FROM t WHERE id = 1 FOR UPDATE",
    "SELECT 1",
    "LOAD DATA INFILE 'x' INTO TABLE t",
    "CALL p()",
    "SET @x = 1",
    "UPDATE IGNORE t SET c = 1",  # sqlglot cannot read it: in doubt
    "UPDATE t SET c = 1 WHERE id = 1 " + "AND c = 1 " * 500,  # too long to look at
]


@pytest.mark.parametrize("sql", LOCKING)
def test_locking_writes(sql: str) -> None:
    assert is_locking_write(sql)
    info = classify_uncached(sql)
    assert info.kind is StatementKind.DML and info.locking_write


@pytest.mark.parametrize("sql", SNAPSHOT)
def test_everything_else_keeps_the_snapshot_rule(sql: str) -> None:
    assert not is_locking_write(sql)
    assert not classify_uncached(sql).locking_write


def test_both_halves_decide() -> None:
    """Each half refuses on its own what the other lets through."""
    # tokens fine, sqlglot sees a second table
    multi = "UPDATE t, u SET t.c = 1"
    assert tokens_allow(shape(multi)) and not single_table_row_write(
        multi, SqlMode.DEFAULT, frozenset()
    )
    # sqlglot knows LEVENSHTEIN, MariaDB does not: a stored function of that name would run
    call = "UPDATE t SET c = levenshtein(a, 'x')"
    assert single_table_row_write(call, SqlMode.DEFAULT, frozenset()) and not tokens_allow(
        shape(call)
    )


def test_ansi_quotes_mode_is_how_the_text_is_read() -> None:
    # under ANSI_QUOTES "f" is a name: a stored function call
    sql = 'UPDATE t SET c = "f"(1) WHERE id = 1'
    assert not is_locking_write(sql, SqlMode.ANSI_QUOTES)
    # a column named SELECT, or a string: the row itself either way
    assert is_locking_write('UPDATE t SET c = "SELECT" WHERE id = 1', SqlMode.ANSI_QUOTES)


def test_the_verdict_is_cached_by_shape() -> None:
    locking_write._verdicts.clear()
    assert is_locking_write("UPDATE t SET c = c + 1 WHERE id = 1")
    assert len(locking_write._verdicts) == 1
    assert is_locking_write("UPDATE t SET c = c + 7 WHERE id = 'abc'")
    assert len(locking_write._verdicts) == 1  # same shape: no new verdict
    assert not is_locking_write("UPDATE t SET c = c + 1 WHERE id = @x")
    assert len(locking_write._verdicts) == 2


def test_prepared_statements_keep_the_database_they_were_prepared_in() -> None:
    session = Session(1, "127.0.0.1:1", schema="app")
    session.begin_statement("UPDATE t SET c = c + 1 WHERE id = 1")
    session.statement_prepared(7, 0)
    session.begin_statement("USE other")
    session.begin_execute(bytes((0x17,)) + (7).to_bytes(4, "little") + bytes((0, 1, 0, 0, 0)))
    assert session.statement is not None
    assert session.statement.tables == (TableName("app", "t"),)
    assert session.statement.locking_write


def _catalog() -> Catalog:
    """`app.t`, a plain table, as the capture catalog knows it (no user triggers)."""
    t = TableShape(
        "app",
        "t",
        1,
        "InnoDB",
        (Column("id", "int", Kind.INT, None, None, False, False),),
        (UniqueKey("PRIMARY", ("id",), (None,)),),
        (),
    )
    return Catalog({("app", "t"): t}, frozenset())


@pytest.mark.parametrize(
    ("sql", "keeps"),
    [
        ("BEGIN", True),
        ("START TRANSACTION READ WRITE", True),
        ("START TRANSACTION WITH CONSISTENT SNAPSHOT", False),  # a read view at once
        ("SAVEPOINT a", True),
        ("ROLLBACK TO SAVEPOINT a", True),
        ("RELEASE SAVEPOINT a", True),
        ("COMMIT", True),
        ("UPDATE t SET id = id + 1 WHERE id = 1", True),
        ("UPDATE app.t SET id = id + 1 WHERE id = 1", True),
        ("UPDATE other.t SET id = id + 1 WHERE id = 1", False),  # not a replicated table
        ("UPDATE v SET id = 1", False),  # a view, say: unknown
        ("UPDATE t SET id = 1 WHERE id = 1; UPDATE t SET id = 2 WHERE id = 2", False),
        ("SELECT id FROM t WHERE id = 1", False),
        ("SELECT id FROM t WHERE id = 1 FOR UPDATE", False),
        ("SET @x = 1", False),
        ("DO 1", False),
        ("CALL p()", False),
        ("EXECUTE s", False),
        ("SHOW STATUS", False),
    ],
)
def test_which_statements_keep_a_transaction_of_locking_writes(sql: str, keeps: bool) -> None:
    session = Session(1, "127.0.0.1:1", schema="app")
    assert _keeps_locking_only(_catalog(), session, classify(sql)) is keeps


def test_a_catalog_that_does_not_know_the_triggers_trusts_no_table() -> None:
    catalog = _catalog()
    assert catalog.writes_only_lock(("app", "t"))
    unknown = Catalog(catalog.shapes)
    assert not unknown.writes_only_lock(("app", "t"))
    triggered = Catalog(catalog.shapes, frozenset({("app", "t")}))
    assert not triggered.writes_only_lock(("app", "t"))


# Literals of every kind a statement may carry, including text that looks like SQL.
_literals = st.one_of(
    st.integers(-(2**63), 2**64).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=20).map(lambda s: "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"),
    st.sampled_from(["'SELECT'", "'@x'", "'f('", "'a'' (SELECT 1)'", "0x1F", "x'0A'", "NULL"]),
)
_TEMPLATES = [
    ("UPDATE t SET c = c + {} WHERE id = {}", True),
    ("DELETE FROM t WHERE id = {} OR name = {}", True),
    ("INSERT INTO t (a, b) VALUES ({}, {})", True),
    ("INSERT INTO t VALUES ({}, 1) ON DUPLICATE KEY UPDATE b = {}", True),
    ("REPLACE INTO t VALUES ({}, CONCAT({}, 'x'))", True),
    ("UPDATE t SET c = (SELECT {}) WHERE id = {}", False),
    ("UPDATE t SET c = f({}) WHERE id = {}", False),
    ("INSERT INTO t SELECT {}, {}", False),
    ("UPDATE t SET c = @v + {} WHERE id = {}", False),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_TEMPLATES), _literals, _literals)
def test_literals_never_change_the_verdict(template: tuple[str, bool], a: str, b: str) -> None:
    """The cache holds one verdict per shape: whatever the literals, it is the template's,
    and sqlglot asked afresh about this very text agrees."""
    text, expected = template
    sql = text.format(a, b)
    assert is_locking_write(sql) is expected
    assert (
        tokens_allow(shape(sql))
        and single_table_row_write(sql, SqlMode.DEFAULT, locking_write._CALLS)
    ) is expected
    assert classify(sql).locking_write is expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("t(),'`@;= SELECTUPDAfx1?")), max_size=60))
def test_garbage_is_judged_without_raising(tail: str) -> None:
    for sql in ("UPDATE t SET c = " + tail, "INSERT INTO t VALUES (" + tail, tail):
        assert isinstance(is_locking_write(sql), bool)
