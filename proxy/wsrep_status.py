"""The proxy answers `wsrep_%` status and variables itself, the way a Galera node's
mysqld does, from the provider's `NodeStatus` and the node's variables:

- `SHOW [GLOBAL|SESSION] STATUS|VARIABLES LIKE '...'` / `WHERE ...` whose filter can only
  match `wsrep%` names (anything else, e.g. `LIKE 'Threads%'`, goes to the backend);
- `SELECT @@[session.|global.]wsrep_x [[AS] alias], ...` (only wsrep variables);
- `SET [SESSION] wsrep_sync_wait|wsrep_dirty_reads|wsrep_causal_reads = v`, kept in the
  session (`Session.wsrep`, cleared by COM_RESET_CONNECTION/COM_CHANGE_USER); admission
  reads them through `sync_wait`/`dirty_reads`.

Everything else goes on to admission (`proxy.admission`: 1047 on a node that is not
ready, causal waits). Column names, types and value formats are MariaDB's (checked
against a real 10.11).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxy.protocol.constants import UTF8MB4_GENERAL_CI, FieldType
from proxy.protocol.results import Column, ErrPacket, LocalReply, OkPacket, ResultSet
from proxy.session import Session
from proxy.sql_text import SqlMode, Tok, Token, TokenCursor, unquote_ident, unquote_string
from proxy.statement_class import StatementKind
from wsrep.status import SESSION_SETTABLE, SYNC_WAIT_MAX, NodeStatus, VarValue

K = StatementKind

_NOT_NULL = 0x0001
_UNSIGNED = 0x0020
_BINARY = 0x0080
_NO_DEFAULT_VALUE = 0x1000
_BINARY_CHARSET = 63
_NOT_FIXED_DEC = 39

ER_UNKNOWN_SYSTEM_VARIABLE = 1193
ER_GLOBAL_VARIABLE = 1229
ER_WRONG_VALUE_FOR_VAR = 1231
ER_WRONG_TYPE_FOR_VAR = 1232
ER_INCORRECT_GLOBAL_LOCAL_VAR = 1238
ER_NOT_SUPPORTED_YET = 1235


def _show_columns(table: str) -> tuple[Column, Column]:
    """`Variable_name` VARCHAR(64), `Value` VARCHAR(4096) of information_schema, as
    MariaDB describes them in its SHOW STATUS/VARIABLES result."""
    flags = _NOT_NULL | _NO_DEFAULT_VALUE
    schema = "information_schema"
    return (
        Column(
            "Variable_name", FieldType.VAR_STRING, UTF8MB4_GENERAL_CI, 256, table, schema, flags
        ),
        Column("Value", FieldType.VAR_STRING, UTF8MB4_GENERAL_CI, 16384, table, schema, flags),
    )


_SHOW_COLUMNS = {
    (what, scope): _show_columns(f"{scope.upper()}_{what}")
    for what in ("STATUS", "VARIABLES")
    for scope in ("session", "global")
}


def show_text(value: VarValue) -> str:
    """A value as SHOW STATUS/VARIABLES prints it."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, float):  # six decimals, trailing zeros dropped: 0.5, 0, 23.88889
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


def _select_column(name: str, value: VarValue) -> tuple[Column, VarValue]:
    """Column and cell of `SELECT @@name`: booleans and numbers are BIGINT, like MariaDB."""
    if isinstance(value, bool):
        return Column(name, FieldType.LONGLONG, _BINARY_CHARSET, 1, flags=_BINARY), int(value)
    if isinstance(value, int):
        flags = _BINARY | (_UNSIGNED if value >= 0 else 0)
        return Column(name, FieldType.LONGLONG, _BINARY_CHARSET, 21, flags=flags), value
    if isinstance(value, float):
        return Column(name, FieldType.DOUBLE, _BINARY_CHARSET, 22, flags=_BINARY), value
    col = Column(name, FieldType.VAR_STRING, length=4 * len(value), decimals=_NOT_FIXED_DEC)
    return col, value


# --- LIKE patterns and WHERE filters ---------------------------------------------------


@functools.lru_cache(maxsize=256)
def like_regex(pattern: str) -> re.Pattern[str]:
    """MariaDB LIKE with `\\` as escape, case-insensitive like SHOW's utf8 columns."""
    out = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _like_only_wsrep(pattern: str) -> bool:
    """Whether every name the pattern matches starts with `wsrep`."""
    return pattern[:5].lower() == "wsrep"


def _same_text(a: str, b: str) -> bool:
    """Equality under utf8mb4_general_ci with PAD SPACE, near enough for names/values."""
    return a.rstrip(" ").casefold() == b.rstrip(" ").casefold()


class _Unsupported(Exception):
    """Text this module does not answer: the backend gets it."""


Row = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Filter:
    """A compiled SHOW filter: which rows it keeps, and whether it can only keep wsrep
    rows (so the backend's own rows cannot be missing from our answer)."""

    keep: Callable[[Row], bool]
    only_wsrep: bool


_WHERE_COLUMNS = {"variable_name": 0, "value": 1}


class _WhereParser:
    """`WHERE` over (Variable_name, Value): comparisons (=, <>, !=), [NOT] LIKE,
    [NOT] IN (...), AND/OR/NOT/&&/||, parentheses. Anything else is `_Unsupported`."""

    def __init__(self, cur: TokenCursor) -> None:
        self.cur = cur

    def parse(self) -> _Filter:
        result = self._or()
        self.cur.accept_text(";")
        if self.cur.peek() is not None:
            raise _Unsupported("text after the WHERE condition")
        return result

    def _or(self) -> _Filter:
        parts = [self._and()]
        while self.cur.accept("OR") or self._accept_pair("|"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return _Filter(
            lambda row: any(p.keep(row) for p in parts), all(p.only_wsrep for p in parts)
        )

    def _and(self) -> _Filter:
        parts = [self._not()]
        while self.cur.accept("AND") or self._accept_pair("&"):
            parts.append(self._not())
        if len(parts) == 1:
            return parts[0]
        return _Filter(
            lambda row: all(p.keep(row) for p in parts), any(p.only_wsrep for p in parts)
        )

    def _accept_pair(self, c: str) -> bool:
        cur = self.cur
        first, second = cur.peek(), cur.peek(1)
        if first is None or second is None or first.text != c or second.text != c:
            return False
        cur.next()
        cur.next()
        return True

    def _not(self) -> _Filter:
        if self.cur.accept("NOT"):  # (`!` binds tighter than `=` in MariaDB: not ours)
            inner = self._not()
            return _Filter(lambda row: not inner.keep(row), False)
        if self.cur.accept_text("("):
            inner = self._or()
            if not self.cur.accept_text(")"):
                raise _Unsupported("unbalanced parenthesis")
            return inner
        return self._predicate()

    def _predicate(self) -> _Filter:
        cur = self.cur
        col = self._column()
        negate = bool(cur.accept("NOT"))
        if cur.accept("LIKE"):
            pattern = self._string()
            rx = like_regex(pattern)
            if negate:
                return _Filter(lambda row: rx.fullmatch(row[col]) is None, False)
            only = col == 0 and _like_only_wsrep(pattern)
            return _Filter(lambda row: rx.fullmatch(row[col]) is not None, only)
        if cur.accept("IN"):
            values = self._string_list()
            if negate:
                return _Filter(lambda row: not any(_same_text(row[col], v) for v in values), False)
            only = col == 0 and all(_like_only_wsrep(v) for v in values)
            return _Filter(lambda row: any(_same_text(row[col], v) for v in values), only)
        if negate:
            raise _Unsupported("NOT without LIKE or IN")
        equal = self._comparison()
        value = self._string()
        if equal:
            only = col == 0 and _like_only_wsrep(value)
            return _Filter(lambda row: _same_text(row[col], value), only)
        return _Filter(lambda row: not _same_text(row[col], value), False)

    def _column(self) -> int:
        tok = self.cur.next()
        if tok is None or tok.kind not in (Tok.WORD, Tok.QIDENT):
            raise _Unsupported("expected Variable_name or Value")
        col = _WHERE_COLUMNS.get(unquote_ident(tok).lower())
        if col is None:
            raise _Unsupported(f"unknown column {tok.text}")
        return col

    def _comparison(self) -> bool:
        """True for `=`, False for `<>`/`!=`."""
        cur = self.cur
        if cur.accept_text("="):
            return True
        if cur.accept_text("<"):
            if cur.accept_text(">"):
                return False
            raise _Unsupported("ordering comparison")
        if cur.accept_text("!") and cur.accept_text("="):
            return False
        raise _Unsupported("expected a comparison")

    def _string(self) -> str:
        tok = self.cur.next()
        if tok is None or tok.kind is not Tok.STRING:
            raise _Unsupported("expected a string literal")
        return unquote_string(tok, self.cur.mode)

    def _string_list(self) -> tuple[str, ...]:
        if not self.cur.accept_text("("):
            raise _Unsupported("expected (")
        values = [self._string()]
        while self.cur.accept_text(","):
            values.append(self._string())
        if not self.cur.accept_text(")"):
            raise _Unsupported("expected )")
        return tuple(values)


@dataclass(frozen=True, slots=True)
class ShowQuery:
    what: str  # "STATUS" or "VARIABLES"
    scope: str  # "session" or "global"
    keep: Callable[[Row], bool]


_SCOPE_WORDS = {"GLOBAL": "global", "SESSION": "session", "LOCAL": "session"}


def parse_show(cur: TokenCursor) -> ShowQuery | None:
    """`SHOW [scope] STATUS|VARIABLES LIKE/WHERE ...` that only wsrep rows can answer;
    None for any other SHOW (the backend's). The cursor is just after SHOW."""
    scope = _SCOPE_WORDS.get(cur.accept("GLOBAL", "SESSION", "LOCAL"), "session")
    what = cur.accept("STATUS", "VARIABLES")
    if not what:
        return None
    try:
        if cur.accept("LIKE"):
            tok = cur.next()
            if tok is None or tok.kind is not Tok.STRING:
                return None
            pattern = unquote_string(tok, cur.mode)
            cur.accept_text(";")
            if cur.peek() is not None or not _like_only_wsrep(pattern):
                return None
            rx = like_regex(pattern)
            return ShowQuery(what, scope, lambda row: rx.fullmatch(row[0]) is not None)
        if cur.accept("WHERE"):
            where = _WhereParser(cur).parse()
            return ShowQuery(what, scope, where.keep) if where.only_wsrep else None
    except _Unsupported:
        return None
    return None


# --- SET and SELECT @@ -------------------------------------------------------------------


def _is_wsrep(name: str) -> bool:
    return name.startswith("wsrep")


def _system_variable(tok: Token) -> tuple[str, str]:
    """(scope, lower-case name) of an `@@[global.|session.|local.]name` token."""
    prefix, dot, rest = tok.text[2:].partition(".")
    scope = _SCOPE_WORDS.get(prefix.upper()) if dot else None
    if scope is None:
        return "session", tok.text[2:].lower()
    return scope, rest.lower()


@dataclass(frozen=True, slots=True)
class _Assignment:
    scope: str
    name: str
    value: Token | None  # None: DEFAULT
    negative: bool


def _parse_set(cur: TokenCursor) -> list[_Assignment]:
    """`SET [scope] name = value [, ...]` after SET; `_Unsupported` for other shapes."""
    out = []
    scope = "session"
    while True:
        scope = _SCOPE_WORDS.get(cur.accept("GLOBAL", "SESSION", "LOCAL"), scope)
        tok = cur.next()
        if tok is None:
            raise _Unsupported("expected a variable")
        if tok.kind is Tok.VAR and tok.text.startswith("@@"):
            var_scope, name = _system_variable(tok)
        elif tok.kind in (Tok.WORD, Tok.QIDENT):
            var_scope, name = scope, unquote_ident(tok).lower()
        else:
            raise _Unsupported("not a system variable")
        cur.accept_text(":")  # `:=` assigns too
        if not cur.accept_text("="):
            raise _Unsupported("expected =")
        negative = cur.accept_text("-")
        value = cur.next()
        if value is None:
            raise _Unsupported("expected a value")
        out.append(
            _Assignment(var_scope, name, None if value.upper == "DEFAULT" else value, negative)
        )
        if not cur.accept_text(","):
            break
    cur.accept_text(";")
    if cur.peek() is not None:
        raise _Unsupported("expression values")
    return out


_SMALL_NUMBER = re.compile(r"[0-9]{1,4}")  # only ASCII digits, and no 10,000-digit int()
_BOOL_WORDS = {"ON": True, "TRUE": True, "1": True, "OFF": False, "FALSE": False, "0": False}


def _setting_value(a: _Assignment, default: VarValue, mode: SqlMode) -> VarValue | ErrPacket:
    """The value an assignment gives a session-settable variable, or the error."""
    if a.value is None:
        return default
    tok = a.value
    text = unquote_string(tok, mode) if tok.kind is Tok.STRING else tok.text
    wrong = ErrPacket(
        ER_WRONG_VALUE_FOR_VAR,
        "42000",
        f"Variable '{a.name}' can't be set to the value of '{'-' if a.negative else ''}{text}'",
    )
    if SESSION_SETTABLE[a.name] is bool:
        flag = _BOOL_WORDS.get(text.upper())
        return wrong if flag is None or a.negative else flag
    if tok.kind is Tok.STRING:
        return ErrPacket(
            ER_WRONG_TYPE_FOR_VAR, "42000", f"Incorrect argument type to variable '{a.name}'"
        )
    if a.negative or not _SMALL_NUMBER.fullmatch(text) or int(text) > SYNC_WAIT_MAX:
        return wrong
    return int(text)


@dataclass(frozen=True, slots=True)
class _SelectItem:
    label: str
    scope: str
    name: str


def _parse_select_vars(cur: TokenCursor) -> list[_SelectItem] | None:
    """`@@[scope.]name [[AS] alias], ...` after SELECT; None if anything else is selected."""
    items = []
    while True:
        tok = cur.next()
        if tok is None or tok.kind is not Tok.VAR or not tok.text.startswith("@@"):
            return None
        scope, name = _system_variable(tok)
        label = tok.text
        if cur.accept("AS") or cur.is_ident():
            alias = cur.next()
            if alias is None:
                return None
            label = unquote_string(alias) if alias.kind is Tok.STRING else unquote_ident(alias)
        items.append(_SelectItem(label, scope, name))
        if not cur.accept_text(","):
            break
    cur.accept_text(";")
    return items if cur.peek() is None else None


# --- the interceptor ---------------------------------------------------------------------


class WsrepInterceptor:
    """A `QueryInterceptor` for a node: wsrep status, variables and session settings
    answered locally.

    `snapshot()` is the provider's current `NodeStatus`; `variables(session)` the node's
    global `wsrep_%` variables (`NodeVariables.system_variables()`, best computed once).
    """

    def __init__(
        self,
        snapshot: Callable[[], NodeStatus],
        variables: Callable[[Session], Mapping[str, VarValue]],
    ) -> None:
        self.snapshot = snapshot
        self.variables = variables

    # What the relay asks before running a statement.

    def session_variables(self, session: Session) -> dict[str, VarValue]:
        values = dict(self.variables(session))
        values.update(session.wsrep)
        values["wsrep_causal_reads"] = bool(int(values.get("wsrep_sync_wait", 0)) & 1)
        return values

    def sync_wait(self, session: Session) -> int:
        return int(self._setting(session, "wsrep_sync_wait", 0))

    def dirty_reads(self, session: Session) -> bool:
        return bool(self._setting(session, "wsrep_dirty_reads", False))

    def _setting(self, session: Session, name: str, default: VarValue) -> VarValue:
        """The session's value, else the node's: per statement, so no dict is built."""
        own = session.wsrep
        if name in own:
            return own[name]
        return self.variables(session).get(name, default)

    def __call__(self, session: Session, sql: str) -> LocalReply | None:
        info = session.statement
        if info is None:
            return None
        if info.kind is K.SHOW and "wsrep" in sql.lower():
            return self._show(session, sql)
        if info.kind is K.SET and any(
            _is_wsrep(v) for v in (*info.session_vars, *info.global_vars)
        ):
            return self._set(session, sql, info.multi)
        if info.kind is K.READ and not info.multi and "@@" in sql and "wsrep" in sql.lower():
            return self._select(session, sql)
        return None

    def _show(self, session: Session, sql: str) -> LocalReply | None:
        cur = TokenCursor(sql, 0, session.parse_mode)
        if not cur.accept("SHOW"):
            return None
        query = parse_show(cur)
        if query is None:
            return None
        if query.what == "STATUS":
            values: Mapping[str, VarValue] = self.snapshot().status_variables()
        elif query.scope == "global":
            values = self.variables(session)
        else:
            values = self.session_variables(session)
        # Status in the provider's order, like Galera; variables sorted, like MariaDB.
        items = values.items() if query.what == "STATUS" else sorted(values.items())
        rows = [(name, show_text(value)) for name, value in items]
        return ResultSet(_SHOW_COLUMNS[query.what, query.scope], [r for r in rows if query.keep(r)])

    def _set(self, session: Session, sql: str, multi: bool) -> LocalReply:
        if multi:
            return _not_supported("SET wsrep_* in a multi-statement text")
        cur = TokenCursor(sql, 0, session.parse_mode)
        cur.accept("SET")
        try:
            assignments = _parse_set(cur)
        except _Unsupported:
            return _not_supported("this form of SET wsrep_*")
        if not all(_is_wsrep(a.name) for a in assignments):
            return _not_supported("SET of wsrep_* together with other variables")
        defaults = self.variables(session)
        pending: dict[str, VarValue] = {}
        for a in assignments:
            if a.name not in defaults:
                message = f"Unknown system variable '{a.name}'"
                return ErrPacket(ER_UNKNOWN_SYSTEM_VARIABLE, "HY000", message)
            if a.scope == "global":
                message = (
                    f"Variable '{a.name}' is a read only variable"
                    " (set it in the node's configuration)"
                )
                return ErrPacket(ER_INCORRECT_GLOBAL_LOCAL_VAR, "HY000", message)
            if a.name not in SESSION_SETTABLE:
                message = (
                    f"Variable '{a.name}' is a GLOBAL variable and should be set with SET GLOBAL"
                )
                return ErrPacket(ER_GLOBAL_VARIABLE, "HY000", message)
            value = _setting_value(a, defaults[a.name], session.parse_mode)
            if isinstance(value, ErrPacket):
                return value
            pending[a.name] = value
        if "wsrep_causal_reads" in pending:  # an alias of bit 1 of wsrep_sync_wait
            base = int(pending.get("wsrep_sync_wait", self.sync_wait(session)))
            on = pending.pop("wsrep_causal_reads")
            pending["wsrep_sync_wait"] = (base | 1) if on else (base & ~1)
        session.wsrep.update(pending)
        session.admitted = -1  # admission looks at this session again
        return OkPacket(0, 0, session.status_flags, 0)

    def _select(self, session: Session, sql: str) -> LocalReply | None:
        cur = TokenCursor(sql, 0, session.parse_mode)
        if not cur.accept("SELECT"):
            return None
        items = _parse_select_vars(cur)
        if items is None:
            return None
        session_values = self.session_variables(session)
        global_values = self.variables(session)
        columns, row = [], []
        for item in items:
            values = global_values if item.scope == "global" else session_values
            if not _is_wsrep(item.name) or item.name not in values:
                return None  # not ours: the backend knows it, or says it does not exist
            col, cell = _select_column(item.label, values[item.name])
            columns.append(col)
            row.append(cell)
        return ResultSet(columns, [tuple(row)])


def _not_supported(what: str) -> ErrPacket:
    message = f"This version of wsrep-proxy doesn't yet support '{what}'"
    return ErrPacket(ER_NOT_SUPPORTED_YET, "42000", message)


def status_interceptor(
    snapshot: Callable[[], NodeStatus],
    variables: Callable[[Session], Mapping[str, VarValue]],
) -> WsrepInterceptor:
    """The node's interceptor; plug it into `ProxyConfig.interceptor`."""
    return WsrepInterceptor(snapshot, variables)
