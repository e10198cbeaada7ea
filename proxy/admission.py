"""May this node run a client's statement now, and must it wait for causality first?

A node that is not ready (outside the primary component, or still joining) refuses with
`ERROR 1047 (08S01) WSREP has not yet prepared node for application use`, by MariaDB's
rule (sql_parse.cc), checked statement by statement against a real non-primary 10.11 +
galera-4 node: allowed are SET, USE, SHOW (DESCRIBE/EXPLAIN of a table is a SHOW) and a
SELECT that reads no table (`SELECT 1`, `SELECT @@x`, `FROM DUAL`); everything else,
ROLLBACK and `DO 1` included, is refused. With `wsrep_dirty_reads` every statement that
changes no data is allowed too (SELECT, FOR UPDATE too; BEGIN/COMMIT/ROLLBACK;
EXPLAIN). Where our text classifier cannot tell, we refuse: CALL, EXECUTE, LOCK and
unclassified statements (a procedure could write unreplicated rows), and reads of
information_schema tables (Galera allows those).

Other commands follow MariaDB's `dispatch_command` check: COM_FIELD_LIST, COM_REFRESH,
COM_DEBUG, COM_CHANGE_USER and COM_RESET_CONNECTION are refused too; COM_INIT_DB (USE),
COM_PING, COM_STATISTICS, COM_QUIT, COM_SET_OPTION and the prepared-statement housekeeping
are allowed.

A node that just lost its primary component (a leader change, as when the leader's node
is stopped: tens of milliseconds without a leader) holds a statement it would refuse for
up to `not_ready_hold` seconds since it lost it, and runs it if the node is ready again by
then: clients of the surviving nodes see a pause, not 1047, across a leader change. A node
that has been out of the primary component longer, or was never ready, refuses at once.

On a ready node, a statement whose `wsrep_sync_wait` bit the session has set waits until
this node has committed everything the cluster had ordered when the statement arrived
(Galera's causal read; not inside a transaction, whose snapshot is taken), bounded by a
timeout that ends in Galera's `ERROR 1205 (HY000) Lock wait timeout exceeded`.

`NodeAdmission` is the relay's hook. It also keeps each session's backend
`auto_increment_increment/offset` in step with the cluster (`proxy.auto_increment`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from proxy.auto_increment import AutoIncrementControl
from proxy.backend_client import BackendError, run_query
from proxy.capture.mariadb_sql import set_auto_increment
from proxy.protocol.constants import Command
from proxy.protocol.packet_reader import Packet
from proxy.protocol.results import ErrPacket
from proxy.relay import Relay
from proxy.session import Session
from proxy.sql_text import SqlMode, TokenCursor
from proxy.statement_class import StatementInfo, StatementKind, classify_each, split_statements
from wsrep.causal import CausalBarrierError
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


# Allowed on a node that is not ready; reads of no table too.
_NOT_READY_KINDS = frozenset({K.SET, K.SHOW, K.USE, K.EMPTY})
# Allowed as well with wsrep_dirty_reads: statements that change no data.
_DIRTY_KINDS = frozenset(
    {
        K.READ,
        K.LOCKING_READ,
        K.EXPLAIN,
        K.TXN_BEGIN,
        K.TXN_COMMIT,
        K.TXN_ROLLBACK,
        K.SAVEPOINT,
        K.PREPARE,
        K.DEALLOCATE,
    }
)
# What may follow EXPLAIN/DESCRIBE when it explains a statement rather than shows a table.
_EXPLAINED = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES", "TABLE", "FORMAT",
     "EXTENDED", "PARTITIONS", "FOR", "ANALYZE"}
)  # fmt: skip


def reads_no_table(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> bool:
    """Whether `sql` is a SELECT that reads no table (`SELECT 1`, `SELECT @@x`,
    `... FROM DUAL`); DO, VALUES and the like are not SELECTs to Galera's rule."""
    cur = TokenCursor(sql, 0, mode)
    while cur.accept_text("("):
        pass
    if not cur.accept("SELECT"):
        return False
    return not any(tok.upper == "FROM" and cur.word() != "DUAL" for tok in cur.rest())


def shows_a_table(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> bool:
    """`DESCRIBE t` / `EXPLAIN t [col]`: MariaDB's SHOW COLUMNS, not an explained query."""
    cur = TokenCursor(sql, 0, mode)
    cur.next()
    return cur.is_ident() and cur.word() not in _EXPLAINED


def _allowed_when_not_ready(
    info: StatementInfo, sql: str | None, mode: SqlMode, dirty: bool
) -> bool:
    if info.kind in _NOT_READY_KINDS or (dirty and info.kind in _DIRTY_KINDS):
        return True
    if sql is None:  # an executed prepared statement: no text to look into
        return False
    if info.kind is K.READ:
        return reads_no_table(sql, mode)
    return info.kind is K.EXPLAIN and shows_a_table(sql, mode)


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
    error to send instead if that takes longer than `timeout` seconds (1205), or if the
    node left the primary component meanwhile (1047).

    `cluster_seqno` is the provider's causal barrier (Galera orders a message through the
    group and takes its seqno): it is part of the wait, so a partitioned group that never
    answers times out too.
    """
    with trio.move_on_after(timeout):
        try:
            target = await cluster_seqno()
        except CausalBarrierError as exc:
            log.info("causal wait refused: %s", exc)
            return NOT_READY
        await gate.wait_committed(target)
        return None
    log.warning(
        "causal wait timed out after %.1fs (committed up to seqno %d)",
        timeout,
        gate.last_committed,
    )
    return LOCK_WAIT_TIMEOUT


class SessionSettings(Protocol):
    """A session's wsrep settings, its own or the node's (`proxy.wsrep_status`)."""

    def sync_wait(self, session: Session) -> int: ...

    def dirty_reads(self, session: Session) -> bool: ...


_QUERY = int(Command.QUERY)
_STMT_EXECUTE = int(Command.STMT_EXECUTE)
_STATEMENTS = frozenset({_QUERY, int(Command.STMT_PREPARE), _STMT_EXECUTE})
# Refused on a node that is not ready by MariaDB's dispatch_command (no CF_SKIP_WSREP_CHECK).
_REFUSED_COMMANDS = frozenset(
    {Command.FIELD_LIST, Command.REFRESH, Command.DEBUG, Command.CHANGE_USER,
     Command.RESET_CONNECTION}
)  # fmt: skip


class NodeAdmission:
    """The relay's admission hook (`ProxyConfig.admission`).

    `ready()` is the provider's `wsrep_ready`; `cluster_seqno()` its causal barrier;
    `gate` the node's commit order; `auto_increment` the values sessions must use (None:
    leave them alone); `not_ready_hold` how long after losing readiness a statement waits
    for it to come back before 1047. Call `changed()` on every view or state change (in
    trio): it moves `epoch`, so every session is checked again before its next command (the
    relay skips sessions whose `admitted` epoch is current).
    """

    def __init__(
        self,
        ready: Callable[[], bool],
        settings: SessionSettings,
        cluster_seqno: Callable[[], Awaitable[int]],
        gate: OrderingGate,
        causal_timeout: float = 30.0,  # Galera's repl.causal_read_timeout
        auto_increment: AutoIncrementControl | None = None,
        not_ready_hold: float = 0.0,
    ) -> None:
        self.ready = ready
        self.settings = settings
        self.cluster_seqno = cluster_seqno
        self.gate = gate
        self.causal_timeout = causal_timeout
        self.auto_increment = auto_increment
        self.not_ready_hold = not_ready_hold
        self.epoch = 0
        self._was_ready = ready()
        self._lost_at: float | None = None  # trio time readiness was lost, if it was
        self._ready_again = trio.Event()

    def changed(self) -> None:
        self.epoch += 1
        ready = self.ready()
        if ready and not self._was_ready:
            self._lost_at = None
            self._ready_again.set()
            self._ready_again = trio.Event()
        elif self._was_ready and not ready:
            self._lost_at = trio.current_time()
        self._was_ready = ready

    async def check(self, relay: Relay, packet: Packet) -> bool:
        """True when the command was answered here (the backend never sees it)."""
        session = relay.session
        command = packet.payload[0]
        error = await self.verdict(relay, command)
        if error is None:
            return False
        await relay.reply(packet, error)
        session.statement_done(session.status_flags, False)
        return True

    async def verdict(self, relay: Relay, command: int) -> ErrPacket | None:
        """The error to answer `command` with instead of running it, if any."""
        session = relay.session
        if not self.ready():
            if not (
                command in _REFUSED_COMMANDS
                or (command in _STATEMENTS and not self._allowed_when_not_ready(session))
            ):
                return None
            if not await self._ready_again_in_time():
                log.debug("session %d: refused, node not ready", session.session_id)
                return NOT_READY
        if command not in (_QUERY, _STMT_EXECUTE):
            return None
        wanted = None if self.auto_increment is None else self.auto_increment.values
        if wanted is not None and session.auto_increment != wanted:
            await self._set_auto_increment(relay, wanted)
        sync_wait = self.settings.sync_wait(session)
        info = session.statement
        if sync_wait:  # checked on every statement
            if info is not None and not session.in_transaction and sync_wait & info.sync_wait_bit:
                return await wait_for_causality(self.cluster_seqno, self.gate, self.causal_timeout)
        elif wanted is None or session.auto_increment == wanted:
            session.admitted = self.epoch  # nothing to do until the node changes
        return None

    async def _ready_again_in_time(self) -> bool:
        """Whether the node, not ready now, is ready again within `not_ready_hold` of
        losing readiness (waiting for it)."""
        if self._lost_at is None:
            return False
        with trio.move_on_at(self._lost_at + self.not_ready_hold):
            while not self.ready():
                await self._ready_again.wait()
        return self.ready()

    def _allowed_when_not_ready(self, session: Session) -> bool:
        info = session.statement
        if info is None:  # an unknown prepared statement id: the backend says so
            return True
        dirty = self.settings.dirty_reads(session)
        verdict = admit(info, session.sql, session.parse_mode, ready=False, dirty_reads=dirty)
        return verdict is Verdict.ALLOW

    async def _set_auto_increment(self, relay: Relay, values: tuple[int, int]) -> None:
        """The session's own values: a backend session keeps what the global values were
        when it connected, so one opened before a view change would collide."""
        session = relay.session
        try:
            sql = set_auto_increment("SESSION", *values)
            await run_query(relay.backend, sql, relay.deprecate_eof)
        except BackendError as exc:
            log.warning("session %d: cannot set auto_increment: %s", session.session_id, exc)
            return
        session.auto_increment = values
