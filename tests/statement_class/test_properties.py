"""Properties of the lexer and the classifier over generated text."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxy.sql_text import (
    SqlMode,
    Tok,
    _split_tokens,
    split_statements,
    tokens,
    unquote_ident,
    unquote_string,
)
from proxy.statement_class import StatementInfo, StatementKind, classify, classify_uncached

from .cases import CASES
from .strategies import grammar_statements, separator, separators, sqlish_text

QUICK = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Single statements that stay themselves when text is put around or after them.
STANDALONE = [
    sql
    for sql, kind, fields in CASES
    if kind is not StatementKind.EMPTY
    and not fields.get("multi")
    and not re.search(r"--|#|/\* unterminated", sql)
    and not sql.rstrip().endswith(";")
    and not re.match(r"\s*(IF|lbl:|BEGIN NOT ATOMIC)", sql)  # compound: swallows the rest
    and ";" not in split_statements(sql)[0][-1:]
]


@QUICK
@given(sqlish_text)
@example("SET STATEMENT a=1 FOR " * 3000 + "SELECT 1")
@example("(" * 100_000 + "SELECT 1")
@example("UPDATE " + "t JOIN " * 2000 + "u SET a = 1")
@example("WITH " + "c AS (SELECT 1), " * 500 + "UPDATE t JOIN u SET a=1")
@example("'" + "\\" * 10_001)
def test_classifier_never_raises(text: str) -> None:
    info = classify(text)
    assert isinstance(info, StatementInfo)
    assert info == classify_uncached(text)
    for part in split_statements(text):
        assert isinstance(classify(part), StatementInfo)


@QUICK
@given(sqlish_text)
def test_tokens_are_the_texts_slices_in_order(text: str) -> None:
    end = 0
    for tok in tokens(text):
        assert tok.start >= end
        assert text[tok.start : tok.end] == tok.text
        end = tok.end


@QUICK
@given(st.sampled_from(STANDALONE), separators, separators)
def test_whitespace_and_comments_around_a_statement_change_nothing(
    sql: str, before: str, after: str
) -> None:
    assert classify_uncached(before + sql + after) == classify_uncached(sql)


@QUICK
@given(st.sampled_from([s for s in STANDALONE if not re.search(r"['\"`]|/\*", s)]), st.data())
def test_whitespace_and_comments_between_tokens_change_nothing(
    sql: str, data: st.DataObject
) -> None:
    spaced = re.sub(" ", lambda _: data.draw(separator), sql)
    assert classify_uncached(spaced) == classify_uncached(sql)


@QUICK
@given(st.sampled_from(STANDALONE), st.booleans())
def test_case_of_keywords_does_not_matter(sql: str, upper: bool) -> None:
    if re.search(r"['\"`]|/\*", sql):  # literals, quoted names, /*M! keep their case
        return
    changed = sql.upper() if upper else sql.lower()
    expected = classify_uncached(sql)
    got = classify_uncached(changed)
    assert (got.kind, got.implicit_commit, got.multi, len(got.tables)) == (
        expected.kind,
        expected.implicit_commit,
        expected.multi,
        len(expected.tables),
    )


@QUICK
@given(
    st.lists(st.sampled_from(STANDALONE), min_size=1, max_size=6),
    st.sampled_from([";", "; ", ";\n", " ;\t"]),
)
def test_split_finds_each_statement_of_a_multi_statement_text(
    statements: list[str], glue: str
) -> None:
    text = glue.join(statements)
    parts = split_statements(text)
    assert [classify_uncached(p) for p in parts] == [classify_uncached(s) for s in statements]
    assert classify_uncached(text).multi == (len(statements) > 1)


@QUICK
@given(st.one_of(sqlish_text, st.sampled_from([c[0] for c in CASES])))
def test_cached_equals_uncached(text: str) -> None:
    first = classify(text)  # may miss
    assert classify(text) == first == classify_uncached(text)  # hits


@QUICK
@given(grammar_statements(), separators)
def test_grammar_statements_are_classified_with_their_tables(
    stmt: tuple[str, str, tuple[tuple[str | None, str], ...]], before: str
) -> None:
    sql, kind, tables = stmt
    info = classify_uncached(before + sql)
    assert info.kind is StatementKind[kind]
    assert info.tables == tables
    assert not info.multi


@QUICK
@given(st.text())
def test_backtick_identifiers_round_trip(name: str) -> None:
    (tok,) = tokens("`" + name.replace("`", "``") + "`")
    assert tok.kind is Tok.QIDENT
    assert unquote_ident(tok) == name


@QUICK
@given(st.text(), st.sampled_from("'\""))
def test_string_literals_round_trip(value: str, quote: str) -> None:
    body = value.replace("\\", "\\\\").replace(quote, quote * 2)
    (tok,) = tokens(quote + body + quote)
    assert tok.kind is Tok.STRING
    assert unquote_string(tok) == value


@QUICK
@given(sqlish_text)
@example("SELECT 1 */* ; */; SELECT 2")
@example("SELECT @x.end; SELECT 2")
def test_fast_split_equals_the_token_split(text: str) -> None:
    assert split_statements(text) == _split_tokens(text)


@QUICK
@given(sqlish_text.map(lambda s: s.replace('"', "'").replace("\\", "/")), st.integers(1, 3))
def test_sql_mode_matters_only_for_double_quotes_and_backslashes(text: str, m: int) -> None:
    mode = SqlMode(m)
    assert [t.text for t in tokens(text, 0, mode)] == [t.text for t in tokens(text)]
    assert split_statements(text, mode) == split_statements(text)
    assert classify_uncached(text, mode) == classify_uncached(text)


@QUICK
@given(sqlish_text, st.integers(0, 3))
def test_fast_split_equals_the_token_split_in_every_mode(text: str, m: int) -> None:
    assert split_statements(text, SqlMode(m)) == _split_tokens(text, SqlMode(m))
