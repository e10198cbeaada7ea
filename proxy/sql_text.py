"""MariaDB SQL text at the lexical level: tokens, comments, statement boundaries.

Pure functions over `str`, no I/O. The lexer follows MariaDB's rules closely enough to
classify statements: quoted strings ('...' and "..." with backslash and doubled-quote
escapes), backtick identifiers, `#`, `-- ` and `/* */` comments, and executable comments
(`/*! ... */`, `/*M! ... */`, optionally versioned) whose content MariaDB runs as SQL.
The two sql_mode flags that change how text is read (ANSI_QUOTES, NO_BACKSLASH_ESCAPES)
are a `SqlMode` argument. It never raises: unterminated strings and comments extend to
the end of the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, IntFlag
from typing import NamedTuple

# The backend's MYSQL_VERSION_ID, for versioned executable comments (/*!NNNNN ... */).
MARIADB_VERSION_ID = 101100


class Tok(Enum):
    WORD = "word"  # keyword or unquoted identifier or number
    QIDENT = "qident"  # `quoted identifier`
    STRING = "string"  # '...' or "..."
    VAR = "var"  # @user_var or @@system_var (scope prefix included)
    PUNCT = "punct"  # any other single character


@dataclass(slots=True)
class Token:
    """One lexical token. Not frozen: frozen dataclasses cost ~4x more to build, and the
    lexer builds one per token on the hot path; nobody mutates them."""

    kind: Tok
    text: str  # as written (quotes included for QIDENT/STRING)
    start: int  # offset in the text
    end: int
    upper: str  # upper-cased text of a WORD, "" for every other kind


class SqlMode(IntFlag):
    """The parts of a session's @@sql_mode that change where strings and names end."""

    DEFAULT = 0
    ANSI_QUOTES = 1  # "..." quotes a name, not a string
    NO_BACKSLASH_ESCAPES = 2  # a backslash in a string is an ordinary character

    @classmethod
    def from_sql_mode(cls, value: str) -> SqlMode:
        """From the text of @@sql_mode (a comma-separated list, combination modes too)."""
        names = {name.strip().upper() for name in value.split(",")}
        mode = cls.DEFAULT
        if names & _ANSI_QUOTES_MODES:
            mode |= cls.ANSI_QUOTES
        if "NO_BACKSLASH_ESCAPES" in names:
            mode |= cls.NO_BACKSLASH_ESCAPES
        return mode


# Combination modes that include ANSI_QUOTES.
_ANSI_QUOTES_MODES = frozenset(
    {"ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"}
)


def _quoted(quote: str, backslash: bool) -> str:
    """Regex of a `quote`-quoted run (doubled quote inside), unterminated: to the end."""
    if backslash:
        return rf"{quote}(?:[^{quote}\\]+|\\.|{quote}{quote})*(?:{quote}|\\?\Z)"
    return rf"{quote}(?:[^{quote}]+|{quote}{quote})*(?:{quote}|\Z)"


def _quoting(mode: SqlMode) -> tuple[str, str]:
    """(strings, quoted names) regexes under `mode`."""
    backslash = not mode & SqlMode.NO_BACKSLASH_ESCAPES
    single, backtick = _quoted("'", backslash), _quoted("`", False)
    if mode & SqlMode.ANSI_QUOTES:  # names have no backslash escapes
        return single, backtick + "|" + _quoted('"', False)
    return single + "|" + _quoted('"', backslash), backtick


def _lexer(mode: SqlMode) -> re.Pattern[str]:
    strings, names = _quoting(mode)
    # Leading whitespace is folded into each match: one regex step per token.
    return re.compile(
        rf"""\s*(?:
         (?P<xopen>/\*(?P<maria>M?)!(?P<ver>\d{{5,6}})?)
        |(?P<comment>/\*.*?(?:\*/|\Z)|\#[^\n]*|--(?:[\x00-\x20][^\n]*|\Z))
        |(?P<xclose>\*/)
        |(?P<string>{strings})
        |(?P<qident>{names})
        |(?P<var>@@?(?:[\w$.]+|{strings}|{names})?)
        |(?P<word>[\w$]+)
        |(?P<punct>.)
        |\Z)
        """,
        re.VERBOSE | re.DOTALL,
    )


_MODES = [SqlMode(m) for m in range(4)]
_LEXERS = {mode: _lexer(mode) for mode in _MODES}
_KIND = {"string": Tok.STRING, "qident": Tok.QIDENT, "var": Tok.VAR}


def _executes(maria: str, version: str | None) -> bool:
    """Whether MariaDB runs the content of an executable comment."""
    if not version:
        return True
    v = int(version)
    # MariaDB skips MySQL-only versioned comments (5.7+), but not its own /*M!...*/.
    return v <= MARIADB_VERSION_ID and (v < 50700 or v > 99999 or maria == "M")


def _skip_comment(sql: str, pos: int) -> int:
    end = sql.find("*/", pos)
    return len(sql) if end < 0 else end + 2


def tokens(sql: str, pos: int = 0, mode: SqlMode = SqlMode.DEFAULT) -> Iterator[Token]:
    """Lexical tokens of `sql` from `pos`, comments and whitespace dropped.

    Lazy, so a caller that only needs the first keywords never scans the rest.
    """
    in_exec = 0  # depth of open executable comments
    match = _LEXERS[mode].match
    n = len(sql)
    while pos < n:
        m = match(sql, pos)
        assert m is not None  # `punct` matches any character, `\Z` the end
        group = m.lastgroup
        if group is None:  # only whitespace was left
            return
        if group == "comment":
            pos = m.end()
        elif group == "xopen":
            if _executes(m.group("maria"), m.group("ver")):
                in_exec += 1
                pos = m.end()
            else:
                pos = _skip_comment(sql, m.end())
        elif group == "xclose":
            if in_exec:
                in_exec -= 1
                pos = m.end()
            else:  # outside an executable comment `*/` is `*` then `/`, maybe `/* ...`
                pos = m.end() - 1
                yield Token(Tok.PUNCT, "*", pos - 1, pos, "")
        else:
            text = m.group(group)
            pos = m.end()
            if group == "word":
                yield Token(Tok.WORD, text, pos - len(text), pos, text.upper())
            else:
                kind = _KIND.get(group, Tok.PUNCT)
                yield Token(kind, text, pos - len(text), pos, "")


def _body(tok: Token) -> tuple[str, str]:
    """(quote character, text between the quotes) of a quoted token."""
    quote = tok.text[0]
    closed = len(tok.text) > 1 and tok.text.endswith(quote)
    return quote, tok.text[1:-1] if closed else tok.text[1:]


def unquote_ident(tok: Token) -> str:
    """The identifier a WORD or QIDENT token names (quotes and doubled quotes undone)."""
    if tok.kind is Tok.QIDENT:
        quote, body = _body(tok)
        return body.replace(quote * 2, quote)
    return tok.text


_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}
# One pass over backslash escapes and doubled quotes: "\\''" is an escaped quote and
# then a doubled one, which two separate replacements would get wrong.
_UNESCAPE = {q: re.compile(rf"\\(.)|{q}{q}", re.DOTALL) for q in "'\""}


def unquote_string(tok: Token, mode: SqlMode = SqlMode.DEFAULT) -> str:
    """The value of a STRING token, MariaDB escapes applied (\\% and \\_ stay as written)."""
    quote, body = _body(tok)
    if mode & SqlMode.NO_BACKSLASH_ESCAPES:
        return body.replace(quote * 2, quote)

    def unescape(m: re.Match[str]) -> str:
        c = m.group(1)
        if c is None:
            return quote
        return "\\" + c if c in "%_" else _ESCAPES.get(c, c)

    return _UNESCAPE[quote].sub(unescape, body)


# Words that open a block closed by END in stored programs and compound statements.
# (IF/LOOP/WHILE/REPEAT/FOR blocks end with "END IF" etc., which we do not count, so
# those closers must not decrement.)
_END_SUFFIX_NOT_COUNTED = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})
# A BEGIN after one of these opens a block (not a column named `begin`).
_BEGIN_BLOCK_AFTER = frozenset(
    {
        ";",
        ":",
        ")",
        "THEN",
        "ELSE",
        "DO",
        "LOOP",
        "REPEAT",
        "BEGIN",
        "ROW",
        "DETERMINISTIC",
        "SQL",
        "DATA",
        "DEFINER",
        "INVOKER",
        "'",  # COMMENT 'text' BEGIN
    }
)
# A statement starting with one of these is a compound statement whose body we do not
# track (IF ... END IF etc.): the rest of the text is taken as that one statement.
_UNTRACKED_COMPOUND = frozenset({"IF", "WHILE", "LOOP", "REPEAT", "FOR", "CASE", "DECLARE"})


def _boundaries(mode: SqlMode) -> re.Pattern[str]:
    """What decides where statements end, for the fast scan; the regex engine skips the
    rest. The look-ahead on first characters makes it skip text about twice as fast."""
    strings, names = _quoting(mode)
    return re.compile(
        rf"""(?=[-/\#'"`;bBcCeE])(?:
         /\*.*?(?:\*/|\Z)|\#[^\n]*|--(?:[\x00-\x20][^\n]*|\Z)
        |{strings}
        |{names}
        |(?P<semi>;)
        |(?P<block>(?<![\w$])(?i:BEGIN|CASE|END)(?![\w$]))
        )""",
        re.VERBOSE | re.DOTALL,
    )


_BOUNDARIES = {mode: _boundaries(mode) for mode in _MODES}


def split_statements(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> list[str]:
    """Split text into its statements at `;` outside strings, comments and BEGIN...END.

    Empty statements (only whitespace/comments) are dropped. Text without a `;` is
    returned whole (the common case); text without block keywords or executable comments
    is cut by one regex scan, which keeps a bulk INSERT of megabytes cheap.
    """
    if ";" not in sql:
        return [sql] if _has_code(sql, mode) else []
    if "/*!" in sql or "/*M!" in sql:
        return _split_tokens(sql, mode)
    cuts = []
    for m in _BOUNDARIES[mode].finditer(sql):
        if m.lastgroup == "block":
            return _split_tokens(sql, mode)
        if m.lastgroup == "semi":
            cuts.append(m.start())
    parts = []
    for start, end in zip([0, *(c + 1 for c in cuts)], [*cuts, len(sql)], strict=True):
        first = next(tokens(sql, start, mode), None)  # in context: "--;" is not a comment
        if first is not None and first.start < end:
            if _opens_compound(first, sql, mode):
                return _split_tokens(sql, mode)
            parts.append(sql[start:end])
    return parts


def _has_code(sql: str, mode: SqlMode) -> bool:
    head = sql.lstrip()
    return bool(head) and (head[0] not in "/-#" or next(tokens(head, 0, mode), None) is not None)


def _opens_compound(first: Token, sql: str, mode: SqlMode) -> bool:
    return first.upper in _UNTRACKED_COMPOUND or _is_label(first, sql, mode)


def _split_tokens(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> list[str]:
    """split_statements on the token stream, following BEGIN/CASE ... END blocks."""
    parts: list[str] = []
    start = 0  # offset where the current statement starts
    first: Token | None = None  # first token of the current statement
    prev = ";"  # previous token's upper text (or punctuation), ";" at a statement start
    depth = 0  # BEGIN/CASE ... END nesting
    untracked = False
    for tok in tokens(sql, 0, mode):
        word = tok.upper
        if first is None:
            first = tok
            untracked = _opens_compound(tok, sql, mode)
        if untracked:
            continue
        if word == "BEGIN":
            if tok is first:
                if _peek_word(sql, tok.end, mode) == "NOT":
                    depth += 1
            elif prev in _BEGIN_BLOCK_AFTER:
                depth += 1
        elif word == "CASE" and prev != "END":  # not the CASE of END CASE
            depth += 1
        elif word == "END" and depth:
            if _peek_word(sql, tok.end, mode) not in _END_SUFFIX_NOT_COUNTED:
                depth -= 1
        elif tok.text == ";" and not depth:
            if first is not tok:
                parts.append(sql[start : tok.start])
            start = tok.end
            first = None
        prev = "'" if tok.kind is Tok.STRING else word or tok.text
    if first is not None:
        parts.append(sql[start:])
    return parts


def _peek_word(sql: str, pos: int, mode: SqlMode) -> str:
    nxt = next(tokens(sql, pos, mode), None)
    return nxt.upper if nxt is not None else ""


def _is_label(tok: Token, sql: str, mode: SqlMode) -> bool:
    """`label:` starting a compound statement (`lbl: LOOP ... END LOOP lbl`)."""
    if tok.kind is not Tok.WORD:
        return False
    nxt = next(tokens(sql, tok.end, mode), None)
    return nxt is not None and nxt.text == ":"


class QualifiedName(NamedTuple):
    """`name` or `schema.name`, unquoted; schema None means the current database."""

    schema: str | None
    name: str


_IDENT = (Tok.WORD, Tok.QIDENT)


class TokenCursor:
    """Look-ahead over the lazy token stream of one statement, for keyword parsing."""

    __slots__ = ("_buf", "_it", "i", "mode", "sql")

    def __init__(self, sql: str, pos: int = 0, mode: SqlMode = SqlMode.DEFAULT) -> None:
        self.sql = sql
        self.mode = mode
        self._it: Iterator[Token] = tokens(sql, pos, mode)
        self._buf: list[Token] = []
        self.i = 0

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        buf = self._buf
        while len(buf) <= j:
            tok = next(self._it, None)
            if tok is None:
                return None
            buf.append(tok)
        return buf[j]

    def word(self, k: int = 0) -> str:
        """Upper-cased WORD at offset k, "" for anything else or the end."""
        j = self.i + k
        tok = self._buf[j] if j < len(self._buf) else self.peek(k)
        return tok.upper if tok is not None else ""

    def is_ident(self, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.kind in _IDENT

    def next(self) -> Token | None:
        tok = self.peek()
        if tok is not None:
            self.i += 1
        return tok

    def accept(self, *words: str) -> str:
        """Consume the next token if it is one of `words`; return it (or "")."""
        w = self.word()
        if w and w in words:
            self.i += 1
            return w
        return ""

    def accept_text(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.text == text:
            self.i += 1
            return True
        return False

    def accept_seq(self, *words: str) -> bool:
        if all(self.word(k) == w for k, w in enumerate(words)):
            self.i += len(words)
            return True
        return False

    def rest(self) -> Iterator[Token]:
        while (tok := self.next()) is not None:
            yield tok

    def ident(self) -> str | None:
        """An identifier (quoted or not) at the cursor."""
        if not self.is_ident():
            return None
        return unquote_ident(self.next())  # type: ignore[arg-type]

    def qualified_name(self) -> QualifiedName | None:
        """`name` or `schema.name` at the cursor."""
        first = self.ident()
        if first is None:
            return None
        nxt = self.peek()
        if nxt is not None and nxt.text == "." and self.is_ident(1):
            self.i += 1
            return QualifiedName(first, self.ident())  # type: ignore[arg-type]
        return QualifiedName(None, first)

    def name_list(self) -> tuple[QualifiedName, ...]:
        """`t1, db.t2, ...`"""
        names = []
        while (name := self.qualified_name()) is not None:
            names.append(name)
            if not self.accept_text(","):
                break
        return tuple(names)

    def skip_to(self, *stops: str, limit: int = 64) -> str:
        """Advance past the first of `stops` (words or punctuation) at paren depth 0.

        Gives up ("") at the end or after `limit` tokens, so hostile text costs little.
        """
        depth = 0
        for _ in range(limit):
            tok = self.next()
            if tok is None:
                return ""
            if tok.text == "(":
                depth += 1
            elif tok.text == ")":
                depth -= 1
            elif depth <= 0:
                key = tok.upper or tok.text
                if key in stops:
                    return key
        return ""
