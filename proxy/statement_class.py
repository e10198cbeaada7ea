"""Statement classification: what a client's SQL text does, decided from its first keywords.

The proxy calls `classify` on every COM_QUERY and COM_STMT_PREPARE, so this is on the
hot path: a hand-written look at the leading keywords (comments skipped, executable
comments honoured), an LRU cache keyed by the text, and sqlglot only where the cheap
path cannot name the tables (multi-table UPDATE/DELETE, WITH ... UPDATE/DELETE).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from proxy.locking_write import is_locking_write
from proxy.sql_text import SqlMode, Tok, TokenCursor, split_statements, unquote_string
from proxy.statement_sqlglot import dml_targets
from proxy.statement_types import StatementInfo, StatementKind, TableName

__all__ = [
    "SqlMode",
    "StatementInfo",
    "StatementKind",
    "TableName",
    "classify",
    "classify_each",
    "classify_uncached",
    "split_statements",
]

K = StatementKind

# Statements longer than this are classified but not cached: they rarely repeat (bulk
# inserts), and the cache's memory stays bounded by CACHE_SIZE * CACHE_MAX_TEXT.
CACHE_SIZE = 4096
CACHE_MAX_TEXT = 4096

# Records are immutable and few texts differ in more than their literals, so handlers
# share them: building a frozen 12-field dataclass costs more than classifying.
_info = functools.lru_cache(maxsize=4096)(StatementInfo)

_EMPTY = StatementInfo(K.EMPTY)
_READ = StatementInfo(K.READ)
_LOCKING_READ = StatementInfo(K.LOCKING_READ)


def classify(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> StatementInfo:
    """Classify the first statement of `sql`; `multi` tells whether more follow.

    `mode`: the session's sql_mode flags that change how text is read (see `SqlMode`).
    """
    if len(sql) > CACHE_MAX_TEXT:
        return classify_uncached(sql, mode)
    return _classify_cached(sql, mode) if mode else _classify_cached(sql)


def classify_each(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> tuple[StatementInfo, ...]:
    """Classify every statement of a (possibly multi-statement) text, in order."""
    return tuple(classify(part, mode) for part in split_statements(sql, mode))


def classify_uncached(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> StatementInfo:
    parts = split_statements(sql, mode)
    if not parts:
        return _EMPTY
    info = _classify_one(parts[0], mode)
    return replace(info, multi=True) if len(parts) > 1 else info


_classify_cached = functools.lru_cache(maxsize=CACHE_SIZE)(classify_uncached)
cache_info = _classify_cached.cache_info
cache_clear = _classify_cached.cache_clear


class _ClassifyFrom(NamedTuple):
    """A prefix (SET STATEMENT ... FOR, ANALYZE) wraps the statement that starts here."""

    pos: int


_Handler = Callable[[TokenCursor], "StatementInfo | _ClassifyFrom"]


def _classify_one(sql: str, mode: SqlMode) -> StatementInfo:
    pos = 0
    while True:  # ends: every _ClassifyFrom moves strictly forward in the text
        cur = TokenCursor(sql, pos, mode)
        while cur.accept_text("("):  # (SELECT ...) UNION (SELECT ...)
            pass
        first = cur.next()
        if first is None:
            return _EMPTY
        handler = _HANDLERS.get(first.upper)
        if handler is None:
            return _info(K.OTHER)
        result = handler(cur)
        if isinstance(result, StatementInfo):
            return result
        pos = result.pos


def _select(cur: TokenCursor) -> StatementInfo:
    return _LOCKING_READ if _is_locking(cur) else _READ


def _is_locking(cur: TokenCursor) -> bool:
    upper = cur.sql.upper()
    if "UPDATE" not in upper and "SHARE" not in upper:  # cheap: most reads end here
        return False
    prev2, prev = "", ""
    for tok in cur.rest():
        w = tok.upper
        if (prev == "FOR" and w in ("UPDATE", "SHARE")) or (
            prev2 == "IN" and prev == "SHARE" and w == "MODE"
        ):
            return True
        prev2, prev = prev, w
    return False


_MAIN_AFTER_WITH = frozenset({"SELECT", "VALUES", "TABLE", "UPDATE", "DELETE", "INSERT", "REPLACE"})


def _with(cur: TokenCursor) -> StatementInfo:
    main = cur.skip_to(*_MAIN_AFTER_WITH, limit=1 << 20)
    if main in ("UPDATE", "DELETE", "INSERT", "REPLACE"):
        info = _DML_HANDLERS[main](cur)
        return info if info.tables else replace(info, tables=dml_targets(cur.sql, cur.mode))
    return _select(cur)


def _insert(cur: TokenCursor, verb: str = "INSERT") -> StatementInfo:
    cur.accept("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY")
    cur.accept("IGNORE")
    cur.accept("INTO")
    name = cur.qualified_name()
    if name is None:
        return _info(K.DML, verb=verb)
    locking = is_locking_write(cur.sql, cur.mode)
    return _info(K.DML, verb=verb, tables=(name,), locking_write=locking)


def _replace(cur: TokenCursor) -> StatementInfo:
    return _insert(cur, "REPLACE")


# What may follow the table of a single-table DELETE (anything else: multi-table).
_SINGLE_DELETE_NEXT = frozenset({"", "WHERE", "ORDER", "LIMIT", "RETURNING", "PARTITION"})


def _update(cur: TokenCursor) -> StatementInfo:
    cur.accept("LOW_PRIORITY")
    cur.accept("IGNORE")
    name = cur.qualified_name()
    cur.accept("AS")
    if cur.word() != "SET" and cur.is_ident() and cur.word(1) == "SET":
        cur.next()  # alias
    if name is not None and cur.word() == "SET":
        locking = is_locking_write(cur.sql, cur.mode)
        return _info(K.DML, verb="UPDATE", tables=(name,), locking_write=locking)
    return _info(K.DML, verb="UPDATE", tables=dml_targets(cur.sql, cur.mode))


def _delete(cur: TokenCursor) -> StatementInfo:
    cur.accept("LOW_PRIORITY")
    cur.accept("QUICK")
    cur.accept("IGNORE")
    if cur.accept("FROM"):
        name = cur.qualified_name()
        if (
            name is not None
            and cur.word() in _SINGLE_DELETE_NEXT
            and (
                cur.peek() is None or cur.peek().kind is Tok.WORD  # type: ignore[union-attr]
            )
        ):
            locking = is_locking_write(cur.sql, cur.mode)
            return _info(K.DML, verb="DELETE", tables=(name,), locking_write=locking)
    return _info(K.DML, verb="DELETE", tables=dml_targets(cur.sql, cur.mode))


def _load(cur: TokenCursor) -> StatementInfo:
    if cur.accept("INDEX"):  # LOAD INDEX INTO CACHE
        return _info(K.OTHER, implicit_commit=True)
    if not cur.accept("DATA", "XML"):
        return _info(K.OTHER)
    if cur.skip_to("TABLE") != "TABLE":
        return _info(K.DML, verb="LOAD", tables=())
    name = cur.qualified_name()
    return _info(K.DML, verb="LOAD", tables=(name,) if name else ())


# Object keywords of CREATE/ALTER/DROP; what precedes them (OR REPLACE, DEFINER = ...,
# ALGORITHM = ..., UNIQUE, ONLINE, ...) is skipped.
_OBJECTS = frozenset(
    {
        "TABLE",
        "TABLES",
        "DATABASE",
        "SCHEMA",
        "INDEX",
        "VIEW",
        "PROCEDURE",
        "FUNCTION",
        "TRIGGER",
        "EVENT",
        "SEQUENCE",
        "USER",
        "ROLE",
        "SERVER",
        "TABLESPACE",
        "PACKAGE",
        "LOGFILE",
        "PREPARE",
    }
)
_TABLE_LIKE = frozenset({"TABLE", "TABLES", "VIEW", "SEQUENCE"})


def _ddl_object(cur: TokenCursor) -> tuple[str, bool]:
    """Skip to the object keyword of CREATE/ALTER/DROP; return it and whether TEMPORARY."""
    temporary = False
    for _ in range(32):
        tok = cur.next()
        if tok is None:
            return "", temporary
        w = tok.upper
        if w in _OBJECTS:
            return w, temporary
        temporary = temporary or w == "TEMPORARY"
    return "", temporary


def _create(cur: TokenCursor) -> StatementInfo:
    obj, temporary = _ddl_object(cur)
    cur.accept_seq("IF", "NOT", "EXISTS")
    return _ddl(cur, obj, temporary)


def _drop(cur: TokenCursor) -> StatementInfo:
    obj, temporary = _ddl_object(cur)
    cur.accept_seq("IF", "EXISTS")
    if obj == "PREPARE":
        return _named(K.DEALLOCATE, cur)
    return _ddl(cur, obj, temporary)


def _alter(cur: TokenCursor) -> StatementInfo:
    obj, _ = _ddl_object(cur)
    cur.accept_seq("IF", "EXISTS")
    if obj in ("DATABASE", "SCHEMA"):
        tok = cur.peek()
        if tok is None or tok.upper in ("DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT"):
            return _info(K.DDL, implicit_commit=True)  # the current database
    info = _ddl(cur, obj, False)
    if obj == "TABLE" and info.tables and cur.skip_to("RENAME", limit=1 << 20):
        cur.accept("TO", "AS")
        if cur.word() not in ("COLUMN", "INDEX", "KEY") and (new := cur.qualified_name()):
            info = replace(info, tables=(*info.tables, new))
    return info


def _ddl(cur: TokenCursor, obj: str, temporary: bool) -> StatementInfo:
    if obj in ("USER", "ROLE"):
        return _info(K.ACCOUNT, implicit_commit=True)
    if obj in ("DATABASE", "SCHEMA"):
        name = cur.ident()
        schemas = (name,) if name is not None else ()
        return _info(K.DDL, implicit_commit=True, schemas=schemas)
    tables: tuple[TableName, ...] = ()
    implicit = not temporary
    if obj in _TABLE_LIKE:
        tables = cur.name_list()
    elif obj in ("INDEX", "TRIGGER"):
        if cur.skip_to("ON") == "ON" and (name := cur.qualified_name()):
            tables = (name,)
    elif obj == "FUNCTION":  # CREATE FUNCTION f RETURNS type SONAME 'lib': a UDF, no commit
        cur.qualified_name()
        implicit = not cur.accept("RETURNS")
    return _info(K.DDL, implicit_commit=implicit, tables=tables, temporary=temporary)


def _rename(cur: TokenCursor) -> StatementInfo:
    if cur.accept("USER"):
        return _info(K.ACCOUNT, implicit_commit=True)
    cur.accept("TABLE", "TABLES")
    cur.accept_seq("IF", "EXISTS")
    tables = []
    while (old := cur.qualified_name()) is not None:  # a TO b [, c TO d ...]
        tables.append(old)
        if cur.accept("WAIT"):  # RENAME TABLE t [WAIT n | NOWAIT] TO ...
            cur.next()
        cur.accept("NOWAIT")
        if not cur.accept("TO") or (new := cur.qualified_name()) is None:
            break
        tables.append(new)
        if not cur.accept_text(","):
            break
    return _info(K.DDL, implicit_commit=True, tables=tuple(tables))


def _truncate(cur: TokenCursor) -> StatementInfo:
    cur.accept("TABLE")
    name = cur.qualified_name()
    return _info(K.DDL, implicit_commit=True, tables=(name,) if name else ())


def _account(cur: TokenCursor) -> StatementInfo:
    return _info(K.ACCOUNT, implicit_commit=True)


def _begin(cur: TokenCursor) -> StatementInfo:
    if cur.word() == "NOT":  # BEGIN NOT ATOMIC ... END: a compound statement
        return _info(K.OTHER)
    return _info(K.TXN_BEGIN, implicit_commit=True)


def _start(cur: TokenCursor) -> StatementInfo:
    if not cur.accept("TRANSACTION"):  # START SLAVE / REPLICA / ALL SLAVES
        return _info(K.OTHER, implicit_commit=True)
    modifiers = []
    while True:
        if cur.accept_seq("READ", "ONLY"):
            modifiers.append("READ ONLY")
        elif cur.accept_seq("READ", "WRITE"):
            modifiers.append("READ WRITE")
        elif cur.accept_seq("WITH", "CONSISTENT", "SNAPSHOT"):
            modifiers.append("WITH CONSISTENT SNAPSHOT")
        if not cur.accept_text(","):
            break
    return _info(K.TXN_BEGIN, implicit_commit=True, modifiers=tuple(modifiers))


def _completion(cur: TokenCursor) -> tuple[str, ...]:
    """[WORK] [AND [NO] CHAIN] [[NO] RELEASE] of COMMIT and ROLLBACK."""
    cur.accept("WORK")
    modifiers = []
    if cur.accept_seq("AND", "NO", "CHAIN"):
        modifiers.append("AND NO CHAIN")
    elif cur.accept_seq("AND", "CHAIN"):
        modifiers.append("AND CHAIN")
    if cur.accept_seq("NO", "RELEASE"):
        modifiers.append("NO RELEASE")
    elif cur.accept("RELEASE"):
        modifiers.append("RELEASE")
    return tuple(modifiers)


def _commit(cur: TokenCursor) -> StatementInfo:
    return _info(K.TXN_COMMIT, modifiers=_completion(cur))


def _rollback(cur: TokenCursor) -> StatementInfo:
    if cur.word() == "TO" or cur.word(1) == "TO":  # ROLLBACK [WORK] TO [SAVEPOINT] sp
        cur.accept("WORK")
        cur.accept("TO")
        cur.accept("SAVEPOINT")
        return _named(K.SAVEPOINT, cur)
    return _info(K.TXN_ROLLBACK, modifiers=_completion(cur))


def _savepoint(cur: TokenCursor) -> StatementInfo:
    return _named(K.SAVEPOINT, cur)


def _release(cur: TokenCursor) -> StatementInfo:
    if cur.accept("SAVEPOINT"):
        return _named(K.SAVEPOINT, cur)
    return _info(K.OTHER)


def _named(kind: StatementKind, cur: TokenCursor) -> StatementInfo:
    return _info(kind, name=cur.ident())


def _use(cur: TokenCursor) -> StatementInfo:
    return _named(K.USE, cur)


def _call(cur: TokenCursor) -> StatementInfo:
    name = cur.qualified_name()
    if name is None:
        return _info(K.CALL)
    return _info(K.CALL, name=f"{name.schema}.{name.name}" if name.schema else name.name)


def _prepare(cur: TokenCursor) -> StatementInfo:
    info = _named(K.PREPARE, cur)
    if cur.accept("FROM") and (tok := cur.peek()) is not None and tok.kind is Tok.STRING:
        info = replace(info, inner=unquote_string(tok, cur.mode))
    return info


def _execute(cur: TokenCursor) -> StatementInfo:
    if cur.accept("IMMEDIATE"):
        tok = cur.peek()
        inner = (
            unquote_string(tok, cur.mode) if tok is not None and tok.kind is Tok.STRING else None
        )
        return _info(K.EXECUTE, inner=inner)
    return _named(K.EXECUTE, cur)


def _deallocate(cur: TokenCursor) -> StatementInfo:
    cur.accept("PREPARE")
    return _named(K.DEALLOCATE, cur)


def _lock(cur: TokenCursor) -> StatementInfo:
    if not cur.accept("TABLES", "TABLE"):  # LOCK ... of other kinds (none in MariaDB 10.11)
        return _info(K.OTHER)
    tables = []
    while (name := cur.qualified_name()) is not None:  # t [[AS] alias] lock_type, ...
        tables.append(name)
        if cur.skip_to(",", limit=16) != ",":
            break
    return _info(K.LOCK, implicit_commit=True, tables=tuple(tables))


def _unlock(cur: TokenCursor) -> StatementInfo:
    # Commits only if LOCK TABLES is in effect: the session knows, the text does not.
    return _info(K.LOCK if cur.accept("TABLES", "TABLE") else K.OTHER)


def _flush(cur: TokenCursor) -> StatementInfo:
    cur.accept("NO_WRITE_TO_BINLOG", "LOCAL")
    if cur.accept("TABLES", "TABLE"):
        tables = cur.name_list() if cur.word() not in ("WITH", "FOR") else ()
        if cur.accept_seq("WITH", "READ", "LOCK") or cur.accept_seq("FOR", "EXPORT"):
            return _info(K.LOCK, implicit_commit=True, tables=tables)
    return _info(K.OTHER, implicit_commit=True)


_ANALYZED = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES"})


def _analyze(cur: TokenCursor) -> StatementInfo | _ClassifyFrom:
    """ANALYZE TABLE is maintenance; ANALYZE [FORMAT=JSON] <stmt> *executes* the statement."""
    if cur.accept_seq("FORMAT"):
        cur.accept_text("=")
        cur.next()
    tok = cur.peek()
    if tok is not None and (tok.upper in _ANALYZED or tok.text == "("):
        return _ClassifyFrom(tok.start)
    return _table_maintenance(cur)


def _table_maintenance(cur: TokenCursor) -> StatementInfo:
    cur.accept("NO_WRITE_TO_BINLOG", "LOCAL")
    tables = cur.name_list() if cur.accept("TABLE", "TABLES") else ()
    return _info(K.OTHER, implicit_commit=True, tables=tables)


def _implicit_other(cur: TokenCursor) -> StatementInfo:
    return _info(K.OTHER, implicit_commit=True)


def _simple(kind: StatementKind) -> _Handler:
    info = StatementInfo(kind)
    return lambda cur: info


_SCOPES = {"GLOBAL": "global", "SESSION": "session", "LOCAL": "session"}
# SET NAMES and SET CHARACTER SET both assign these.
_CHARSET_VARS = (
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
)
_ISOLATION_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")


def _set(cur: TokenCursor) -> StatementInfo | _ClassifyFrom:
    if cur.accept("PASSWORD") or cur.accept_seq("DEFAULT", "ROLE"):
        return _info(K.ACCOUNT, implicit_commit=True)
    if cur.accept("ROLE"):
        return _info(K.SET, name=cur.ident())
    if cur.accept("STATEMENT"):  # SET STATEMENT var=value [, ...] FOR <statement>
        if cur.skip_to("FOR", limit=1 << 20) and (tok := cur.peek()) is not None:
            return _ClassifyFrom(tok.start)
        return _info(K.SET)
    assigned: dict[str, list[str]] = {"session": [], "global": []}
    modifiers: tuple[str, ...] = ()
    scope = "session"  # a scope keyword carries over to later assignments
    while cur.peek() is not None:
        explicit = cur.accept("GLOBAL", "SESSION", "LOCAL")
        scope = _SCOPES.get(explicit, scope)
        if cur.accept("TRANSACTION"):  # its characteristics list takes the commas
            characteristics = _txn_characteristics(cur)
            if explicit:
                assigned[scope] += [_TXN_VAR[c.split()[0]] for c in characteristics]
            else:  # bare SET TRANSACTION: the next transaction only
                modifiers = characteristics
            break
        if cur.accept("NAMES", "CHARSET") or cur.accept_seq("CHARACTER", "SET"):
            assigned["session"] += _CHARSET_VARS
        else:
            var = _variable(cur, scope)
            if var is not None:
                assigned[var[0]].append(var[1])
        if cur.skip_to(",", limit=1 << 20) != ",":
            break
    return _info(
        K.SET,
        session_vars=tuple(dict.fromkeys(assigned["session"])),
        global_vars=tuple(dict.fromkeys(assigned["global"])),
        modifiers=modifiers,
    )


_TXN_VAR = {"ISOLATION": "tx_isolation", "READ": "tx_read_only"}


def _txn_characteristics(cur: TokenCursor) -> tuple[str, ...]:
    """ISOLATION LEVEL <level> | READ ONLY | READ WRITE, comma-separated."""
    out = []
    while True:
        if cur.accept_seq("ISOLATION", "LEVEL"):
            level = next((lv for lv in _ISOLATION_LEVELS if cur.accept_seq(*lv.split())), "")
            out.append(f"ISOLATION LEVEL {level}".rstrip())
        elif cur.accept_seq("READ", "ONLY"):
            out.append("READ ONLY")
        elif cur.accept_seq("READ", "WRITE"):
            out.append("READ WRITE")
        if not cur.accept_text(","):
            return tuple(out)


def _variable(cur: TokenCursor, scope: str) -> tuple[str, str] | None:
    """(scope, name) of the system variable assigned at the cursor; None for @user vars."""
    tok = cur.peek()
    if tok is None:
        return None
    if tok.kind is Tok.VAR:
        cur.next()
        if not tok.text.startswith("@@"):
            return None
        prefix, dot, rest = tok.text[2:].partition(".")
        if dot and prefix.upper() in _SCOPES:
            return _SCOPES[prefix.upper()], rest.lower()
        return "session", tok.text[2:].lower()  # @@name is the session value
    name = cur.qualified_name()  # `name`, or a structured `key_cache.name`
    if name is None:
        return None
    full = f"{name.schema}.{name.name}" if name.schema else name.name
    return scope, full.lower()


_DML_HANDLERS: dict[str, Callable[[TokenCursor], StatementInfo]] = {
    "INSERT": _insert,
    "REPLACE": _replace,
    "UPDATE": _update,
    "DELETE": _delete,
}
_HANDLERS: dict[str, _Handler] = {
    **_DML_HANDLERS,
    "SELECT": _select,
    "VALUES": _select,
    "TABLE": _select,
    "DO": _simple(K.READ),
    "WITH": _with,
    "LOAD": _load,
    "CREATE": _create,
    "ALTER": _alter,
    "DROP": _drop,
    "RENAME": _rename,
    "TRUNCATE": _truncate,
    "GRANT": _account,
    "REVOKE": _account,
    "BEGIN": _begin,
    "START": _start,
    "COMMIT": _commit,
    "ROLLBACK": _rollback,
    "SAVEPOINT": _savepoint,
    "RELEASE": _release,
    "SET": _set,
    "SHOW": _simple(K.SHOW),
    "USE": _use,
    "CALL": _call,
    "LOCK": _lock,
    "UNLOCK": _unlock,
    "FLUSH": _flush,
    "PREPARE": _prepare,
    "EXECUTE": _execute,
    "DEALLOCATE": _deallocate,
    "EXPLAIN": _simple(K.EXPLAIN),
    "DESCRIBE": _simple(K.EXPLAIN),
    "DESC": _simple(K.EXPLAIN),
    "ANALYZE": _analyze,
    "OPTIMIZE": _table_maintenance,
    "REPAIR": _table_maintenance,
    "CHECK": _table_maintenance,
    "CACHE": _implicit_other,
    "CHANGE": _implicit_other,
    "RESET": _implicit_other,
    "SHUTDOWN": _implicit_other,
    "STOP": _implicit_other,
}
