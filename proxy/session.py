"""What the proxy knows about one client session, at every moment.

Pure state, updated by the relay from the packets it forwards: the server status flags
of every OK/EOF that ends a response (in transaction? autocommit?), the current schema,
and the classification of the statement being run. The replication layer hooks in here:
before a statement is forwarded and at COMMIT.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from proxy.protocol.constants import ServerStatus
from proxy.protocol.stmt_execute import bound_types, with_types
from proxy.statement_class import (
    SqlMode,
    StatementInfo,
    StatementKind,
    TableName,
    classify,
    classify_each,
)
from wsrep.status import VarValue

# Plain ints: IntFlag arithmetic goes through Python-level enum code (hot: every command).
_IN_TRANS = int(ServerStatus.IN_TRANS)
_AUTOCOMMIT = int(ServerStatus.AUTOCOMMIT)
_NO_BACKSLASH_ESCAPES = int(ServerStatus.NO_BACKSLASH_ESCAPES)
# Statements that end the open transaction even when another one follows at once.
_ENDS_TRANSACTION = frozenset(
    {StatementKind.TXN_BEGIN, StatementKind.TXN_COMMIT, StatementKind.TXN_ROLLBACK}
)


@dataclass(slots=True)
class Session:
    """One client connection and its backend connection, as the relay sees them."""

    session_id: int
    peer: str
    user: str = ""
    schema: str | None = None
    backend_thread_id: int = 0
    capabilities: int = 0  # negotiated between client and backend
    tls: bool = False
    status_flags: int = _AUTOCOMMIT
    statement: StatementInfo | None = None  # the current (or last) statement
    sql: str | None = None  # text of the current (or last) COM_QUERY/COM_STMT_PREPARE
    prepared: dict[int, StatementInfo] = field(default_factory=dict)  # by statement id
    params: dict[int, int] = field(default_factory=dict)  # parameter count by statement id
    # Parameter types a client sent in an execute the backend never saw (the proxy
    # answered it): the next execute of that statement carries them (stmt_execute.py).
    unsent_types: dict[int, bytes] = field(default_factory=dict)
    # ANSI_QUOTES as last read from the backend (NO_BACKSLASH_ESCAPES is in every OK's
    # status flags); unknown at first and after a SET of sql_mode, until read.
    sql_mode: SqlMode = SqlMode.DEFAULT
    sql_mode_stale: bool = True
    commands: int = 0
    # Replication: the node's last committed seqno before this transaction's snapshot;
    # whether every statement since it began was a locking write of a table that reads
    # only what it locks (then the seqno at COMMIT will do), and the capture catalog the
    # tables were judged by (a DDL since then voids the verdict).
    last_seen: int = 0
    locking_writes_only: bool = False
    judged_by: object = None
    # When (time.monotonic()) the proxy last saw a transaction of this session end: a
    # brute-force abort decided on lock information older than that may name a
    # transaction that is gone, and must not touch the next one (Replication.abort_local).
    trx_ended_at: float = 0.0
    # Admission (proxy.admission): wsrep settings this session SET (else the node's);
    # the admission epoch it last passed with nothing to do (the relay skips admission
    # while it is current); the (increment, offset) its backend session was given.
    wsrep: dict[str, VarValue] = field(default_factory=dict)
    admitted: int = -1
    auto_increment: tuple[int, int] | None = None

    @property
    def in_transaction(self) -> bool:
        return bool(self.status_flags & _IN_TRANS)

    @property
    def autocommit(self) -> bool:
        return bool(self.status_flags & _AUTOCOMMIT)

    @property
    def parse_mode(self) -> SqlMode:
        """How the backend reads this session's SQL text right now."""
        mode = self.sql_mode & SqlMode.ANSI_QUOTES
        if self.status_flags & _NO_BACKSLASH_ESCAPES:
            mode |= SqlMode.NO_BACKSLASH_ESCAPES
        return mode

    def needs_sql_mode(self, sql: str) -> bool:
        """Whether to read sql_mode before classifying `sql`: only ANSI_QUOTES is unknown
        after a SET, and it only matters to text with a double quote."""
        return self.sql_mode_stale and '"' in sql

    def begin_statement(self, sql: str) -> StatementInfo:
        self.sql = sql
        self.statement = info = classify(sql, self.parse_mode)
        return info

    def begin_execute(self, payload: bytes) -> None:
        stmt_id = int.from_bytes(payload[1:5], "little")
        self.sql = None
        self.statement = self.prepared.get(stmt_id)
        params = self.params.get(stmt_id, 0)
        if params and (types := bound_types(payload, params)) is not None:
            self.unsent_types[stmt_id] = types  # until the execute reaches the backend

    def execute_to_send(self, payload: bytes) -> bytes | None:
        """The payload to send the backend for this execute, if it must differ (types
        it never got put back); None to send the client's bytes as they are."""
        stmt_id = int.from_bytes(payload[1:5], "little")
        types = self.unsent_types.pop(stmt_id, None)
        if types is None:
            return None
        params = self.params[stmt_id]
        return with_types(payload, params, types) if bound_types(payload, params) is None else None

    def statement_prepared(self, stmt_id: int, params: int) -> None:
        """The backend prepared the current statement as `stmt_id`. MariaDB resolves its
        unqualified tables in the database current now, whatever the session USEs later:
        so are its `tables` here."""
        self.params[stmt_id] = params
        info = self.statement
        if info is None:
            return
        if self.schema is not None and any(t.schema is None for t in info.tables):
            tables = tuple(TableName(t.schema or self.schema, t.name) for t in info.tables)
            info = replace(info, tables=tables)
        self.prepared[stmt_id] = info

    def closed_statement(self, stmt_id: int) -> None:
        self.prepared.pop(stmt_id, None)
        self.params.pop(stmt_id, None)
        self.unsent_types.pop(stmt_id, None)

    def statement_done(self, status_flags: int, ok: bool) -> None:
        """The backend's response to the current command ended with these flags."""
        was_in_transaction = self.status_flags & _IN_TRANS
        self.status_flags = status_flags
        info = self.statement
        if not status_flags & _IN_TRANS or (
            was_in_transaction
            and info is not None
            and (info.kind in _ENDS_TRANSACTION or info.implicit_commit)
        ):
            self.transaction_ended()
        if not ok or info is None or self.sql is None:
            return
        for each in classify_each(self.sql, self.parse_mode) if info.multi else (info,):
            if each.kind is StatementKind.USE and each.name:
                self.schema = each.name
            elif each.kind is StatementKind.SET and "sql_mode" in each.session_vars:
                self.sql_mode_stale = True

    def transaction_ended(self) -> None:
        self.trx_ended_at = time.monotonic()

    def reset(self, user: str | None = None, schema: str | None = None) -> None:
        """After COM_RESET_CONNECTION (same user, same schema) or COM_CHANGE_USER; the
        status flags come from the backend's OK as always."""
        if user is not None:
            self.user = user
            self.schema = schema
        self.statement = None
        self.sql = None
        self.prepared.clear()
        self.params.clear()
        self.unsent_types.clear()
        self.sql_mode_stale = True  # back to the server's default
        self.wsrep.clear()
        self.admitted = -1
        self.auto_increment = None

    def describe(self) -> str:
        trx = "in-trx" if self.in_transaction else "idle"
        mode = "autocommit" if self.autocommit else "manual-commit"
        return f"session {self.session_id} ({self.user}@{self.peer}, {self.schema}, {trx}, {mode})"
