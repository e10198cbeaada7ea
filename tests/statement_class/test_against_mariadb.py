"""The classifier's lexical and transactional claims, checked against a real mariadbd."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.managed_mariadb import MariaDBServer
from proxy.sql_text import Tok, split_statements, tokens, unquote_string
from proxy.statement_class import classify

pytestmark = pytest.mark.mariadb

# (statement, clean-up run after it), in an order in which each one succeeds.
IMPLICIT_COMMIT_PROBES: list[tuple[str, str | None]] = [
    ("CREATE TABLE ic.t1 (a INT PRIMARY KEY, b INT)", None),
    ("ALTER TABLE ic.t1 ADD c INT", None),
    ("CREATE INDEX i1 ON ic.t1 (b)", None),
    ("DROP INDEX i1 ON ic.t1", None),
    ("CREATE TEMPORARY TABLE ic.tmp (a INT)", None),
    ("DROP TEMPORARY TABLE ic.tmp", None),
    ("CREATE VIEW ic.v AS SELECT 1 AS x", None),
    ("ALTER VIEW ic.v AS SELECT 2 AS x", None),
    ("DROP VIEW ic.v", None),
    ("RENAME TABLE ic.t1 TO ic.t2", None),
    ("TRUNCATE TABLE ic.t2", None),
    ("CREATE SEQUENCE ic.s", None),
    ("ALTER SEQUENCE ic.s RESTART 5", None),
    ("DROP SEQUENCE ic.s", None),
    ("CREATE DATABASE ic2", None),
    ("ALTER DATABASE ic2 CHARACTER SET utf8mb4", None),
    ("DROP DATABASE ic2", None),
    ("CREATE PROCEDURE ic.p() BEGIN SELECT 1; END", None),
    ("ALTER PROCEDURE ic.p COMMENT 'x'", None),
    ("CALL ic.p()", None),
    ("DROP PROCEDURE ic.p", None),
    ("CREATE FUNCTION ic.f() RETURNS INT RETURN 1", None),
    ("DROP FUNCTION ic.f", None),
    ("CREATE TRIGGER ic.tr BEFORE INSERT ON ic.t2 FOR EACH ROW SET NEW.b = 1", None),
    ("DROP TRIGGER ic.tr", None),
    ("CREATE EVENT ic.e ON SCHEDULE EVERY 1 HOUR DO SELECT 1", None),
    ("ALTER EVENT ic.e DISABLE", None),
    ("DROP EVENT ic.e", None),
    ("CREATE USER 'icu'@'%'", None),
    ("ALTER USER 'icu'@'%' IDENTIFIED BY 'x'", None),
    ("GRANT SELECT ON ic.* TO 'icu'@'%'", None),
    ("REVOKE SELECT ON ic.* FROM 'icu'@'%'", None),
    ("SET PASSWORD FOR 'icu'@'%' = PASSWORD('y')", None),
    ("CREATE ROLE icr", None),
    ("GRANT icr TO 'icu'@'%'", None),
    ("SET DEFAULT ROLE icr FOR 'icu'@'%'", None),
    ("DROP ROLE icr", None),
    ("RENAME USER 'icu'@'%' TO 'icv'@'%'", None),
    ("DROP USER 'icv'@'%'", None),
    ("BEGIN", None),
    ("START TRANSACTION READ WRITE", None),
    ("LOCK TABLES ic.t2 READ", "UNLOCK TABLES"),
    ("UNLOCK TABLES", None),
    ("FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES"),
    ("FLUSH TABLES", None),
    ("ANALYZE TABLE ic.t2", None),
    ("OPTIMIZE TABLE ic.t2", None),
    ("REPAIR TABLE ic.t2", None),
    ("CHECK TABLE ic.t2", None),
    ("CHECKSUM TABLE ic.t2", None),
    ("RESET QUERY CACHE", None),
    ("SELECT * FROM ic.t2", None),
    ("SELECT * FROM ic.t2 FOR UPDATE", None),
    ("INSERT INTO ic.t2 (a) VALUES (1)", None),
    ("SET NAMES utf8mb4", None),
    ("SET SESSION wsrep_sync_wait = 0", None),
    ("SAVEPOINT sp", None),
    ("SHOW TABLES FROM ic", None),
    ("EXPLAIN SELECT 1", None),
    ("DO 1", None),
    ("USE ic", None),
    ("PREPARE st FROM 'SELECT 1'", None),
    ("EXECUTE st", None),
    ("DEALLOCATE PREPARE st", None),
    ("ANALYZE SELECT 1", None),
    ("HANDLER ic.t2 OPEN", "HANDLER t2 CLOSE"),
]


@pytest.fixture
def conns(mariadb: MariaDBServer) -> Iterator[tuple[pymysql.Connection, pymysql.Connection]]:
    with mariadb.connect() as setup, setup.cursor() as cur:
        for stmt in (
            "DROP DATABASE IF EXISTS ic",
            "DROP DATABASE IF EXISTS ic_marker",
            "DROP DATABASE IF EXISTS ic2",
            "DROP USER IF EXISTS 'icu'@'%', 'icv'@'%'",
            "DROP ROLE IF EXISTS icr",
            "CREATE DATABASE ic",
            "CREATE DATABASE ic_marker",
            "CREATE TABLE ic_marker.m (id INT PRIMARY KEY) ENGINE=InnoDB",
        ):
            cur.execute(stmt)
    with mariadb.connect() as a, mariadb.connect() as b:
        yield a, b
    with mariadb.connect() as cleanup, cleanup.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS ic")
        cur.execute("DROP DATABASE IF EXISTS ic_marker")


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
            cur.execute("INSERT INTO ic_marker.m VALUES (%s)", (marker,))
            cur.execute(stmt)
            while cur.nextset():  # drain result sets (CALL)
                pass
            obs.execute("SELECT COUNT(*) FROM ic_marker.m WHERE id = %s", (marker,))
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
    "CREATE PROCEDURE mt.p() BEGIN DECLARE x INT DEFAULT 1; "
    "IF x = 1 THEN SELECT 1; ELSE SELECT 2; END IF; "
    "CASE x WHEN 1 THEN SELECT 3; ELSE BEGIN END; END CASE; END; DROP PROCEDURE mt.p",
    "CREATE TRIGGER mt.tr BEFORE INSERT ON mt.t FOR EACH ROW BEGIN "
    "SET NEW.a = NEW.a + 1; SET NEW.a = NEW.a * 2; END; DROP TRIGGER mt.tr",
    "BEGIN NOT ATOMIC DECLARE v INT; SET v = 1; SET @v = v; END; SELECT 4",
    "XA START 'mt1'; SELECT 5; XA END 'mt1'; XA ROLLBACK 'mt1'",
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
def test_statement_split_matches_the_server(mariadb: MariaDBServer, text: str) -> None:
    """The server answers a multi-statement text once per statement we split it into
    (a statement that returns no rows still gets one OK result)."""
    with mariadb.connect(client_flag=CLIENT.MULTI_STATEMENTS) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS mt")
            cur.execute("CREATE TABLE IF NOT EXISTS mt.t (a INT)")
        parts = split_statements(text)
        assert _result_count(conn, text) == len(parts)
        assert classify(text).multi == (len(parts) > 1)
        for part in parts:  # each part runs on its own: a boundary was not misplaced
            _result_count(conn, part)


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
