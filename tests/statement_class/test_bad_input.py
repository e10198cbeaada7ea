"""Hostile and oversized text: a clear answer, bounded memory, never an exception."""

from __future__ import annotations

from proxy import statement_class
from proxy.statement_class import StatementKind, TableName, classify, classify_each


def test_oversized_statement_is_classified_but_not_cached() -> None:
    rows = ", ".join(f"({i}, 'v{i};x')" for i in range(30_000))
    big = f"INSERT INTO db.t VALUES {rows}"
    assert len(big) > statement_class.CACHE_MAX_TEXT
    before = statement_class.cache_info().currsize
    info = classify(big)
    assert (info.kind, info.tables, info.multi) == (
        StatementKind.DML,
        (TableName("db", "t"),),
        False,
    )
    assert statement_class.cache_info().currsize == before


def test_a_statement_hidden_after_a_huge_one_is_found() -> None:
    big = "INSERT INTO t VALUES " + ", ".join(f"('{i}')" for i in range(20_000))
    infos = classify_each(big + "; DROP TABLE accounts")
    assert [i.kind for i in infos] == [StatementKind.DML, StatementKind.DDL]
    assert infos[1].tables == (TableName(None, "accounts"),)
    assert classify(big + "; DROP TABLE accounts").multi


def test_the_cache_is_bounded() -> None:
    statement_class.cache_clear()
    for i in range(statement_class.CACHE_SIZE + 100):
        classify(f"SELECT {i}")
    assert statement_class.cache_info().currsize == statement_class.CACHE_SIZE


def test_garbage_is_other_and_nesting_does_not_recurse() -> None:
    for junk in ("\x00\x01\x02", "\ud800 SELECT", "%%%", "))))", "@@@@", "'''", "*/ SELECT"):
        assert classify(junk).kind is StatementKind.OTHER, junk
    deep = "SET STATEMENT a=1 FOR " * 10_000 + "ANALYZE " + "DELETE FROM t"
    assert classify(deep).kind is StatementKind.DML
    parens = "(" * 50_000 + "SELECT 1 FOR UPDATE" + ")" * 50_000
    assert classify(parens).kind is StatementKind.LOCKING_READ


def test_multi_table_dml_sqlglot_cannot_parse_keeps_its_kind() -> None:
    info = classify("UPDATE t1 JOIN t2 ON ((( SET a = 1")
    assert info.kind is StatementKind.DML
    assert info.tables == ()  # unknown, not wrong
