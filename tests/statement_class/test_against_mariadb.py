"""The classifier's lexical and transactional claims, checked against a real mariadbd."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.managed_mariadb import MariaDBServer
from proxy.sql_text import SqlMode, Tok, split_statements, tokens, unquote_string
from proxy.statement_class import classify

pytestmark = pytest.mark.mariadb

# (statement, clean-up run after it), in an order in which each one succeeds.
IMPLICIT_COMMIT_PROBES: list[tuple[str, str | None]] = [
    ("CREATE TABLE sc_ic.t1 (a INT PRIMARY KEY, b INT)", None),
    ("ALTER TABLE sc_ic.t1 ADD c INT", None),
    ("CREATE INDEX i1 ON sc_ic.t1 (b)", None),
    ("DROP INDEX i1 ON sc_ic.t1", None),
    ("CREATE TEMPORARY TABLE sc_ic.tmp (a INT)", None),
    ("DROP TEMPORARY TABLE sc_ic.tmp", None),
    ("CREATE VIEW sc_ic.v AS SELECT 1 AS x", None),
    ("ALTER VIEW sc_ic.v AS SELECT 2 AS x", None),
    ("DROP VIEW sc_ic.v", None),
    ("RENAME TABLE sc_ic.t1 TO sc_ic.t2", None),
    ("TRUNCATE TABLE sc_ic.t2", None),
    ("CREATE SEQUENCE sc_ic.s", None),
    ("ALTER SEQUENCE sc_ic.s RESTART 5", None),
    ("DROP SEQUENCE sc_ic.s", None),
    ("CREATE DATABASE sc_ic2", None),
    ("ALTER DATABASE sc_ic2 CHARACTER SET utf8mb4", None),
    ("DROP DATABASE sc_ic2", None),
    ("CREATE PROCEDURE sc_ic.p() BEGIN SELECT 1; END", None),
    ("ALTER PROCEDURE sc_ic.p COMMENT 'x'", None),
    ("CALL sc_ic.p()", None),
    ("DROP PROCEDURE sc_ic.p", None),
    ("CREATE FUNCTION sc_ic.f() RETURNS INT RETURN 1", None),
    ("DROP FUNCTION sc_ic.f", None),
    ("CREATE TRIGGER sc_ic.tr BEFORE INSERT ON sc_ic.t2 FOR EACH ROW SET NEW.b = 1", None),
    ("DROP TRIGGER sc_ic.tr", None),
    ("CREATE EVENT sc_ic.e ON SCHEDULE EVERY 1 HOUR DO SELECT 1", None),
    ("ALTER EVENT sc_ic.e DISABLE", None),
    ("DROP EVENT sc_ic.e", None),
    ("CREATE USER 'sc_icu'@'%'", None),
    ("ALTER USER 'sc_icu'@'%' IDENTIFIED BY 'x'", None),
    ("GRANT SELECT ON sc_ic.* TO 'sc_icu'@'%'", None),
    ("REVOKE SELECT ON sc_ic.* FROM 'sc_icu'@'%'", None),
    ("SET PASSWORD FOR 'sc_icu'@'%' = PASSWORD('y')", None),
    ("CREATE ROLE sc_icr", None),
    ("GRANT sc_icr TO 'sc_icu'@'%'", None),
    ("SET DEFAULT ROLE sc_icr FOR 'sc_icu'@'%'", None),
    ("DROP ROLE sc_icr", None),
    ("RENAME USER 'sc_icu'@'%' TO 'sc_icv'@'%'", None),
    ("DROP USER 'sc_icv'@'%'", None),
    ("BEGIN", None),
    ("START TRANSACTION READ WRITE", None),
    ("LOCK TABLES sc_ic.t2 READ", "UNLOCK TABLES"),
    ("UNLOCK TABLES", None),
    ("FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES"),
    ("FLUSH TABLES", None),
    ("ANALYZE TABLE sc_ic.t2", None),
    ("OPTIMIZE TABLE sc_ic.t2", None),
    ("REPAIR TABLE sc_ic.t2", None),
    ("CHECK TABLE sc_ic.t2", None),
    ("CHECKSUM TABLE sc_ic.t2", None),
    ("RESET QUERY CACHE", None),
    ("SELECT * FROM sc_ic.t2", None),
    ("SELECT * FROM sc_ic.t2 FOR UPDATE", None),
    ("INSERT INTO sc_ic.t2 (a) VALUES (1)", None),
    ("SET NAMES utf8mb4", None),
    ("SET SESSION wsrep_sync_wait = 0", None),
    ("SAVEPOINT sp", None),
    ("SHOW TABLES FROM sc_ic", None),
    ("EXPLAIN SELECT 1", None),
    ("DO 1", None),
    ("USE sc_ic", None),
    ("PREPARE st FROM 'SELECT 1'", None),
    ("EXECUTE st", None),
    ("DEALLOCATE PREPARE st", None),
    ("ANALYZE SELECT 1", None),
    ("HANDLER sc_ic.t2 OPEN", "HANDLER t2 CLOSE"),
]


_CLEAN = (
    "DROP DATABASE IF EXISTS sc_ic",
    "DROP DATABASE IF EXISTS sc_marker",
    "DROP DATABASE IF EXISTS sc_ic2",
    "DROP USER IF EXISTS 'sc_icu'@'%', 'sc_icv'@'%'",
    "DROP ROLE IF EXISTS sc_icr",
)


def _run(mariadb: MariaDBServer, statements: tuple[str, ...]) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        for stmt in statements:
            cur.execute(stmt)


@pytest.fixture
def conns(mariadb: MariaDBServer) -> Iterator[tuple[pymysql.Connection, pymysql.Connection]]:
    _run(
        mariadb,
        (
            *_CLEAN,
            "CREATE DATABASE sc_ic",
            "CREATE DATABASE sc_marker",
            "CREATE TABLE sc_marker.m (id INT PRIMARY KEY) ENGINE=InnoDB",
        ),
    )
    try:
        with mariadb.connect() as a, mariadb.connect() as b:
            yield a, b
    finally:
        _run(mariadb, _CLEAN)


@pytest.fixture(scope="module")
def multi_conn(mariadb: MariaDBServer) -> Iterator[pymysql.Connection]:
    _run(
        mariadb,
        ("CREATE DATABASE IF NOT EXISTS sc_mt", "CREATE TABLE IF NOT EXISTS sc_mt.t (a INT)"),
    )
    try:
        with mariadb.connect(client_flag=CLIENT.MULTI_STATEMENTS) as conn:
            yield conn
    finally:
        _run(mariadb, ("DROP DATABASE IF EXISTS sc_mt",))


def test_implicit_commit_matches_the_server(
    conns: tuple[pymysql.Connection, pymysql.Connection],
) -> None:
    """A row inserted in an open transaction is visible to another session after the
    statement exactly when the statement committed implicitly."""
    session, observer = conns
    wrong = []
    seen = set()
    with session.cursor() as cur, observer.cursor() as obs:
        for marker, (stmt, cleanup) in enumerate(IMPLICIT_COMMIT_PROBES):
            cur.execute("BEGIN")
            cur.execute("INSERT INTO sc_marker.m VALUES (%s)", (marker,))
            cur.execute(stmt)
            while cur.nextset():  # drain result sets (CALL)
                pass
            obs.execute("SELECT COUNT(*) FROM sc_marker.m WHERE id = %s", (marker,))
            (committed,) = obs.fetchone()  # type: ignore[misc]
            cur.execute("ROLLBACK")
            if cleanup:
                cur.execute(cleanup)
            seen.add(bool(committed))
            if classify(stmt).implicit_commit != bool(committed):
                wrong.append((stmt, bool(committed)))
    assert seen == {True, False}  # the probe tells both apart
    assert not wrong, f"implicit_commit differs from the server (statement, server): {wrong}"


MULTI_TEXTS = [
    "SELECT 1; SELECT ';'; SELECT \";\"",
    "SELECT 'a\\';' ; SELECT 2",
    "SELECT 'it''s;' AS x; SELECT `a;b` FROM (SELECT 1 AS `a;b`) t",
    "SELECT 1 -- ;\n; SELECT 2 # ;\n",
    "SELECT 1 /* ; */; SELECT /*!40101 2 */; SELECT /*!99999 ; */ 3",
    "SELECT begin FROM (SELECT 1 AS begin) x; SELECT 2",
    "SELECT x.end FROM (SELECT 1 AS end) x; SELECT 2",
    "SELECT CASE WHEN 1 THEN 'a;' ELSE 'b' END; SELECT 3",
    "CREATE PROCEDURE sc_mt.p() BEGIN DECLARE x INT DEFAULT 1; "
    "IF x = 1 THEN SELECT 1; ELSE SELECT 2; END IF; "
    "CASE x WHEN 1 THEN SELECT 3; ELSE BEGIN END; END CASE; END; DROP PROCEDURE sc_mt.p",
    "CREATE TRIGGER sc_mt.tr BEFORE INSERT ON sc_mt.t FOR EACH ROW BEGIN "
    "SET NEW.a = NEW.a + 1; SET NEW.a = NEW.a * 2; END; DROP TRIGGER sc_mt.tr",
    "BEGIN NOT ATOMIC DECLARE v INT; SET v = 1; SET @v = v; END; SELECT 4",
    "XA START 'sc_mt1'; SELECT 5; XA END 'sc_mt1'; XA ROLLBACK 'sc_mt1'",
    "SELECT 1;",
]


def _result_count(conn: pymysql.Connection, text: str) -> int:
    with conn.cursor() as cur:
        cur.execute(text)
        count = 1
        while cur.nextset():
            count += 1
        return count


@pytest.mark.parametrize("text", MULTI_TEXTS, ids=range(len(MULTI_TEXTS)))
def test_statement_split_matches_the_server(multi_conn: pymysql.Connection, text: str) -> None:
    """The server answers a multi-statement text once per statement we split it into
    (a statement that returns no rows still gets one OK result)."""
    parts = split_statements(text)
    assert _result_count(multi_conn, text) == len(parts)
    assert classify(text).multi == (len(parts) > 1)
    for part in parts:  # each part runs on its own: a boundary was not misplaced
        _result_count(multi_conn, part)


@pytest.mark.parametrize(
    "comment",
    [
        "/*! + 1 */",
        "/*!40101 + 1 */",
        "/*!50700 + 1 */",
        "/*!99999 + 1 */",
        "/*!100000 + 1 */",
        "/*!101100 + 1 */",
        "/*!110000 + 1 */",
        "/*M! + 1 */",
        "/*M!50700 + 1 */",
        "/*M!100100 + 1 */",
        "/*M!999999 + 1 */",
        "/*m! + 1 */",
        "/* + 1 */",
        "/*!+1*/",
        "*/* + 1 */ 1",  # `*` then a comment: 1 * 1
    ],
)
def test_executable_comments_match_the_server(mariadb: MariaDBServer, comment: str) -> None:
    sql = f"SELECT 1 {comment}"
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute(sql)
        (value,) = cur.fetchone()  # type: ignore[misc]
    runs = any(t.text == "+" for t in tokens(sql))
    assert value == (2 if runs else 1)


LITERALS = [
    "'plain'",
    "'it''s'",
    "'a\\'b'",
    "'back\\\\slash'",
    "'tab\\there'",
    "'nl\\nx'",
    "'percent\\%'",
    "'under\\_'",
    "'unknown\\q'",
    '"dq"',
    '"d""q"',
    '"d\\"q"',
    "'semi;colon'",
    "'/* not a comment */'",
    "'-- nor this'",
    "'zero\\0'",
]


def test_string_literals_match_the_server(mariadb: MariaDBServer) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        for literal in LITERALS:
            cur.execute(f"SELECT {literal}")
            (value,) = cur.fetchone()  # type: ignore[misc]
            (tok,) = [t for t in tokens(literal)]
            assert tok.kind is Tok.STRING, literal
            assert unquote_string(tok) == value, literal


MODE_TEXTS = [  # valid under every mode, split differently by some
    "SELECT 'a\\'; SELECT 2; -- '",
    'SELECT 1 AS "a\\"; SELECT 2; -- "',
    "SELECT 'x\\\\' AS a; SELECT 'y' AS b",
    'SELECT 1 AS "b;c"; SELECT 2',
]


def _row_sets(conn: pymysql.Connection, text: str) -> list[tuple[tuple[object, ...], ...]]:
    """The rows of each result set that has columns (OK-only results left out)."""
    out = []
    with conn.cursor() as cur:
        cur.execute(text)
        while True:
            if cur.description is not None:
                out.append(tuple(cur.fetchall()))
            if not cur.nextset():
                return out


@pytest.mark.parametrize(
    "sql_mode", ["", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI_QUOTES,NO_BACKSLASH_ESCAPES"]
)
def test_statement_split_under_sql_mode_matches_the_server(
    mariadb: MariaDBServer, sql_mode: str
) -> None:
    """Each text gives the same rows run whole as run statement by statement as we split
    it, one row set per statement (every statement here is a SELECT)."""
    mode = SqlMode.from_sql_mode(sql_mode)
    with mariadb.connect(client_flag=CLIENT.MULTI_STATEMENTS) as conn:
        with conn.cursor() as cur:
            cur.execute(f"SET SESSION sql_mode = '{sql_mode}'")
        for text in MODE_TEXTS:
            parts = split_statements(text, mode)
            whole = _row_sets(conn, text)
            assert len(whole) == len(parts), text
            assert whole == [rows for part in parts for rows in _row_sets(conn, part)], text


@pytest.mark.parametrize(
    "sql_mode", ["ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL", "TRADITIONAL"]
)
def test_combination_sql_modes_match_the_server(mariadb: MariaDBServer, sql_mode: str) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode = '{sql_mode}'")
        cur.execute("SELECT @@session.sql_mode")
        (expanded,) = cur.fetchone()  # type: ignore[misc]
    assert SqlMode.from_sql_mode(sql_mode) == SqlMode.from_sql_mode(expanded)
