"""The lexer and statement splitter on hand-picked text."""

from __future__ import annotations

import pytest

from proxy.sql_text import (
    QualifiedName,
    SqlMode,
    Tok,
    TokenCursor,
    _split_tokens,
    split_statements,
    tokens,
    unquote_ident,
    unquote_string,
)


def _texts(sql: str) -> list[str]:
    return [t.text for t in tokens(sql)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a,b", ["SELECT", "a", ",", "b"]),
        ("a /* x */ b -- y\n c # z\n d", ["a", "b", "c", "d"]),
        ("a --x", ["a", "-", "-", "x"]),  # "--" needs a space or control character after
        ("a --", ["a"]),  # ... or the end of the text
        ("'it''s' \"q\"\"q\" 'a\\'b'", ["'it''s'", '"q""q"', "'a\\'b'"]),
        ("`a``b`.`c`", ["`a``b`", ".", "`c`"]),
        ("@x @@global.y @'q' @`b`", ["@x", "@@global.y", "@'q'", "@`b`"]),
        ("/*!40101 SET x */ y", ["SET", "x", "y"]),
        ("/*!99999 SET x */ y", ["y"]),
        ("/*M!100100 SET x */", ["SET", "x"]),
        ("/*!50700 SET x */", []),  # MySQL 5.7+ only: MariaDB skips it
        ("/*M!50700 SET x */", ["SET", "x"]),
        ("a */ b", ["a", "*", "/", "b"]),  # a stray closer is just punctuation
        ("SELECT */* # */FROM t", ["SELECT", "*", "FROM", "t"]),  # `*` then a comment
        ("'unterminated; SELECT 1", ["'unterminated; SELECT 1"]),
        ("`unterminated; x", ["`unterminated; x"]),
        ("/* unterminated; x", []),
        ("x'41' b'1' N'n' _utf8mb4'u'", ["x", "'41'", "b", "'1'", "N", "'n'", "_utf8mb4", "'u'"]),
        ("tbl_é.ä$1", ["tbl_é", ".", "ä$1"]),
        ("", []),
        ("\x00\xff\ud800", ["\x00", "\xff", "\ud800"]),
    ],
)
def test_tokens(sql: str, expected: list[str]) -> None:
    assert _texts(sql) == expected


def test_token_kinds_and_offsets() -> None:
    sql = "  SELECT `t`, 'x', @v /* c */ ;"
    toks = list(tokens(sql))
    assert [t.kind for t in toks] == [
        Tok.WORD, Tok.QIDENT, Tok.PUNCT, Tok.STRING, Tok.PUNCT, Tok.VAR, Tok.PUNCT,
    ]  # fmt: skip
    assert all(sql[t.start : t.end] == t.text for t in toks)
    assert toks[0].upper == "SELECT" and toks[1].upper == ""


def test_cursor_reads_qualified_names_and_gives_up_within_its_limit() -> None:
    cur = TokenCursor("`my db` . `t` , u x")
    assert cur.name_list() == (QualifiedName("my db", "t"), QualifiedName(None, "u"))
    assert cur.word() == "X"
    far = TokenCursor("a " * 100 + "ON t")
    assert far.skip_to("ON", limit=10) == ""
    assert TokenCursor("f(ON) ON t").skip_to("ON") == "ON"  # not inside parentheses


@pytest.mark.parametrize(
    ("sql", "parts"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1;", ["SELECT 1"]),
        ("a; b ;c", ["a", " b ", "c"]),
        (" ;; /* */ ; ", []),
        ("a;/*!99999 b */;c", ["a", "c"]),
        ("a;/*!40101 b */;c", ["a", "/*!40101 b */", "c"]),
        (
            "CREATE PROCEDURE p() BEGIN SELECT 1; END; CALL p()",
            ["CREATE PROCEDURE p() BEGIN SELECT 1; END", " CALL p()"],
        ),
        (
            "CREATE PROCEDURE p() COMMENT 'c' BEGIN SELECT 1; END; x",
            ["CREATE PROCEDURE p() COMMENT 'c' BEGIN SELECT 1; END", " x"],
        ),
        (
            "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN "
            "SET @a = CASE WHEN 1 THEN 2 END; SET @b = 1; END; y",
            [
                "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN "
                "SET @a = CASE WHEN 1 THEN 2 END; SET @b = 1; END",
                " y",
            ],
        ),
        ("BEGIN; SELECT 1; COMMIT", ["BEGIN", " SELECT 1", " COMMIT"]),
        ("BEGIN WORK; x", ["BEGIN WORK", " x"]),
        ("XA BEGIN 'x'; y", ["XA BEGIN 'x'", " y"]),
        ("SELECT begin, end FROM t; y", ["SELECT begin, end FROM t", " y"]),
        ("SELECT a FROM t ORDER BY begin; y", ["SELECT a FROM t ORDER BY begin", " y"]),
        ("IF 1 THEN SELECT 1; END IF; y", ["IF 1 THEN SELECT 1; END IF; y"]),
    ],
)
def test_split_statements(sql: str, parts: list[str]) -> None:
    assert split_statements(sql) == parts


NBE = SqlMode.NO_BACKSLASH_ESCAPES
ANSI = SqlMode.ANSI_QUOTES


@pytest.mark.parametrize(
    ("sql", "mode", "expected"),
    [
        ("'a\\'b'", SqlMode.DEFAULT, ["'a\\'b'"]),
        ("'a\\'b'", NBE, ["'a\\'", "b", "'"]),  # the backslash does not escape
        ('"x" y', SqlMode.DEFAULT, ['"x"', "y"]),
        ('"x" y', ANSI, ['"x"', "y"]),
        ('"a\\"b"', ANSI, ['"a\\"', "b", '"']),  # a name: no backslash escapes either
        ('"a""b"', ANSI | NBE, ['"a""b"']),
    ],
)
def test_tokens_under_sql_mode(sql: str, mode: SqlMode, expected: list[str]) -> None:
    assert [t.text for t in tokens(sql, 0, mode)] == expected


def test_ansi_quotes_make_double_quotes_a_name() -> None:
    (tok,) = tokens('"my ""t"""', 0, ANSI)
    assert tok.kind is Tok.QIDENT and unquote_ident(tok) == 'my "t"'
    (tok,) = tokens('"my ""t"""')
    assert tok.kind is Tok.STRING and unquote_string(tok) == 'my "t"'


def test_no_backslash_escapes_keeps_backslashes() -> None:
    (tok,) = tokens("'c:\\new'", 0, NBE)
    assert unquote_string(tok, NBE) == "c:\\new"


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("", SqlMode.DEFAULT),
        ("STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", SqlMode.DEFAULT),
        ("ANSI_QUOTES", ANSI),
        ("ansi", ANSI),
        ("ORACLE", ANSI),
        ("NO_BACKSLASH_ESCAPES,ANSI_QUOTES", ANSI | NBE),
        (" no_backslash_escapes ", NBE),
    ],
)
def test_sql_mode_from_its_text(value: str, mode: SqlMode) -> None:
    assert SqlMode.from_sql_mode(value) == mode


@pytest.mark.parametrize(
    ("sql", "mode", "count"),
    [
        ("SELECT 'a\\'; SELECT 2; -- '", SqlMode.DEFAULT, 1),
        ("SELECT 'a\\'; SELECT 2; -- '", NBE, 2),
        ('SELECT "a\\"; SELECT 2; -- "', SqlMode.DEFAULT, 1),
        ('SELECT "a\\"; SELECT 2; -- "', ANSI, 2),
        ('SELECT "a;b" FROM t; SELECT 2', ANSI, 2),
    ],
)
def test_split_statements_under_sql_mode(sql: str, mode: SqlMode, count: int) -> None:
    assert len(split_statements(sql, mode)) == count
    assert _split_tokens(sql, mode) == split_statements(sql, mode)
