"""What the proxy knows about one client session, at every moment.

Pure state, updated by the relay from the packets it forwards: the server status flags
of every OK/EOF that ends a response (in transaction? autocommit?), the current schema,
and the classification of the statement being run. The replication layer hooks in here:
before a statement is forwarded and at COMMIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from proxy.protocol.constants import ServerStatus

_USE = re.compile(r"\s*use\s+(`(?:[^`]|``)+`|[^\s;`]+)\s*;?\s*$", re.IGNORECASE | re.DOTALL)


def classify(sql: str) -> str:
    """The statement's kind. Stand-in until proxy/statement_class.py lands: the first
    keyword, upper-cased."""
    words = sql.lstrip(" \t\r\n(").split(None, 1)
    return words[0].upper() if words else ""


def used_schema(sql: str) -> str | None:
    """The schema a `USE db` statement switches to, None for any other statement."""
    match = _USE.match(sql)
    if not match:
        return None
    name = match.group(1)
    if name.startswith("`"):
        return name[1:-1].replace("``", "`")
    return name


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
    status_flags: int = ServerStatus.AUTOCOMMIT
    statement: str | None = None  # classification of the current (or last) statement
    sql: str | None = None  # text of the current (or last) COM_QUERY/COM_STMT_PREPARE
    prepared: dict[int, str] = field(default_factory=dict)  # stmt id -> classification
    commands: int = 0

    @property
    def in_transaction(self) -> bool:
        return bool(self.status_flags & ServerStatus.IN_TRANS)

    @property
    def autocommit(self) -> bool:
        return bool(self.status_flags & ServerStatus.AUTOCOMMIT)

    def begin_statement(self, sql: str) -> str:
        self.sql = sql
        self.statement = classify(sql)
        return self.statement

    def begin_execute(self, stmt_id: int) -> None:
        self.statement = self.prepared.get(stmt_id)

    def statement_done(self, status_flags: int, ok: bool) -> None:
        """The backend's response to the current command ended with these flags."""
        self.status_flags = status_flags
        if ok and self.sql is not None and self.statement == "USE":
            self.schema = used_schema(self.sql) or self.schema

    def reset(self, user: str | None = None, schema: str | None = None) -> None:
        """After COM_RESET_CONNECTION (same user, same schema) or COM_CHANGE_USER."""
        if user is not None:
            self.user = user
            self.schema = schema
        self.status_flags = ServerStatus.AUTOCOMMIT
        self.statement = None
        self.sql = None
        self.prepared.clear()

    def describe(self) -> str:
        trx = "in-trx" if self.in_transaction else "idle"
        mode = "autocommit" if self.autocommit else "manual-commit"
        return f"session {self.session_id} ({self.user}@{self.peer}, {self.schema}, {trx}, {mode})"
