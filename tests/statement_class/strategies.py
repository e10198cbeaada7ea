"""Hypothesis strategies: SQL-ish noise, comments, and statements from a small grammar."""

from __future__ import annotations

from hypothesis import strategies as st

# Characters that matter to the lexer, so random text often hits its edge cases.
SQL_ALPHABET = "abcSELECTFORUPDATEBEGINEND ;'\"`\\/*!#-\n\t()@.,=M0159é"

WORDS = [
    "SELECT",
    "FOR",
    "UPDATE",
    "BEGIN",
    "END",
    "CASE",
    "SET",
    "STATEMENT",
    "WITH",
    "AS",
    "INSERT",
    "INTO",
    "DELETE",
    "FROM",
    "CREATE",
    "TABLE",
    "DROP",
    "IF",
    "NOT",
    "ATOMIC",
    "LOCK",
    "IN",
    "SHARE",
    "MODE",
    "ANALYZE",
    "TRANSACTION",
    "ROLLBACK",
    "TO",
    "x",
    "1",
]
PIECES = [
    *WORDS,
    ";",
    "'",
    '"',
    "`",
    "/*",
    "*/",
    "/*!",
    "/*M!50700",
    "--",
    "-- ",
    "#",
    "\n",
    "(",
    ")",
    "\\",
    ",",
    "=",
    "@@",
    "@",
    ".",
    " ",
]

sqlish_text = st.one_of(
    st.text(),
    st.text(alphabet=SQL_ALPHABET),
    st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join),
    st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
)

_comment_body = st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=20).filter(
    lambda s: "*/" not in s
)
separator = st.one_of(
    st.text(alphabet=" \t\r\n\f\v", min_size=1, max_size=4),
    _comment_body.map(lambda s: f"/* {s} */"),
    _comment_body.map(lambda s: f"-- {s}\n"),
    _comment_body.map(lambda s: f"#{s}\n"),
    _comment_body.map(lambda s: f"/*!99999 {s} */"),
)
separators = st.lists(separator, min_size=1, max_size=3).map("".join)

# --- a small grammar of DML/DDL/transaction statements, with their expected tables

_plain_names = st.sampled_from(["t", "sbtest1", "orders", "tbl_é", "x1", "a_b"])
_quoted_only = st.sampled_from(["select", "my table", "odd`name", "for update", "a;b", "1x"])


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@st.composite
def table_refs(draw: st.DrawFn) -> tuple[str, tuple[str | None, str]]:
    """(SQL text, (schema, table)) of a possibly qualified, possibly quoted table name."""
    if draw(st.booleans()):
        name = draw(_plain_names)
        text = _quote(name) if draw(st.booleans()) else name
    else:
        name = draw(_quoted_only)
        text = _quote(name)
    if draw(st.booleans()):
        schema = draw(st.sampled_from(["db", "app_1", "my db"]))
        text = f"{_quote(schema) if ' ' in schema or draw(st.booleans()) else schema}.{text}"
        return text, (schema, name)
    return text, (None, name)


_string_bodies = st.text(alphabet=st.sampled_from(list("ab ;#-/*!'\"`\\\nxé")), max_size=12).map(
    lambda s: "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"
)
literals = st.one_of(st.integers(-5, 10**6).map(str), _string_bodies)


@st.composite
def where_clauses(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return ""
    clause = f" WHERE a = {draw(literals)}"
    if draw(st.booleans()):
        sub, _ = draw(table_refs())
        clause += f" AND b IN (SELECT c FROM {sub} WHERE d = {draw(literals)})"
    return clause


@st.composite
def grammar_statements(draw: st.DrawFn) -> tuple[str, str, tuple[tuple[str | None, str], ...]]:
    """(statement, expected kind name, expected tables)."""
    t1, n1 = draw(table_refs())
    t2, n2 = draw(table_refs())
    lit = draw(literals)
    where = draw(where_clauses())
    choice = draw(st.integers(0, 15))
    if choice == 0:
        lock = draw(st.sampled_from(["", " FOR UPDATE", " LOCK IN SHARE MODE"]))
        return f"SELECT a, {lit} FROM {t1}{where}{lock}", "LOCKING_READ" if lock else "READ", ()
    if choice == 1:
        return f"INSERT INTO {t1} (a, b) VALUES ({lit}, {lit})", "DML", (n1,)
    if choice == 2:
        return f"INSERT INTO {t1} (a) SELECT a FROM {t2}{where}", "DML", (n1,)
    if choice == 3:
        return f"REPLACE INTO {t1} VALUES ({lit})", "DML", (n1,)
    if choice == 4:
        return f"UPDATE {t1} SET a = {lit}{where}", "DML", (n1,)
    if choice == 5:
        return f"UPDATE {t1} AS x JOIN {t2} AS y ON x.a = y.a SET x.b = {lit}", "DML", (n1,)
    if choice == 6:
        return f"DELETE FROM {t1}{where}", "DML", (n1,)
    if choice == 7:
        return f"DELETE x FROM {t1} AS x JOIN {t2} AS y ON x.a = y.a{where}", "DML", (n1,)
    if choice == 8:
        return f"CREATE TABLE {t1} (a INT, b VARCHAR(10) DEFAULT {lit})", "DDL", (n1,)
    if choice == 9:
        tables = (n1,) if n1 == n2 else (n1, n2)
        return f"DROP TABLE IF EXISTS {t1}{', ' + t2 if n1 != n2 else ''}", "DDL", tables
    if choice == 10:
        return f"ALTER TABLE {t1} ADD COLUMN c INT DEFAULT {lit}", "DDL", (n1,)
    if choice == 11:
        return f"TRUNCATE TABLE {t1}", "DDL", (n1,)
    if choice == 12:
        return f"CREATE INDEX i ON {t1} (a)", "DDL", (n1,)
    if choice == 13:
        return draw(st.sampled_from(["BEGIN", "START TRANSACTION"])), "TXN_BEGIN", ()
    if choice == 14:
        return draw(st.sampled_from(["COMMIT", "COMMIT WORK"])), "TXN_COMMIT", ()
    return f"SELECT * FROM {t1} AS x WHERE x.a = {lit}", "READ", ()
