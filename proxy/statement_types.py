"""What the statement classifier tells the session: kinds and the per-statement record."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from proxy.sql_text import QualifiedName

TableName = QualifiedName


class StatementKind(enum.Enum):
    READ = "read"
    LOCKING_READ = "locking_read"  # SELECT ... FOR UPDATE / LOCK IN SHARE MODE / FOR SHARE
    DML = "dml"
    DDL = "ddl"
    ACCOUNT = "account"  # users, roles, grants, passwords
    TXN_BEGIN = "txn_begin"
    TXN_COMMIT = "txn_commit"
    TXN_ROLLBACK = "txn_rollback"
    SAVEPOINT = "savepoint"  # SAVEPOINT, ROLLBACK TO SAVEPOINT, RELEASE SAVEPOINT
    SET = "set"
    SHOW = "show"
    USE = "use"
    CALL = "call"
    LOCK = "lock"  # LOCK/UNLOCK TABLES, FLUSH TABLES ... WITH READ LOCK / FOR EXPORT
    PREPARE = "prepare"  # SQL-level PREPARE
    EXECUTE = "execute"  # EXECUTE, EXECUTE IMMEDIATE
    DEALLOCATE = "deallocate"  # DEALLOCATE PREPARE / DROP PREPARE
    EXPLAIN = "explain"  # EXPLAIN / DESCRIBE / DESC
    OTHER = "other"
    EMPTY = "empty"  # only whitespace and comments


_WRITES = frozenset({StatementKind.DML, StatementKind.DDL, StatementKind.ACCOUNT})
_SYNC_WAIT = {
    StatementKind.READ: 1,
    StatementKind.LOCKING_READ: 1,
    StatementKind.TXN_BEGIN: 1,
    StatementKind.EXPLAIN: 1,
    StatementKind.SHOW: 8,
}
_SYNC_WAIT_DML = {"UPDATE": 2, "DELETE": 2, "INSERT": 4, "REPLACE": 4, "LOAD": 4}


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """What one statement (the first one, for multi-statement text) does.

    `tables`: DML targets, DDL objects (an index's or trigger's table; both names of a
    rename), tables named by LOCK TABLES, FLUSH TABLES and table maintenance; empty when
    not applicable or not cheaply known. `schemas`: databases created/altered/dropped.
    `session_vars`/`global_vars`: system variables a SET assigns (lower-case, scope prefix
    removed; user variables excluded). `modifiers`: upper-case option phrases, e.g.
    ("READ ONLY",), ("AND CHAIN", "RELEASE"), ("ISOLATION LEVEL READ COMMITTED",).
    `name`: the savepoint, prepared statement, USE database or CALL procedure. `inner`:
    statement text of PREPARE ... FROM '...' and EXECUTE IMMEDIATE '...'. `temporary`:
    CREATE/DROP TEMPORARY TABLE (session-local, not replicated). `verb`: the DML verb
    (INSERT, REPLACE, UPDATE, DELETE, LOAD), "" for other kinds. `locking_write`: every
    existing row the statement reads, it reads locked and latest (proxy/locking_write.py).
    """

    kind: StatementKind
    implicit_commit: bool = False
    tables: tuple[TableName, ...] = ()
    schemas: tuple[str, ...] = ()
    multi: bool = False
    temporary: bool = False
    session_vars: tuple[str, ...] = ()
    global_vars: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    name: str | None = None
    inner: str | None = None
    verb: str = ""
    locking_write: bool = False

    @property
    def sync_wait_bit(self) -> int:
        """The `wsrep_sync_wait` bit that asks for a causality wait before this statement
        (0: none applies): 1 reads and BEGIN, 2 UPDATE/DELETE, 4 INSERT/REPLACE, 8 SHOW."""
        if self.kind is StatementKind.DML:
            return _SYNC_WAIT_DML.get(self.verb, 0)
        return _SYNC_WAIT.get(self.kind, 0)

    @property
    def for_update(self) -> bool:
        return self.kind is StatementKind.LOCKING_READ

    @property
    def is_write(self) -> bool:
        """Whether the statement itself changes replicated data, schema or accounts."""
        return self.kind in _WRITES
