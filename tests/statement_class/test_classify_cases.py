"""The classifier against the table in cases.py, and the StatementInfo conveniences."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.statement_class import (
    SqlMode,
    StatementInfo,
    StatementKind,
    TableName,
    classify,
    classify_each,
    classify_uncached,
)

from .cases import CASES, IMPLICIT_BY_KIND


@pytest.mark.parametrize(("sql", "kind", "fields"), CASES, ids=[c[0][:60] for c in CASES])
def test_case(sql: str, kind: StatementKind, fields: dict[str, Any]) -> None:
    info = classify_uncached(sql)
    assert info.kind is kind, sql
    expected = {"implicit_commit": IMPLICIT_BY_KIND.get(kind, False), **fields}
    actual = {name: getattr(info, name) for name in expected}
    assert actual == expected, sql


def test_the_table_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 200
    assert {kind for _, kind, _ in CASES} == set(StatementKind)


def test_info_is_frozen_and_hashable() -> None:
    info = classify("UPDATE db.t SET a=1")
    assert hash(info) == hash(classify_uncached("UPDATE db.t SET a=1"))
    assert {info: 1}[classify_uncached("UPDATE db.t SET a=1")] == 1
    with pytest.raises(AttributeError):
        info.kind = StatementKind.READ  # type: ignore[misc]


@pytest.mark.parametrize(
    ("sql", "for_update", "is_write"),
    [
        ("SELECT 1", False, False),
        ("SELECT 1 FOR UPDATE", True, False),
        ("INSERT INTO t VALUES (1)", False, True),
        ("CREATE TABLE t (a INT)", False, True),
        ("GRANT SELECT ON *.* TO u", False, True),
        ("SET autocommit=0", False, False),
        ("COMMIT", False, False),
    ],
)
def test_conveniences(sql: str, for_update: bool, is_write: bool) -> None:
    info = classify(sql)
    assert (info.for_update, info.is_write) == (for_update, is_write)


def test_table_names_are_tuples_of_schema_and_name() -> None:
    (table,) = classify("DELETE FROM db.t WHERE id = 1").tables
    assert table == ("db", "t")
    assert (table.schema, table.name) == ("db", "t")
    assert isinstance(table, TableName)


def test_classify_each_follows_the_statements_of_a_multi_statement_text() -> None:
    infos = classify_each(
        "BEGIN; UPDATE t SET a=';' WHERE id=1; /* ; */ SELECT 1 FOR UPDATE;"
        " SET autocommit=1; COMMIT;"
    )
    assert [i.kind for i in infos] == [
        StatementKind.TXN_BEGIN,
        StatementKind.DML,
        StatementKind.LOCKING_READ,
        StatementKind.SET,
        StatementKind.TXN_COMMIT,
    ]
    assert not any(i.multi for i in infos)
    assert infos[3].session_vars == ("autocommit",)
    assert classify_each("") == ()
    assert classify_each("SELECT 1") == (classify("SELECT 1"),)


def test_multi_takes_the_first_statements_class() -> None:
    info = classify("DROP TABLE t; SELECT 1")
    assert info == StatementInfo(
        StatementKind.DDL, implicit_commit=True, tables=(TableName(None, "t"),), multi=True
    )


@pytest.mark.parametrize(
    ("sql", "bit"),
    [
        ("SELECT 1", 1),
        ("SELECT 1 FOR UPDATE", 1),
        ("BEGIN", 1),
        ("START TRANSACTION READ ONLY", 1),
        ("UPDATE t SET a = 1", 2),
        ("DELETE FROM t", 2),
        ("WITH c AS (SELECT 1) DELETE FROM t", 2),
        ("INSERT INTO t VALUES (1)", 4),
        ("REPLACE INTO t VALUES (1)", 4),
        ("SET STATEMENT max_statement_time=1 FOR REPLACE INTO t VALUES (1)", 4),
        ("SHOW TABLES", 8),
        ("COMMIT", 0),
        ("CREATE TABLE t (a INT)", 0),
        ("SET autocommit = 0", 0),
    ],
)
def test_sync_wait_bit_follows_galera(sql: str, bit: int) -> None:
    assert classify(sql).sync_wait_bit == bit


def test_sql_mode_changes_where_strings_and_names_end() -> None:
    hidden = "SELECT 'a\\'; DROP TABLE t; -- '"
    assert not classify(hidden).multi
    infos = classify_each(hidden, SqlMode.NO_BACKSLASH_ESCAPES)
    assert [(i.kind, i.tables) for i in infos] == [
        (StatementKind.READ, ()),
        (StatementKind.DDL, (TableName(None, "t"),)),
    ]
    assert classify(hidden, SqlMode.NO_BACKSLASH_ESCAPES).multi  # cached apart from DEFAULT
    assert not classify(hidden).multi


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ('INSERT INTO "db"."my t" VALUES (1)', (TableName("db", "my t"),)),
        ('UPDATE "t" SET "a" = 1', (TableName(None, "t"),)),
        ('UPDATE "a" JOIN "b" ON "a".id = "b".id SET "a".x = "y"', (TableName(None, "a"),)),
        ('DELETE "x" FROM "t1" AS "x" JOIN t2', (TableName(None, "t1"),)),
        ('DROP TABLE "a""b"', (TableName(None, 'a"b'),)),
    ],
)
def test_ansi_quotes_name_tables(sql: str, tables: tuple[TableName, ...]) -> None:
    assert classify(sql, SqlMode.ANSI_QUOTES).tables == tables


def test_prepared_text_follows_the_mode() -> None:
    sql = "PREPARE s FROM 'SELECT ''c:\\new'''"
    assert classify(sql).inner == "SELECT 'c:\new'"  # \n: a newline
    assert classify(sql, SqlMode.NO_BACKSLASH_ESCAPES).inner == "SELECT 'c:\\new'"
