"""The table of statements and what the classifier must say about them.

Each case: (sql, kind, expected fields). Fields not named are not checked, except that
`implicit_commit` defaults to the MariaDB rule for the kind (see `IMPLICIT_BY_KIND`).
"""

from __future__ import annotations

from typing import Any

from proxy.statement_class import StatementKind as K
from proxy.statement_class import TableName as T

Case = tuple[str, K, dict[str, Any]]

# Kinds whose statements always commit implicitly; others never do unless a case says so.
IMPLICIT_BY_KIND = {K.DDL: True, K.ACCOUNT: True, K.TXN_BEGIN: True}

CASES: list[Case] = [
    # --- reads
    ("SELECT 1", K.READ, {}),
    ("select c from sbtest1 where id=5", K.READ, {}),
    ("  \n\tSELECT 1", K.READ, {}),
    ("(SELECT 1) UNION (SELECT 2)", K.READ, {}),
    ("((SELECT a FROM t))", K.READ, {}),
    ("SELECT 'FOR UPDATE' FROM t", K.READ, {}),
    ('SELECT "x FOR UPDATE" FROM t', K.READ, {}),
    ("SELECT `for update` FROM t", K.READ, {}),
    ("SELECT a FROM t -- FOR UPDATE\n", K.READ, {}),
    ("SELECT a FROM t # FOR UPDATE", K.READ, {}),
    ("SELECT a FROM t /* FOR UPDATE */", K.READ, {}),
    ("SELECT update_time FROM t", K.READ, {}),
    ("SELECT * FROM shares", K.READ, {}),
    ("SELECT 'it''s', 'a\\'b FOR UPDATE' FROM t", K.READ, {}),
    ("SELECT 1 INTO @x", K.READ, {}),
    ("WITH c AS (SELECT 1 AS a) SELECT * FROM c", K.READ, {}),
    (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<5) SELECT n FROM c",
        K.READ,
        {},
    ),
    ("VALUES (1, 2), (3, 4)", K.READ, {}),
    ("TABLE t", K.READ, {}),
    ("DO 1", K.READ, {}),
    ("/*!SELECT*/ 1", K.READ, {}),
    # --- locking reads
    ("SELECT * FROM t WHERE id=1 FOR UPDATE", K.LOCKING_READ, {}),
    ("select * from t where id=1 for update nowait", K.LOCKING_READ, {}),
    ("SELECT * FROM t FOR UPDATE SKIP LOCKED", K.LOCKING_READ, {}),
    ("SELECT * FROM t WHERE id=1 FOR UPDATE WAIT 5", K.LOCKING_READ, {}),
    ("SELECT * FROM t LOCK IN SHARE MODE", K.LOCKING_READ, {}),
    ("SELECT * FROM t FOR SHARE", K.LOCKING_READ, {}),
    ("SELECT * FROM t FOR\n  -- comment\n UPDATE", K.LOCKING_READ, {}),
    ("(SELECT * FROM t FOR UPDATE)", K.LOCKING_READ, {}),
    ("SELECT * FROM (SELECT * FROM t FOR UPDATE) x", K.LOCKING_READ, {}),
    ("WITH c AS (SELECT 1) SELECT * FROM c FOR UPDATE", K.LOCKING_READ, {}),
    ("SELECT * FROM t /*!FOR UPDATE */", K.LOCKING_READ, {}),
    ("SELECT * FROM t /*M!100300 FOR UPDATE */", K.LOCKING_READ, {}),
    # --- DML
    ("INSERT INTO t VALUES (1)", K.DML, {"tables": (T(None, "t"),)}),
    (
        "insert into sbtest1 (id, k, c, pad) values (1, 2, 'a;b', 'c')",
        K.DML,
        {"tables": (T(None, "sbtest1"),)},
    ),
    ("INSERT LOW_PRIORITY IGNORE INTO db.t SET a=1", K.DML, {"tables": (T("db", "t"),)}),
    ("INSERT t VALUES (1)", K.DML, {"tables": (T(None, "t"),)}),
    ("INSERT INTO `my db`.`odd``name` VALUES (1)", K.DML, {"tables": (T("my db", "odd`name"),)}),
    ("INSERT INTO t SELECT * FROM s FOR UPDATE", K.DML, {"tables": (T(None, "t"),)}),
    (
        "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a=a+1",
        K.DML,
        {"tables": (T(None, "t"),)},
    ),
    ("REPLACE INTO t VALUES (1)", K.DML, {"tables": (T(None, "t"),)}),
    ("REPLACE DELAYED t VALUES (1)", K.DML, {"tables": (T(None, "t"),)}),
    ("UPDATE t SET a=1 WHERE id=2", K.DML, {"tables": (T(None, "t"),)}),
    ("UPDATE sbtest1 SET k=k+1 WHERE id=3", K.DML, {"tables": (T(None, "sbtest1"),)}),
    ("UPDATE LOW_PRIORITY IGNORE db.t AS x SET x.a=1", K.DML, {"tables": (T("db", "t"),)}),
    ("UPDATE t x SET x.a=1", K.DML, {"tables": (T(None, "t"),)}),
    ("UPDATE a JOIN b ON a.id=b.id SET a.x=b.x", K.DML, {"tables": (T(None, "a"),)}),
    ("UPDATE t1 AS x, t2 SET x.a=1", K.DML, {"tables": (T(None, "t1"),)}),
    ("UPDATE t1, t2 SET t1.a=1, t2.b=2", K.DML, {"tables": (T(None, "t1"), T(None, "t2"))}),
    ("DELETE FROM t WHERE id=1", K.DML, {"tables": (T(None, "t"),)}),
    ("DELETE FROM db.t", K.DML, {"tables": (T("db", "t"),)}),
    (
        "DELETE LOW_PRIORITY QUICK IGNORE FROM t ORDER BY id LIMIT 1",
        K.DML,
        {"tables": (T(None, "t"),)},
    ),
    ("DELETE FROM t WHERE id=1 RETURNING id", K.DML, {"tables": (T(None, "t"),)}),
    ("DELETE a FROM t1 AS a JOIN t2 b ON a.id=b.id", K.DML, {"tables": (T(None, "t1"),)}),
    (
        "DELETE t1, t2 FROM t1 INNER JOIN t2 INNER JOIN t3",
        K.DML,
        {"tables": (T(None, "t1"), T(None, "t2"))},
    ),
    (
        "DELETE FROM t1, t2 USING t1 JOIN t2 JOIN t3",
        K.DML,
        {"tables": (T(None, "t1"), T(None, "t2"))},
    ),
    (
        "WITH c AS (SELECT 1 AS id) UPDATE t SET a=1 WHERE id IN (SELECT id FROM c)",
        K.DML,
        {"tables": (T(None, "t"),)},
    ),
    (
        "WITH c AS (SELECT 1 AS id) DELETE FROM t WHERE id IN (SELECT id FROM c)",
        K.DML,
        {"tables": (T(None, "t"),)},
    ),
    ("LOAD DATA INFILE '/tmp/x' INTO TABLE t", K.DML, {"tables": (T(None, "t"),)}),
    (
        "LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE db.t FIELDS TERMINATED BY ','",
        K.DML,
        {"tables": (T("db", "t"),)},
    ),
    ("LOAD XML INFILE 'x.xml' INTO TABLE t", K.DML, {"tables": (T(None, "t"),)}),
    (
        "SET STATEMENT max_statement_time=10 FOR UPDATE t SET a=1",
        K.DML,
        {"tables": (T(None, "t"),), "session_vars": ()},
    ),
    ("ANALYZE UPDATE t SET a=1", K.DML, {"tables": (T(None, "t"),)}),
    # --- DDL
    ("CREATE TABLE t (id INT PRIMARY KEY)", K.DDL, {"tables": (T(None, "t"),)}),
    ("create table if not exists db.t (id int)", K.DDL, {"tables": (T("db", "t"),)}),
    ("CREATE OR REPLACE TABLE t (a INT)", K.DDL, {"tables": (T(None, "t"),)}),
    ("CREATE TABLE t2 LIKE t1", K.DDL, {"tables": (T(None, "t2"),)}),
    ("CREATE TABLE t SELECT * FROM s", K.DDL, {"tables": (T(None, "t"),)}),
    (
        "CREATE TEMPORARY TABLE tmp (a INT)",
        K.DDL,
        {"tables": (T(None, "tmp"),), "temporary": True, "implicit_commit": False},
    ),
    (
        "DROP TEMPORARY TABLE IF EXISTS tmp",
        K.DDL,
        {"tables": (T(None, "tmp"),), "temporary": True, "implicit_commit": False},
    ),
    ("ALTER TABLE t ADD COLUMN b INT", K.DDL, {"tables": (T(None, "t"),)}),
    ("ALTER ONLINE IGNORE TABLE db.t ADD INDEX (b)", K.DDL, {"tables": (T("db", "t"),)}),
    ("ALTER TABLE t RENAME TO db2.u", K.DDL, {"tables": (T(None, "t"), T("db2", "u"))}),
    ("ALTER TABLE t RENAME COLUMN a TO b", K.DDL, {"tables": (T(None, "t"),)}),
    ("ALTER TABLE t RENAME INDEX a TO b", K.DDL, {"tables": (T(None, "t"),)}),
    ("DROP TABLE t", K.DDL, {"tables": (T(None, "t"),)}),
    ("DROP TABLE IF EXISTS a, db.b CASCADE", K.DDL, {"tables": (T(None, "a"), T("db", "b"))}),
    (
        "RENAME TABLE a TO b, db.c TO db.d",
        K.DDL,
        {"tables": (T(None, "a"), T(None, "b"), T("db", "c"), T("db", "d"))},
    ),
    (
        "RENAME TABLE a WAIT 5 TO b, c NOWAIT TO d",
        K.DDL,
        {"tables": (T(None, "a"), T(None, "b"), T(None, "c"), T(None, "d"))},
    ),
    ("TRUNCATE TABLE t", K.DDL, {"tables": (T(None, "t"),)}),
    ("TRUNCATE db.t", K.DDL, {"tables": (T("db", "t"),)}),
    ("CREATE DATABASE d", K.DDL, {"schemas": ("d",)}),
    ("CREATE SCHEMA IF NOT EXISTS `d-1`", K.DDL, {"schemas": ("d-1",)}),
    ("DROP DATABASE IF EXISTS d", K.DDL, {"schemas": ("d",)}),
    ("ALTER DATABASE d CHARACTER SET utf8mb4", K.DDL, {"schemas": ("d",)}),
    ("ALTER DATABASE CHARACTER SET utf8mb4", K.DDL, {"schemas": ()}),
    ("CREATE INDEX i ON t (a)", K.DDL, {"tables": (T(None, "t"),)}),
    (
        "CREATE UNIQUE INDEX IF NOT EXISTS i USING BTREE ON db.t (a)",
        K.DDL,
        {"tables": (T("db", "t"),)},
    ),
    ("DROP INDEX i ON t", K.DDL, {"tables": (T(None, "t"),)}),
    ("CREATE VIEW v AS SELECT * FROM t", K.DDL, {"tables": (T(None, "v"),)}),
    (
        "CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`root`@`localhost` SQL SECURITY INVOKER "
        "VIEW db.v AS SELECT 1",
        K.DDL,
        {"tables": (T("db", "v"),)},
    ),
    ("ALTER DEFINER=CURRENT_USER VIEW v AS SELECT 2", K.DDL, {"tables": (T(None, "v"),)}),
    ("DROP VIEW IF EXISTS v1, v2", K.DDL, {"tables": (T(None, "v1"), T(None, "v2"))}),
    ("CREATE SEQUENCE s START WITH 10", K.DDL, {"tables": (T(None, "s"),)}),
    ("DROP SEQUENCE s", K.DDL, {"tables": (T(None, "s"),)}),
    ("ALTER SEQUENCE s RESTART 5", K.DDL, {"tables": (T(None, "s"),)}),
    ("CREATE PROCEDURE p() SELECT 1", K.DDL, {}),
    (
        "CREATE DEFINER='u'@'%' PROCEDURE p(IN a INT) BEGIN SELECT a; SELECT a + 1; END",
        K.DDL,
        {"multi": False},
    ),
    ("CREATE FUNCTION f(a INT) RETURNS INT DETERMINISTIC RETURN a + 1", K.DDL, {}),
    (
        "CREATE AGGREGATE FUNCTION udf RETURNS INTEGER SONAME 'x.so'",
        K.DDL,
        {"implicit_commit": False},
    ),
    ("CREATE FUNCTION udf RETURNS STRING SONAME 'x.so'", K.DDL, {"implicit_commit": False}),
    ("DROP PROCEDURE IF EXISTS p", K.DDL, {}),
    ("ALTER PROCEDURE p COMMENT 'x'", K.DDL, {}),
    (
        "CREATE TRIGGER tr BEFORE INSERT ON db.t FOR EACH ROW SET NEW.a = 1",
        K.DDL,
        {"tables": (T("db", "t"),)},
    ),
    (
        "CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW BEGIN "
        "IF NEW.a > 1 THEN SET @x = 1; END IF; END",
        K.DDL,
        {"tables": (T(None, "t"),), "multi": False},
    ),
    ("DROP TRIGGER IF EXISTS tr", K.DDL, {}),
    ("CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t", K.DDL, {}),
    ("ALTER EVENT e DISABLE", K.DDL, {}),
    ("DROP EVENT e", K.DDL, {}),
    ("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST '127.0.0.1')", K.DDL, {}),
    ("/*!40101 CREATE TABLE t (a INT) */", K.DDL, {"tables": (T(None, "t"),)}),
    ("/*M!100100 DROP TABLE t */", K.DDL, {"tables": (T(None, "t"),)}),
    # --- accounts
    ("CREATE USER 'u'@'%' IDENTIFIED BY 'p'", K.ACCOUNT, {}),
    ("CREATE OR REPLACE USER u", K.ACCOUNT, {}),
    ("ALTER USER u IDENTIFIED BY 'x'", K.ACCOUNT, {}),
    ("DROP USER IF EXISTS u", K.ACCOUNT, {}),
    ("RENAME USER a TO b", K.ACCOUNT, {}),
    ("GRANT SELECT ON db.* TO u", K.ACCOUNT, {}),
    ("REVOKE ALL PRIVILEGES, GRANT OPTION FROM u", K.ACCOUNT, {}),
    ("SET PASSWORD FOR u = PASSWORD('x')", K.ACCOUNT, {}),
    ("SET PASSWORD = 'x'", K.ACCOUNT, {}),
    ("CREATE ROLE r", K.ACCOUNT, {}),
    ("DROP ROLE r", K.ACCOUNT, {}),
    ("SET DEFAULT ROLE r FOR u", K.ACCOUNT, {}),
    # --- transaction control
    ("BEGIN", K.TXN_BEGIN, {}),
    ("begin work", K.TXN_BEGIN, {}),
    ("START TRANSACTION", K.TXN_BEGIN, {"modifiers": ()}),
    ("START TRANSACTION READ ONLY", K.TXN_BEGIN, {"modifiers": ("READ ONLY",)}),
    ("START TRANSACTION READ WRITE", K.TXN_BEGIN, {"modifiers": ("READ WRITE",)}),
    (
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        K.TXN_BEGIN,
        {"modifiers": ("WITH CONSISTENT SNAPSHOT", "READ ONLY")},
    ),
    ("COMMIT", K.TXN_COMMIT, {"modifiers": ()}),
    ("commit work", K.TXN_COMMIT, {"modifiers": ()}),
    ("COMMIT AND CHAIN", K.TXN_COMMIT, {"modifiers": ("AND CHAIN",)}),
    (
        "COMMIT WORK AND NO CHAIN NO RELEASE",
        K.TXN_COMMIT,
        {"modifiers": ("AND NO CHAIN", "NO RELEASE")},
    ),
    ("COMMIT RELEASE", K.TXN_COMMIT, {"modifiers": ("RELEASE",)}),
    ("ROLLBACK", K.TXN_ROLLBACK, {}),
    ("ROLLBACK WORK AND CHAIN", K.TXN_ROLLBACK, {"modifiers": ("AND CHAIN",)}),
    ("ROLLBACK TO SAVEPOINT sp1", K.SAVEPOINT, {"name": "sp1"}),
    ("ROLLBACK WORK TO sp1", K.SAVEPOINT, {"name": "sp1"}),
    ("ROLLBACK TO `sp 1`", K.SAVEPOINT, {"name": "sp 1"}),
    ("SAVEPOINT sp1", K.SAVEPOINT, {"name": "sp1"}),
    ("RELEASE SAVEPOINT sp1", K.SAVEPOINT, {"name": "sp1"}),
    # --- SET
    ("SET autocommit=0", K.SET, {"session_vars": ("autocommit",)}),
    ("SET AUTOCOMMIT = 1", K.SET, {"session_vars": ("autocommit",)}),
    ("set @@autocommit:=0", K.SET, {"session_vars": ("autocommit",)}),
    ("SET SESSION wsrep_sync_wait = 1", K.SET, {"session_vars": ("wsrep_sync_wait",)}),
    ("SET LOCAL wsrep_sync_wait = 1", K.SET, {"session_vars": ("wsrep_sync_wait",)}),
    (
        "SET @@session.wsrep_sync_wait=7, @@local.sql_mode='', @u = 1",
        K.SET,
        {"session_vars": ("wsrep_sync_wait", "sql_mode"), "global_vars": ()},
    ),
    (
        "SET GLOBAL wsrep_provider_options='x', max_connections=10",
        K.SET,
        {"global_vars": ("wsrep_provider_options", "max_connections"), "session_vars": ()},
    ),
    (
        "SET GLOBAL a=1, SESSION b=2, c=3",
        K.SET,
        {"global_vars": ("a",), "session_vars": ("b", "c")},
    ),
    ("SET @@global.wsrep_on=OFF", K.SET, {"global_vars": ("wsrep_on",)}),
    ("SET @x = 1, @y := (SELECT 2)", K.SET, {"session_vars": (), "global_vars": ()}),
    (
        "SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), autocommit = 0",
        K.SET,
        {"session_vars": ("sql_mode", "autocommit")},
    ),
    ("SET `autocommit` = 0", K.SET, {"session_vars": ("autocommit",)}),
    (
        "SET GLOBAL keycache1.key_buffer_size = 1024",
        K.SET,
        {"global_vars": ("keycache1.key_buffer_size",)},
    ),
    (
        "SET NAMES utf8mb4",
        K.SET,
        {
            "session_vars": (
                "character_set_client",
                "character_set_connection",
                "character_set_results",
                "collation_connection",
            )
        },
    ),
    (
        "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin', autocommit=1",
        K.SET,
        {
            "session_vars": (
                "character_set_client",
                "character_set_connection",
                "character_set_results",
                "collation_connection",
                "autocommit",
            )
        },
    ),
    (
        "SET CHARACTER SET latin1",
        K.SET,
        {
            "session_vars": (
                "character_set_client",
                "character_set_connection",
                "character_set_results",
                "collation_connection",
            )
        },
    ),
    (
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
        K.SET,
        {"session_vars": (), "modifiers": ("ISOLATION LEVEL READ COMMITTED",)},
    ),
    (
        "SET TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE",
        K.SET,
        {"modifiers": ("READ ONLY", "ISOLATION LEVEL SERIALIZABLE")},
    ),
    (
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        K.SET,
        {"session_vars": ("tx_isolation",), "modifiers": ()},
    ),
    ("SET GLOBAL TRANSACTION READ WRITE", K.SET, {"global_vars": ("tx_read_only",)}),
    ("SET ROLE r", K.SET, {"name": "r"}),
    (
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */",
        K.SET,
        {"session_vars": ("sql_mode",)},
    ),
    ("/*!40014 SET FOREIGN_KEY_CHECKS=0 */", K.SET, {"session_vars": ("foreign_key_checks",)}),
    # --- SHOW / USE / CALL / EXPLAIN
    ("SHOW TABLES", K.SHOW, {}),
    ("show global status like 'wsrep%'", K.SHOW, {}),
    ("SHOW CREATE TABLE t", K.SHOW, {}),
    ("USE db", K.USE, {"name": "db"}),
    ("USE `my db`", K.USE, {"name": "my db"}),
    ("CALL p()", K.CALL, {"name": "p"}),
    ("CALL db.p(1, 'x')", K.CALL, {"name": "db.p"}),
    ("CALL p", K.CALL, {"name": "p"}),
    ("EXPLAIN SELECT * FROM t", K.EXPLAIN, {}),
    ("EXPLAIN UPDATE t SET a=1", K.EXPLAIN, {}),
    ("DESCRIBE t", K.EXPLAIN, {}),
    ("DESC t", K.EXPLAIN, {}),
    ("ANALYZE FORMAT=JSON SELECT * FROM t", K.READ, {}),
    # --- locking
    ("LOCK TABLES t READ", K.LOCK, {"tables": (T(None, "t"),), "implicit_commit": True}),
    (
        "LOCK TABLE t1 AS a READ LOCAL, db.t2 WRITE, t3 LOW_PRIORITY WRITE",
        K.LOCK,
        {"tables": (T(None, "t1"), T("db", "t2"), T(None, "t3")), "implicit_commit": True},
    ),
    ("UNLOCK TABLES", K.LOCK, {"implicit_commit": False}),
    ("FLUSH TABLES WITH READ LOCK", K.LOCK, {"implicit_commit": True, "tables": ()}),
    (
        "FLUSH TABLES t1, t2 WITH READ LOCK",
        K.LOCK,
        {"implicit_commit": True, "tables": (T(None, "t1"), T(None, "t2"))},
    ),
    ("FLUSH TABLES t FOR EXPORT", K.LOCK, {"implicit_commit": True, "tables": (T(None, "t"),)}),
    # --- SQL prepared statements
    (
        "PREPARE s FROM 'SELECT * FROM t WHERE id = ?'",
        K.PREPARE,
        {"name": "s", "inner": "SELECT * FROM t WHERE id = ?"},
    ),
    (
        "PREPARE s FROM 'UPDATE t SET a=\\'x\\' WHERE b=''y'''",
        K.PREPARE,
        {"name": "s", "inner": "UPDATE t SET a='x' WHERE b='y'"},
    ),
    ("PREPARE s FROM @sql", K.PREPARE, {"name": "s", "inner": None}),
    ("EXECUTE s USING @a, @b", K.EXECUTE, {"name": "s"}),
    ("EXECUTE IMMEDIATE 'DELETE FROM t'", K.EXECUTE, {"inner": "DELETE FROM t"}),
    ("DEALLOCATE PREPARE s", K.DEALLOCATE, {"name": "s"}),
    ("DROP PREPARE s", K.DEALLOCATE, {"name": "s"}),
    # --- other
    ("ANALYZE TABLE t", K.OTHER, {"implicit_commit": True, "tables": (T(None, "t"),)}),
    (
        "OPTIMIZE NO_WRITE_TO_BINLOG TABLE t1, t2",
        K.OTHER,
        {"implicit_commit": True, "tables": (T(None, "t1"), T(None, "t2"))},
    ),
    ("REPAIR TABLE t", K.OTHER, {"implicit_commit": True}),
    ("CHECK TABLE t", K.OTHER, {"implicit_commit": True}),
    ("FLUSH PRIVILEGES", K.OTHER, {"implicit_commit": True}),
    ("FLUSH LOGS", K.OTHER, {"implicit_commit": True}),
    ("CACHE INDEX t IN hot", K.OTHER, {"implicit_commit": True}),
    ("LOAD INDEX INTO CACHE t", K.OTHER, {"implicit_commit": True}),
    ("RESET QUERY CACHE", K.OTHER, {"implicit_commit": True}),
    ("START SLAVE", K.OTHER, {"implicit_commit": True}),
    ("STOP SLAVE", K.OTHER, {"implicit_commit": True}),
    ("CHANGE MASTER TO MASTER_HOST='127.0.0.1'", K.OTHER, {"implicit_commit": True}),
    ("HANDLER t OPEN", K.OTHER, {"implicit_commit": False}),
    ("XA START 'x'", K.OTHER, {"implicit_commit": False}),
    ("XA BEGIN 'x'; SELECT 1", K.OTHER, {"implicit_commit": False, "multi": True}),
    ("KILL 12", K.OTHER, {"implicit_commit": False}),
    ("KILL QUERY 12", K.OTHER, {}),
    ("CHECKSUM TABLE t", K.OTHER, {}),
    ("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", K.OTHER, {"multi": False}),
    ("IF 1 THEN SELECT 1; END IF", K.OTHER, {"multi": False}),
    ("lbl: LOOP LEAVE lbl; END LOOP", K.OTHER, {"multi": False}),
    ("HELP 'x'", K.OTHER, {}),
    ("GIBBERISH here", K.OTHER, {}),
    ("'just a string'", K.OTHER, {}),
    ("@x", K.OTHER, {}),
    # --- empty
    ("", K.EMPTY, {}),
    ("   \n\t ", K.EMPTY, {}),
    ("/* only a comment */", K.EMPTY, {}),
    ("-- only a comment", K.EMPTY, {}),
    ("# only a comment\n", K.EMPTY, {}),
    (";", K.EMPTY, {}),
    (" ; ;; ", K.EMPTY, {"multi": False}),
    ("/*!99999 SELECT 1 */", K.EMPTY, {}),
    ("/*!50700 SELECT 1 */", K.EMPTY, {}),
    ("/*M!999999 SELECT 1 */", K.EMPTY, {}),
    ("/* unterminated SELECT 1", K.EMPTY, {}),
    # --- multi-statement text
    ("SELECT 1;", K.READ, {"multi": False}),
    ("SELECT 1; ", K.READ, {"multi": False}),
    ("SELECT 1; -- trailing comment", K.READ, {"multi": False}),
    ("SELECT 1; SELECT 2", K.READ, {"multi": True}),
    ("BEGIN; UPDATE t SET a=1; COMMIT", K.TXN_BEGIN, {"multi": True}),
    ("SELECT ';'", K.READ, {"multi": False}),
    ('SELECT ";" FROM `a;b`', K.READ, {"multi": False}),
    ("SELECT 1 /* ; */", K.READ, {"multi": False}),
    ("SELECT 'a\\';' ; SELECT 2", K.READ, {"multi": True}),
    ("SELECT 1 -- ;\n", K.READ, {"multi": False}),
    ("SELECT 1 --;\n; SELECT 2", K.READ, {"multi": True}),
    ("CREATE PROCEDURE p() BEGIN SELECT 1; END; CALL p()", K.DDL, {"multi": True}),
    # --- comments and executable comments before the keyword
    ("/* hint */ SELECT 1", K.READ, {}),
    ("-- hint\nUPDATE t SET a=1", K.DML, {"tables": (T(None, "t"),)}),
    ("#hint\nDELETE FROM t", K.DML, {}),
    ("/*!99999 DROP TABLE t */ SELECT 1", K.READ, {}),
    ("/*!50700 DROP TABLE t */ SELECT 1", K.READ, {}),
    ("/*M!50700 DROP TABLE t */", K.DDL, {}),
    ("/*!*/ /*!40000 */ INSERT INTO t VALUES (1)", K.DML, {}),
    ("--\tx\nCOMMIT", K.TXN_COMMIT, {}),
    ("--x\nCOMMIT", K.OTHER, {}),  # "--x" is not a comment: minus minus x
    ("/**/BEGIN", K.TXN_BEGIN, {}),
]

# Every case again with a trailing `;` (as some clients send): the same answer.
CASES += [
    (sql.rstrip() + ";", kind, fields)
    for sql, kind, fields in list(CASES)
    if sql.strip()
    and not sql.rstrip().endswith(";")
    and "--" not in sql
    and "#" not in sql
    and "/* unterminated" not in sql
]
