"""May this node run a client's statement now, and must it wait for causality first?

Galera refuses application queries on a node that is not ready (outside the primary
component, or still joining) with `ERROR 1047 (08S01) WSREP has not yet prepared node for
application use`, except SET, SHOW, USE and SELECTs that read no table (`SELECT @@x`,
`SELECT 1`); with `wsrep_dirty_reads` a plain SELECT is allowed too. We also let ROLLBACK
through: it changes nothing replicated and lets a client clean up.

On a ready node, a statement whose `wsrep_sync_wait` bit the session has set waits until
this node has committed everything the cluster had ordered when the statement arrived
(Galera's causal read), bounded by a timeout that ends in Galera's `ERROR 1205 (HY000)
Lock wait timeout exceeded`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from proxy.protocol.results import ErrPacket
from proxy.session import Session
from proxy.sql_text import SqlMode, TokenCursor
from proxy.statement_class import StatementInfo, StatementKind, classify_each, split_statements
from wsrep.ordering import OrderingGate

log = logging.getLogger("wsrep.admission")

K = StatementKind

NOT_READY = ErrPacket(1047, "08S01", "WSREP has not yet prepared node for application use")
LOCK_WAIT_TIMEOUT = ErrPacket(
    1205, "HY000", "Lock wait timeout exceeded; try restarting transaction"
)


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE = "refuse"  # ERROR 1047: the node is not ready
    WAIT_FOR_CAUSALITY = "wait"  # ready, but wsrep_sync_wait asks to catch up first


# Always allowed on a node that is not ready.
_NOT_READY_KINDS = frozenset({K.SET, K.SHOW, K.USE, K.EMPTY, K.TXN_ROLLBACK})


def reads_no_table(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> bool:
    """Whether a SELECT reads no table (`SELECT 1`, `SELECT @@x`, `... FROM DUAL`)."""
    cur = TokenCursor(sql, 0, mode)
    return not any(tok.upper == "FROM" and cur.word() != "DUAL" for tok in cur.rest())


def _allowed_when_not_ready(
    info: StatementInfo, sql: str | None, mode: SqlMode, dirty: bool
) -> bool:
    if info.kind in _NOT_READY_KINDS:
        return True
    if info.kind is K.READ:
        return dirty or (sql is not None and reads_no_table(sql, mode))
    return False


def admit(
    info: StatementInfo,
    sql: str | None,
    mode: SqlMode = SqlMode.DEFAULT,
    *,
    ready: bool,
    dirty_reads: bool = False,
    sync_wait: int = 0,
) -> Verdict:
    """The verdict for `info` (the classified `sql`; None for a prepared statement being
    executed, judged by its kind alone)."""
    if not ready:
        statements: tuple[tuple[StatementInfo, str | None], ...] = ((info, sql),)
        if sql is not None and info.multi:
            parts = split_statements(sql, mode)
            statements = tuple(zip(classify_each(sql, mode), parts, strict=True))
        allowed = all(_allowed_when_not_ready(i, text, mode, dirty_reads) for i, text in statements)
        return Verdict.ALLOW if allowed else Verdict.REFUSE
    if sync_wait & info.sync_wait_bit:
        return Verdict.WAIT_FOR_CAUSALITY
    return Verdict.ALLOW


async def wait_for_causality(
    cluster_seqno: Callable[[], Awaitable[int]], gate: OrderingGate, timeout: float
) -> ErrPacket | None:
    """Until this node has committed the cluster's last ordered seqno as of now; the
    error to send instead if that takes longer than `timeout` seconds.

    `cluster_seqno` is the provider's causal barrier (Galera orders a message through the
    group and takes its seqno): it is part of the wait, so a partitioned group that never
    answers times out too.
    """
    with trio.move_on_after(timeout):
        target = await cluster_seqno()
        await gate.wait_committed(target)
        return None
    log.warning(
        "causal wait timed out after %.1fs (committed up to seqno %d)",
        timeout,
        gate.last_committed,
    )
    return LOCK_WAIT_TIMEOUT


class SessionSettings(Protocol):
    """Where a session's wsrep settings live (`proxy.wsrep_status.WsrepInterceptor`)."""

    def sync_wait(self, session: Session) -> int: ...

    def dirty_reads(self, session: Session) -> bool: ...


class NodeAdmission:
    """What the relay awaits before it forwards a statement (COM_QUERY, COM_STMT_EXECUTE):
    None to go on, or the error to answer instead. `ready()` is the provider's
    `wsrep_ready`; `cluster_seqno()` its causal barrier; `gate` the node's commit order."""

    def __init__(
        self,
        ready: Callable[[], bool],
        settings: SessionSettings,
        cluster_seqno: Callable[[], Awaitable[int]],
        gate: OrderingGate,
        causal_timeout: float = 30.0,  # Galera's repl.causal_read_timeout
    ) -> None:
        self.ready = ready
        self.settings = settings
        self.cluster_seqno = cluster_seqno
        self.gate = gate
        self.causal_timeout = causal_timeout

    async def check(self, session: Session) -> ErrPacket | None:
        info = session.statement
        if info is None:
            return None
        verdict = admit(
            info,
            session.sql,
            session.parse_mode,
            ready=self.ready(),
            dirty_reads=self.settings.dirty_reads(session),
            sync_wait=self.settings.sync_wait(session),
        )
        if verdict is Verdict.REFUSE:
            log.info("session %d: refused, node not ready", session.session_id)
            return NOT_READY
        if verdict is Verdict.WAIT_FOR_CAUSALITY:
            return await wait_for_causality(self.cluster_seqno, self.gate, self.causal_timeout)
        return None
