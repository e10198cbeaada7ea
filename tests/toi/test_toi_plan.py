"""Which objects a DDL/account statement touches, and the TOI keys that follow (pure)."""

from __future__ import annotations

import pytest

from certification.keys import KeyKind, row_key, table_key
from proxy.statement_class import classify
from proxy.toi_plan import IsolationPlan, NotIsolatable, plan_isolation


def plan(sql: str, schema: str | None = "app") -> IsolationPlan:
    return plan_isolation(sql, classify(sql), schema)


@pytest.mark.parametrize(
    ("sql", "verb", "obj", "tables", "schemas", "reshapes"),
    [
        ("CREATE TABLE t (id INT PRIMARY KEY)", "CREATE", "TABLE", [("app", "t")], [], True),
        ("create table if not exists s.t (id int)", "CREATE", "TABLE", [("s", "t")], [], True),
        ("CREATE OR REPLACE TABLE `a b`.`c` (i INT)", "CREATE", "TABLE", [("a b", "c")], [], True),
        ("ALTER TABLE t ADD COLUMN c INT", "ALTER", "TABLE", [("app", "t")], [], True),
        ("ALTER TABLE t RENAME TO u", "ALTER", "TABLE", [("app", "t"), ("app", "u")], [], True),
        ("DROP TABLE IF EXISTS t, s.u", "DROP", "TABLE", [("app", "t"), ("s", "u")], [], True),
        ("RENAME TABLE t TO s.u", "RENAME", "TABLE", [("app", "t"), ("s", "u")], [], True),
        ("TRUNCATE TABLE t", "TRUNCATE", "TABLE", [("app", "t")], [], True),
        ("TRUNCATE s.t", "TRUNCATE", "TABLE", [("s", "t")], [], True),
        ("CREATE DATABASE shop", "CREATE", "DATABASE", [], [], True),
        ("DROP SCHEMA IF EXISTS shop", "DROP", "DATABASE", [], ["shop"], True),
        ("ALTER DATABASE CHARACTER SET utf8mb4", "ALTER", "DATABASE", [], ["app"], True),
        ("CREATE UNIQUE INDEX i ON t (c)", "CREATE", "INDEX", [("app", "t")], [], True),
        ("DROP INDEX i ON s.t", "DROP", "INDEX", [("s", "t")], [], True),
        ("CREATE VIEW v AS SELECT 1", "CREATE", "VIEW", [("app", "v")], [], False),
        ("DROP VIEW s.v", "DROP", "VIEW", [("s", "v")], [], False),
        ("CREATE USER 'u'@'%' IDENTIFIED BY 'p'", "CREATE", "USER", [], [], False),
        ("DROP USER u", "DROP", "USER", [], [], False),
        ("RENAME USER a TO b", "RENAME", "USER", [], [], False),
        ("GRANT SELECT ON app.* TO u", "GRANT", "USER", [], [], False),
        ("REVOKE ALL ON *.* FROM u", "REVOKE", "USER", [], [], False),
        ("SET PASSWORD FOR u = PASSWORD('x')", "SET", "USER", [], [], False),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1", "CREATE", "TRIGGER",
         [("app", "t")], [], True),
        ("DROP TRIGGER tr", "DROP", "TRIGGER", [], ["app"], True),
        ("CREATE PROCEDURE p() SELECT 1", "CREATE", "PROCEDURE", [], [], False),
        ("DROP FUNCTION IF EXISTS f", "DROP", "FUNCTION", [], [], False),
        ("SET STATEMENT lock_wait_timeout = 5 FOR ALTER TABLE t ADD c INT", "ALTER", "TABLE",
         [("app", "t")], [], True),
    ],
)  # fmt: skip
def test_objects(
    sql: str,
    verb: str,
    obj: str,
    tables: list[tuple[str, str]],
    schemas: list[str],
    reshapes: bool,
) -> None:
    got = plan(sql)
    assert (got.verb, got.object) == (verb, obj)
    assert list(got.tables) == tables
    assert list(got.schemas) == schemas
    assert got.reshapes is reshapes


def test_names_without_a_current_database_are_left_out() -> None:
    # the statement fails with 1046 on every node; nothing to key
    assert plan("CREATE TABLE t (i INT)", schema=None).tables == ()
    assert plan("DROP DATABASE IF EXISTS x", schema=None).schemas == ("x",)


def test_keys_are_table_keys_and_a_schema_expands_to_its_known_tables() -> None:
    known = [("shop", "b"), ("shop", "a"), ("other", "c")]
    assert plan("DROP DATABASE shop").keys(known) == (
        table_key("shop", "a"),
        table_key("shop", "b"),
    )
    keys = plan("ALTER TABLE t ADD c INT").keys(known)
    assert keys == (table_key("app", "t"),)
    assert all(k.kind is KeyKind.TABLE for k in keys)
    # a TABLE key conflicts with every row key of its table, and only of its table
    assert keys[0].conflicts_with(row_key("app", "t", "PRIMARY", [b"1"]))
    assert not keys[0].conflicts_with(row_key("app", "u", "PRIMARY", [b"1"]))
    assert plan("GRANT SELECT ON *.* TO u").keys(known) == ()
    assert plan("CREATE DATABASE shop").keys(known) == ()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE VIEW v AS SELECT 1", "CREATE DEFINER = X VIEW v AS SELECT 1"),
        ("CREATE OR REPLACE ALGORITHM = MERGE VIEW v AS SELECT 1",
         "CREATE OR REPLACE ALGORITHM = MERGE DEFINER = X VIEW v AS SELECT 1"),
        ("ALTER SQL SECURITY INVOKER VIEW v AS SELECT 2",
         "ALTER DEFINER = X SQL SECURITY INVOKER VIEW v AS SELECT 2"),
        ("CREATE PROCEDURE p() SELECT 1", "CREATE DEFINER = X PROCEDURE p() SELECT 1"),
        ("CREATE AGGREGATE FUNCTION f() RETURNS INT BEGIN RETURN 1; END",
         "CREATE DEFINER = X AGGREGATE FUNCTION f() RETURNS INT BEGIN RETURN 1; END"),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1",
         "CREATE DEFINER = X TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1"),
        # already there, or nothing to define
        ("CREATE DEFINER = 'a'@'b' VIEW v AS SELECT 1", None),
        ("DROP VIEW v", None),
        ("CREATE FUNCTION udf RETURNS INTEGER SONAME 'x.so'", None),
        ("CREATE TABLE t (i INT)", None),
    ],
)  # fmt: skip
def test_definer_goes_where_mariadb_takes_it(sql: str, expected: str | None) -> None:
    got = plan(sql)
    assert got.with_definer(sql.encode(), sql, "X") == (expected or sql).encode()


def test_definer_goes_into_the_exact_bytes() -> None:
    raw = "CREATE VIEW v AS SELECT 'é'".encode("latin1")
    text = raw.decode("utf-8", "replace")
    assert plan(text).with_definer(raw, text, "`u`@`h`") == (
        b"CREATE DEFINER = `u`@`h` VIEW v AS SELECT '\xe9'"
    )
    odd = "CREATE /* é */ VIEW v AS SELECT 1"
    raw = odd.encode("latin1")  # the bytes before the keyword are not the text's
    assert plan(odd).with_definer(raw, raw.decode("utf-8", "replace"), "X") == raw


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1", "CREATE EVENT"),
        ("DROP EVENT e", "DROP EVENT"),
        ("CREATE SEQUENCE s", "SEQUENCE"),
        ("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'x')", "SERVER"),
        ("ALTER INDEX i", "ALTER"),
        ("CREATE", "CREATE"),
        ("DROP DATABASE wsrep", "belongs to each node"),
        ("CREATE DATABASE IF NOT EXISTS wsrep", "belongs to each node"),
        ("ALTER TABLE wsrep.capture ADD c INT", "belongs to each node"),
        ("TRUNCATE wsrep.position", "belongs to each node"),
    ],
)
def test_what_toi_refuses_is_named(sql: str, message: str) -> None:
    info = classify(sql)
    with pytest.raises(NotIsolatable, match=message):
        plan_isolation(sql, info, "app")


def test_only_ddl_and_account_statements_plan() -> None:
    with pytest.raises(ValueError):
        plan_isolation("SELECT 1", classify("SELECT 1"), "app")
    with pytest.raises(ValueError):
        sql = "CREATE TEMPORARY TABLE t (i INT)"
        plan_isolation(sql, classify(sql), "app")
