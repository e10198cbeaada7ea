"""The fast keyword path and the sqlglot path agree wherever sqlglot gives an answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from proxy.statement_class import StatementInfo, classify_uncached
from proxy.statement_sqlglot import classify_with_sqlglot

from .cases import CASES
from .strategies import grammar_statements, separators

# Where sqlglot is wrong about MariaDB (the real server decides; see test_against_mariadb).
SQLGLOT_WRONG = {
    "SET PASSWORD = 'x'",  # sqlglot: a SET of a variable named PASSWORD
    "START SLAVE",  # sqlglot: START TRANSACTION
}


@pytest.fixture(autouse=True)
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot warns on every statement it parses as an opaque Command."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _essence(info: StatementInfo) -> tuple[object, ...]:
    return info.kind, info.tables, info.temporary


def test_fast_path_agrees_with_sqlglot_on_the_case_table() -> None:
    compared, disagreements = 0, []
    for sql, _, _ in CASES:
        reference = classify_with_sqlglot(sql)
        if reference is None:
            continue
        compared += 1
        if _essence(classify_uncached(sql)) != _essence(reference):
            disagreements.append(sql.rstrip(";"))
    assert compared >= 250
    assert set(disagreements) == SQLGLOT_WRONG


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grammar_statements(), separators)
def test_fast_path_agrees_with_sqlglot_on_generated_statements(
    stmt: tuple[str, str, tuple[tuple[str | None, str], ...]], before: str
) -> None:
    sql = before + stmt[0]
    reference = classify_with_sqlglot(sql)
    if reference is None:  # sqlglot parses MySQL's REPLACE as an opaque Command
        assert stmt[0].startswith("REPLACE"), sql
        return
    assert _essence(classify_uncached(sql)) == _essence(reference)
