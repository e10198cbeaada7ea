"""The proxy's side of replication: the sessions' commit path and the appliers.

Commit path (`Replication`, the relay's `CommitHook`), per client session:

- outside a transaction, every statement records `last_seen` = the gate's last committed
  seqno, before the backend takes the transaction's snapshot (a lower bound is safe);
- an autocommit write is wrapped: `START TRANSACTION`, the statement, then the commit
  below; the client gets one OK (or the error) at the end, so nothing commits uncertified;
- at COMMIT (or a statement that commits implicitly) the captured rows are drained on the
  client's own backend connection and replicated; a read-only transaction just commits.
  Passed: wait for the commit turn, position + COMMIT in one round trip, `commit(seqno)`,
  then the client's own COMMIT is forwarded (a no-op now) and the client gets the
  backend's answer. Failed: ROLLBACK, `ERROR 1213 (40001)`.
- a certified transaction the backend cannot commit in time (its locks may block an
  applier ahead of it) is rolled back and replayed from its write set on an applier
  connection: it is never lost, and its client still gets success.

Appliers (`Appliers`): N backend connections take passed remote write sets in seqno
order, apply them as soon as their `depends_seqno` committed (in parallel on disjoint
rows) and commit strictly in seqno order, each with the position in the same transaction.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Container, Sequence
from dataclasses import dataclass
from typing import TypeVar

import trio

from certification.limits import WriteSetTooLarge
from proxy.backend_client import BackendClient, BackendError, QueryResult, read_result, run_query
from proxy.capture import (
    CaptureError,
    Catalog,
    Position,
    RowImageError,
    decode_changes,
    discard,
    drain,
    prepare_applier_session,
)
from proxy.capture import mariadb_sql as sql
from proxy.capture.applier import apply_statements, fits_one_script, run_statements
from proxy.capture.position import UNDEFINED_UUID
from proxy.packet_stream import PacketStream, PeerClosed
from proxy.protocol.constants import ERR_HEADER, Capability, Command, ServerStatus
from proxy.protocol.packet_reader import Packet
from proxy.protocol.results import OkPacket, ResultSet, encode_reply, err_packet
from proxy.protocol.wire import ProtocolError, frame
from proxy.relay import BackendLost, Relay
from proxy.session import Session
from proxy.statement_class import StatementKind, classify, classify_each
from proxy.statement_types import StatementInfo
from proxy.toi import Isolation
from proxy.toi_plan import NotIsolatable
from wsrep.ordering import OrderingGate
from wsrep.provider import NotReady, OutcomeUnknown, Provider
from wsrep.stage_times import StageTimes
from wsrep.writeset import WriteSet, WriteSetFlags

log = logging.getLogger("wsrep.replication")

ER_LOCK_DEADLOCK = (
    1213,
    "40001",
    "Deadlock found when trying to get lock; try restarting transaction",
)
ER_NOT_READY = (1047, "08S01", "WSREP has not yet prepared node for application use")
ER_NOT_SUPPORTED = 1235
ER_ERROR_DURING_COMMIT = 1180
ER_UNKNOWN_ERROR = 1105  # MariaDB Galera's code for "Maximum writeset size exceeded"
ER_QUERY_INTERRUPTED = 1317

_APPLIER_VARIABLE = re.compile(re.escape(sql.APPLIER_FLAG), re.IGNORECASE)
_QUERY = int(Command.QUERY)
_STMT_EXECUTE = int(Command.STMT_EXECUTE)
_STMT_PREPARE = int(Command.STMT_PREPARE)
# COM_SET_OPTION MYSQL_OPTION_MULTI_STATEMENTS_ON
_MULTI_STATEMENTS_ON = bytes((Command.SET_OPTION,)) + (0).to_bytes(2, "little")
_IDLE = int(ServerStatus.AUTOCOMMIT)
_IN_TRANSACTION = int(ServerStatus.IN_TRANS | ServerStatus.IN_TRANS_READONLY)
_COMMITS = frozenset({StatementKind.TXN_COMMIT})
# Statements that may write without being DML themselves: wrapped like writes.
_MAY_WRITE = frozenset({StatementKind.CALL, StatementKind.EXECUTE})
MAX_APPLY_ATTEMPTS = 200
BF_ABORT_AFTER = 0.02  # seconds an apply runs before the lock watch looks for its blockers
# InnoDB's lock-wait tables are a cache it refreshes only when nobody read it for 0.1 s:
# reading them more often than that (counted from the last answer) would see the same
# stale waits forever. Another, rarer reader may have filled it up to 0.1 s before us.
LOCK_INFO_MAX_AGE = 0.1
LOCK_WAITS_EVERY = LOCK_INFO_MAX_AGE + 0.01
# An applier with at most this many write sets ahead of it that have not entered their
# commit waits for its turn, then sends rows, position and COMMIT as one script; farther
# behind, it applies its rows at once (their locks make local writers of those rows wait
# for it instead of failing certification) and commits in a second round trip. Always
# waiting costs the least CPU but ~4 points more certification failures under sysbench
# (docs/design/replication.md, "Appliers"): only when the turn is already there.
COMMIT_WITH_APPLY_WITHIN = 0
T = TypeVar("T")


async def kill_connection(
    thread_id: int, admin: BackendClient, seqno: int = 0, seen_after: float = 0.0
) -> None:
    """Abort a backend connection's transaction the only way MariaDB offers from outside."""
    with contextlib.suppress(BackendError):  # gone already
        await admin.query(f"KILL CONNECTION {int(thread_id)}")


# Every InnoDB lock wait: (waiting backend thread, blocking backend thread). Not those for
# the position row: its holder is the commit entered ahead (an applier sends its rows and
# position in one script), never one to abort.
LOCK_WAITS = (
    "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id "
    "FROM information_schema.INNODB_LOCK_WAITS w "
    "JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id "
    "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id "
    "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id "
    f"WHERE l.lock_table <> '{sql.POSITION}'"
)


def _lock_waits_query(read: int) -> str:
    """LOCK_WAITS, plus a row (0, 0) when InnoDB filled its cache for this very read:
    the cache then holds this read's own transaction running this text (`read` tells it
    from the earlier reads')."""
    mark = f"wsrep lock watch {read} "
    return (
        "START TRANSACTION WITH CONSISTENT SNAPSHOT; "
        f"SELECT /* {mark}*/ {LOCK_WAITS.removeprefix('SELECT ')} "
        "UNION ALL SELECT 0, 0 FROM information_schema.INNODB_TRX "
        f"WHERE trx_mysql_thread_id = CONNECTION_ID() AND trx_query LIKE '%{mark}%'; "
        "COMMIT"
    )


async def read_lock_waits(admin: BackendClient, read: int) -> tuple[list[tuple[int, int]], float]:
    """Every InnoDB lock wait (waiting, blocking backend thread), and a time
    (time.monotonic()) they describe the backend at or after: when this read was asked
    for if InnoDB refilled its cache for it; else LOCK_INFO_MAX_AGE before that (another
    reader filled it; one that reads more often than that freezes the cache for good)."""
    asked_at = time.monotonic()
    results = await admin.query_all(_lock_waits_query(read))
    waits = [(int(waiter or 0), int(blocker or 0)) for waiter, blocker in results[1].rows]
    if (0, 0) in waits:
        return [wait for wait in waits if wait != (0, 0)], asked_at
    return waits, asked_at - LOCK_INFO_MAX_AGE


class _Refused(Exception):
    def __init__(self, code: int, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.code, self.sqlstate, self.message = code, sqlstate, message


class _BackendGoneAfterCommit(Exception):
    """The session's backend connection broke after certification; the write set was
    replayed on an applier connection, so the transaction committed."""


class _StreamSession:
    """`SqlSession` over a client session's backend connection (between its commands)."""

    def __init__(self, stream: PacketStream, deprecate_eof: bool) -> None:
        self.stream = stream
        self.deprecate_eof = deprecate_eof
        self.status_flags = 0

    async def query(self, text: str) -> QueryResult:
        return (await self.query_all(text))[-1]

    async def query_all(self, text: str) -> list[QueryResult]:
        results = await run_query(self.stream, text, self.deprecate_eof)
        self.status_flags = results[-1].status_flags
        return results


@dataclass(slots=True)
class _CommitState:
    """Where a session's commit is, for brute-force aborts on behalf of appliers."""

    seqno: int = 0  # 0 until ordered
    replicating: bool = False  # waiting for the verdict: the backend connection is idle
    aborting: trio.Event | None = None  # set when a rollback for an applier is done
    rolled_back: bool = False  # so a passed verdict must be replayed, not committed
    turn: trio.CancelScope | None = None  # while waiting for the commit turn


@dataclass(slots=True)
class _Attempt:
    seqno: int
    turn: trio.CancelScope | None = None  # set while waiting for the commit turn


@dataclass(frozen=True, slots=True)
class ApplyJob:
    seqno: int
    ws: WriteSet
    depends_seqno: int
    done: trio.Event | None = None  # set once committed (replays wait on it)


class Appliers:
    """Apply remote write sets on `count` backend connections; commit in seqno order."""

    def __init__(self, connect: Callable[[], Awaitable[BackendClient]], count: int) -> None:
        self._connect = connect
        self.count = count
        self._provider: Provider | None = None
        self._threads: set[int] = set()  # backend thread ids of applier connections
        self._attempts: dict[int, _Attempt] = {}  # by applier thread: what it applies now
        # By applier thread: the seqno whose rows it is applying, and since when (for
        # `_watch_lock_waits`).
        self._applying: dict[int, tuple[int, float]] = {}
        # How to abort a local transaction holding a lock an applier waits for (the
        # proxy's sessions roll back in place, see `Replication.abort_local`).
        # Called with a time (time.monotonic()) the lock information is no older than.
        self.abort_local: Callable[[int, BackendClient, int, float], Awaitable[None]] = (
            kill_connection
        )
        # Runs ISOLATION write sets (TOI, proxy/toi.py): set by `Replication`.
        self.isolate: Callable[[int, WriteSet], Awaitable[None]] | None = None
        # Tables upserted in place (`Catalog.single_unique_key`, which TOI reloads): set by
        # `Replication`; without it every upsert is a REPLACE (right for any table).
        self.in_place: Callable[[], Container[tuple[str, str]]] = frozenset
        self._jobs_in, self._jobs = trio.open_memory_channel[ApplyJob](math.inf)
        self.times = StageTimes("appliers")

    def attach(self, provider: Provider) -> None:
        self._provider = provider
        self.times.name = f"{provider.node_name}: appliers"

    @property
    def provider(self) -> Provider:
        assert self._provider is not None, "attach() the provider first"
        return self._provider

    def enqueue(self, seqno: int, ws: WriteSet, depends_seqno: int) -> None:
        """The provider's apply callback (called in seqno order, never blocks)."""
        self._jobs_in.send_nowait(ApplyJob(seqno, ws, depends_seqno))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        clients = [await self._new_connection() for _ in range(self.count)]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_lock_waits)
                for client in clients:
                    nursery.start_soon(self._worker, client)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                for client in clients:
                    await self._close(client)

    async def replay(self, seqno: int, ws: WriteSet, depends_seqno: int) -> None:
        """Apply a local certified write set whose own commit failed, on a connection of
        its own (the appliers may be waiting for this very seqno); returns once committed."""
        client = await self._new_connection()
        try:
            client = await self._apply(client, ApplyJob(seqno, ws, depends_seqno))
        finally:
            await self._close(client)

    async def _new_connection(self) -> BackendClient:
        client = await self._connect()
        await prepare_applier_session(client)
        self._threads.add(client.thread_id)
        return client

    async def _close(self, client: BackendClient) -> None:
        self._threads.discard(client.thread_id)
        await client.aclose()

    async def _apply_with_bf_abort(
        self, client: BackendClient, seqno: int, apply: Awaitable[T]
    ) -> T:
        """Run `apply` (the rows of `seqno`, maybe its commit too: it calls `_applied` once
        the rows are in); if the rows wait for a lock, the holder is a local transaction
        that is not committing ahead of us (write sets ahead commit first, and disjoint
        keys apply in parallel): `_watch_lock_waits` aborts it, as Galera's brute-force
        abort does."""
        thread_id = client.thread_id
        self._applying[thread_id] = (seqno, trio.current_time())
        try:
            return await apply
        finally:
            self._applied(thread_id)

    def _applied(self, thread_id: int) -> None:
        """The rows are in: no lock wait of this applier is one to break any more."""
        self._applying.pop(thread_id, None)

    async def _watch_lock_waits(self) -> None:
        """One task for every apply (a task per apply cost more than its round trip): once
        an apply has run BF_ABORT_AFTER, read InnoDB's lock waits (at most every
        LOCK_WAITS_EVERY) and abort whatever blocks an apply. Every stalled apply stalls
        every later commit on this node, so it looks early: Galera aborts at once."""
        admin: BackendClient | None = None
        next_read = 0.0
        reads = itertools.count()
        try:
            while True:
                await trio.sleep(BF_ABORT_AFTER)
                now = trio.current_time()
                if now < next_read:
                    continue
                waiting = {
                    thread: seqno
                    for thread, (seqno, since) in self._applying.items()
                    if now - since >= BF_ABORT_AFTER
                }
                if not waiting:
                    continue
                next_read = now + LOCK_WAITS_EVERY
                try:
                    if admin is None:
                        admin = await self._connect()
                    waits, seen_after = await read_lock_waits(admin, next(reads))
                    next_read = trio.current_time() + LOCK_WAITS_EVERY
                    # Shielded: an abort cancelled half-way would leave the ROLLBACK's
                    # reply unread on the session's backend connection and the abort
                    # unrecorded (its client would commit).
                    with trio.CancelScope(shield=True):
                        for waiter, blocker in waits:
                            seqno = waiting.get(waiter)
                            if seqno is not None and self._applying.get(waiter, (0,))[0] == seqno:
                                await self._abort_blocker(blocker, seqno, admin, seen_after)
                except (BackendError, PeerClosed, ProtocolError, OSError) as exc:
                    log.warning(
                        "%s: looking for lock holders failed: %s", self.provider.node_name, exc
                    )
                    if admin is not None:
                        with trio.CancelScope(shield=True):
                            await admin.aclose()
                    admin = None
        finally:
            if admin is not None:
                with trio.CancelScope(shield=True):
                    await admin.aclose()

    async def _abort_blocker(
        self, victim: int, seqno: int, admin: BackendClient, seen_after: float
    ) -> None:
        if victim in self._threads:
            await self._abort_applier(victim, seqno, admin)
        elif victim:
            log.info(
                "%s: seqno %d waits for local backend thread %d: aborting it",
                self.provider.node_name,
                seqno,
                victim,
            )
            await self.abort_local(victim, admin, seqno, seen_after)

    async def _abort_applier(self, thread_id: int, seqno: int, admin: BackendClient) -> None:
        """An applier of a later write set holds a lock `seqno` needs (InnoDB locks more
        than the certification keys: gaps, secondary indexes): it lets go and re-applies
        after `seqno`, like Galera's abort of a lower-priority applier."""
        state = self._attempts.get(thread_id)
        if state is None or state.seqno <= seqno:
            return  # an earlier write set: it commits first, just wait
        if state.turn is not None:
            state.turn.cancel()
        else:
            with contextlib.suppress(BackendError):
                await admin.query(f"KILL QUERY {int(thread_id)}")

    async def _worker(self, client: BackendClient) -> None:
        async for job in self._jobs:
            self.provider.dequeued(job.seqno)
            if WriteSetFlags.ISOLATION in job.ws.flags:
                assert self.isolate is not None, "TOI needs a Replication"
                await self.isolate(job.seqno, job.ws)
                continue
            client = await self._apply(client, job)

    async def _apply(self, client: BackendClient, job: ApplyJob) -> BackendClient:
        """Apply and commit `job`, retrying on backend errors (a lock wait timeout behind a
        local transaction, a lost connection); returns the connection to go on with."""
        provider = self.provider
        gate = provider.gate
        try:
            changes = decode_changes(job.ws.data)
        except RowImageError as exc:
            # Certified everywhere, so every node reads the same bytes: all fail alike.
            log.error(
                "%s: seqno %d: unreadable rows (%s): skipped", provider.node_name, job.seqno, exc
            )
            await gate.wait_commit_turn(job.seqno)
            provider.commit(job.seqno)
            return client
        serial = False
        for attempt in range(1, MAX_APPLY_ATTEMPTS + 1):
            thread_id = client.thread_id
            state = self._attempts[thread_id] = _Attempt(job.seqno)
            try:
                # After an abort, wait for every write set ahead: no lock fight twice.
                with self.times.stage("apply turn"):
                    await gate.wait_apply_turn(job.seqno - 1 if serial else job.depends_seqno)
                statements = apply_statements(changes, self.in_place())
                if job.seqno - 1 - gate.last_entered <= COMMIT_WITH_APPLY_WITHIN and (
                    fits_one_script(statements)
                ):
                    # At (or near) our commit turn: wait for it holding no locks, then
                    # rows, position and COMMIT in one round trip.
                    with self.times.stage("commit turn"):
                        await gate.wait_commit_order(job.seqno)
                    with self.times.stage("apply+commit"):
                        await self._apply_with_bf_abort(
                            client,
                            job.seqno,
                            commit_in_order(
                                client.stream,
                                bool(client.capabilities & Capability.DEPRECATE_EOF),
                                provider_position(provider, job.seqno),
                                gate,
                                statements,
                                functools.partial(self._applied, client.thread_id),
                            ),
                        )
                    break
                # Rows now (beside the write sets ahead), commit at our turn.
                with self.times.stage("apply"):
                    await self._apply_with_bf_abort(
                        client, job.seqno, run_statements(client, statements)
                    )
                with trio.CancelScope() as state.turn, self.times.stage("commit turn"):
                    await gate.wait_commit_order(job.seqno)
                if state.turn.cancel_called and gate.last_entered < job.seqno - 1:
                    log.info(
                        "%s: seqno %d holds locks an earlier write set needs: re-applying",
                        provider.node_name,
                        job.seqno,
                    )
                    await client.query(sql.ROLLBACK)
                    serial = True
                    continue
                state.turn = None
                with self.times.stage("commit"):
                    await commit_in_order(
                        client.stream,
                        bool(client.capabilities & Capability.DEPRECATE_EOF),
                        provider_position(provider, job.seqno),
                        gate,
                    )
                break
            except (BackendError, PeerClosed, ProtocolError, OSError) as exc:
                log.warning(
                    "%s: applying seqno %d failed (attempt %d): %s; retrying",
                    provider.node_name,
                    job.seqno,
                    attempt,
                    exc,
                )
                client = await self._reconnect(client)
                serial = True
                await trio.sleep(min(1.0, 0.05 * attempt))
            finally:
                self._attempts.pop(thread_id, None)
        else:  # like Galera: a node that cannot apply what the cluster committed must stop
            raise RuntimeError(f"{provider.node_name}: cannot apply seqno {job.seqno}")
        provider.commit(job.seqno)
        log.debug("%s: applied seqno %d (%d rows)", provider.node_name, job.seqno, len(changes))
        return client

    async def _reconnect(self, client: BackendClient) -> BackendClient:
        try:
            await client.query(sql.ROLLBACK)
            return client
        except (BackendError, PeerClosed, ProtocolError, OSError):
            await self._close(client)
        return await self._new_connection()


class Replication:
    """The relay's commit hook for one node (shared by all sessions)."""

    def __init__(
        self,
        provider: Provider,
        appliers: Appliers,
        catalog: Catalog,
        commit_turn_timeout: float = 5.0,
    ) -> None:
        self.provider = provider
        self.appliers = appliers
        self.commit_turn_timeout = commit_turn_timeout
        appliers.abort_local = self.abort_local
        self.isolation = Isolation(
            provider, appliers._connect, catalog, self.abort_local, appliers._threads
        )
        appliers.isolate = self.isolation.apply
        appliers.in_place = lambda: self.catalog.single_unique_key
        self._relays: weakref.WeakValueDictionary[int, Relay] = weakref.WeakValueDictionary()
        self._committing: dict[int, _CommitState] = {}  # by backend thread
        self._aborted: set[int] = set()  # rolled back for an applier: next statement gets 1213
        self.times = StageTimes(f"{provider.node_name}: commit path")

    @property
    def catalog(self) -> Catalog:
        """The replicated tables' shapes as the drain needs them (TOI reloads them)."""
        return self.isolation.catalog

    async def session_opened(self, relay: Relay) -> None:
        """The drain sends several statements at once: allow that on the backend
        connection (text from a client that did not ask for it is still refused, in
        `_check_statement`). Capture rows left by an earlier connection with the same id
        are not ours."""
        if not relay.session.capabilities & Capability.MULTI_STATEMENTS:
            await relay.backend.send(frame(_MULTI_STATEMENTS_ON, 0))
            reply = (await relay.backend.read_packet()).payload
            if reply[:1] == bytes((ERR_HEADER,)):
                raise ProtocolError(f"backend refused multi-statements: {reply[9:]!r}")
        await discard(_StreamSession(relay.backend, relay.deprecate_eof))
        self._relays[relay.session.backend_thread_id] = relay

    async def abort_local(
        self, thread_id: int, admin: BackendClient, seqno: int, seen_after: float
    ) -> None:
        """Brute-force abort for an applier: roll back a proxy session's transaction on
        its own backend connection while it is between commands (its client gets 1213
        next); interrupt a statement in flight first; leave a session in its commit path
        waiting for its verdict is rolled back too (replayed if it passes), one waiting
        for its commit turn behind `seqno` lets go of its locks and is replayed after.
        The victim is the transaction the lock information (true at or after
        `seen_after`) saw: if the session ended a transaction since, that one may be
        gone, and the abort would hit the next, innocent one; the watch looks again."""
        relay = self._relays.get(thread_id)
        if relay is None:  # not a session of this proxy: a direct backend connection
            await kill_connection(thread_id, admin)
            return
        if relay.session.trx_ended_at >= seen_after:
            log.debug(
                "session %d: a transaction ended since the lock information for seqno %d: "
                "not aborted",
                relay.session.session_id,
                seqno,
            )
            return
        state = self._committing.get(thread_id)
        if state is not None:
            if state.turn is not None and state.seqno > seqno:
                state.turn.cancel()
            elif state.replicating and state.aborting is None and not state.rolled_back:
                state.aborting = done = trio.Event()
                try:
                    await self._rollback(relay, _StreamSession(relay.backend, relay.deprecate_eof))
                    state.rolled_back = True
                    self.provider.stats.local_bf_aborts += 1
                finally:
                    done.set()
            return
        if relay.hold is not None:
            return  # being rolled back in place already
        if relay.busy:
            # The statement fails with 1317; `after_error` (or `_refusal`) rolls the
            # transaction back and makes that a 1213, as Galera answers a BF abort.
            relay.bf_killed = True
            with contextlib.suppress(BackendError):
                await admin.query(f"KILL QUERY {int(thread_id)}")
            return
        relay.hold = hold = trio.Event()
        try:
            await self._rollback(relay, _StreamSession(relay.backend, relay.deprecate_eof))
            relay.bf_killed = False
            self._aborted.add(thread_id)
            self.provider.stats.local_bf_aborts += 1
        finally:
            relay.hold = None
            hold.set()

    async def after_error(self, relay: Relay, response: bytes) -> bytes:
        """The statement a brute-force abort interrupted ends in 1317 on the backend, with
        its transaction still open: roll that back and tell the client 1213. A deadlock
        (1213) from the backend itself rolled the whole transaction back, and an error
        packet carries no status flags: the session is out of its transaction now (else
        its next write would run as an uncertified autocommit on this node only)."""
        at = _error_at(response, ER_QUERY_INTERRUPTED) if relay.bf_killed else -1
        if at >= 0:
            relay.bf_killed = False
            await self._rollback(relay, _StreamSession(relay.backend, relay.deprecate_eof))
            self.provider.stats.local_bf_aborts += 1
            log.info(
                "session %d: statement interrupted for an applier: rolled back, 1213",
                relay.session.session_id,
            )
            return response[:at] + err_packet(*ER_LOCK_DEADLOCK, response[at + 3])
        if relay.session.in_transaction and _error_at(response, ER_LOCK_DEADLOCK[0]) >= 0:
            flags = relay.session.status_flags & ~_IN_TRANSACTION
            relay.session.status_flags = relay.tracker.status_flags = flags
            log.info(
                "session %d: the backend rolled the transaction back (deadlock)",
                relay.session.session_id,
            )
        return response

    def _refusal(self, relay: Relay, exc: BackendError) -> _Refused:
        """A backend error for the client (a statement run here, then rolled back)."""
        if exc.code == ER_QUERY_INTERRUPTED and relay.bf_killed:
            relay.bf_killed = False
            self.provider.stats.local_bf_aborts += 1
            return _Refused(*ER_LOCK_DEADLOCK)
        return _Refused(exc.code, exc.sqlstate, exc.message)

    async def before_command(self, relay: Relay, packet: Packet) -> bool:
        """True when the command was answered here (the relay must not forward it)."""
        command = packet.payload[0]
        session = relay.session
        info = session.statement
        if session.backend_thread_id in self._aborted:
            self._aborted.discard(session.backend_thread_id)
            if info is None or info.kind is not StatementKind.TXN_ROLLBACK:
                await self._reply_error(relay, packet, *ER_LOCK_DEADLOCK)
                return True
        try:
            if command == _STMT_PREPARE:
                self._check_text(session.sql)
                return False
            if info is None:
                return False
            if self.isolation.running:
                await self._isolation_barrier(relay, info)
            if not session.in_transaction:
                session.last_seen = self.provider.gate.last_committed
                session.locking_writes_only, session.judged_by = True, self.catalog
            if session.locking_writes_only and not _keeps_locking_only(self.catalog, session, info):
                session.locking_writes_only = False
            self._check_text(session.sql)
            self._check_statement(session, info)
            if _isolated(info):
                await self._isolate(relay, packet, info)
                return True
            if session.in_transaction:
                if info.kind in _COMMITS or info.implicit_commit or _sets_autocommit(info):
                    if not await self._commit(relay, packet):
                        return True
                    if info.kind in _COMMITS and not info.modifiers and not info.multi:
                        # Committed on the backend already: a forwarded COMMIT would be a
                        # no-op costing a round trip. Its answer: not in a transaction.
                        flags = session.status_flags & ~_IN_TRANSACTION
                        relay.tracker.status_flags = flags
                        await self._reply_ok(relay, packet, OkPacket(0, 0, flags, 0))
                        return True
                    return False
                return False
            if _may_write(info) and session.autocommit:
                await self._autocommit_write(relay, packet)
                return True
        except _Refused as refused:
            await self._reply_error(relay, packet, refused.code, refused.sqlstate, refused.message)
            return True
        except _BackendGoneAfterCommit:
            await self._reply_ok(relay, packet, OkPacket(0, 0, _IDLE, 0))
            raise BackendLost() from None
        return False

    # ---- checks --------------------------------------------------------------------------

    def _check_text(self, text: str | None) -> None:
        if text is not None and _APPLIER_VARIABLE.search(text):
            raise _Refused(1227, "42000", f"{sql.APPLIER_FLAG} is reserved for wsrep appliers")

    def _check_statement(self, session: Session, info: StatementInfo) -> None:
        if info.inner is not None and _isolated(classify(info.inner, session.parse_mode)):
            raise _Refused(
                ER_NOT_SUPPORTED,
                "42000",
                "wsrep-proxy replicates DDL and account statements sent as statements "
                "themselves, not through PREPARE or EXECUTE IMMEDIATE",
            )
        if info.multi and not session.capabilities & Capability.MULTI_STATEMENTS:
            raise _Refused(
                1064,
                "42000",
                "You have an error in your SQL syntax: several statements in "
                "one query, and the client did not enable multi-statements",
            )
        if info.multi and session.sql is not None:
            wrapped = not session.in_transaction and session.autocommit
            statements = classify_each(session.sql, session.parse_mode)
            if any(
                _replicates(each) or each.implicit_commit or (wrapped and _may_write(each))
                for each in statements
            ):
                raise _Refused(
                    ER_NOT_SUPPORTED,
                    "42000",
                    "wsrep-proxy does not replicate multi-statement text with writes or "
                    "COMMIT yet: send the statements one by one",
                )

    # ---- total order isolation -----------------------------------------------------------

    async def _isolation_barrier(self, relay: Relay, info: StatementInfo) -> None:
        """A TOI statement runs on this node and capture does not follow its new shapes
        yet: a write must not go through the old capture triggers (or none, on a table
        just created). Outside a transaction it waits for the TOI; inside one it aborts
        the transaction (1213): it began before the TOI, so certification would fail it
        on the TOI's tables anyway, and waiting could wait for a metadata lock it holds.
        A COMMIT goes on: rows it wrote on the TOI's tables hold the metadata lock the
        DDL waits for, so they were captured and are drained with the old shape (and
        the watchdog aborts the transaction)."""
        session = relay.session
        if not _may_write(info):
            return
        if not session.in_transaction:
            await self.isolation.wait_finished()
            return
        await self._rollback(relay, _StreamSession(relay.backend, relay.deprecate_eof))
        raise _Refused(*ER_LOCK_DEADLOCK)

    async def _isolate(self, relay: Relay, packet: Packet, info: StatementInfo) -> None:
        """A DDL or account statement: it commits an open transaction first (implicitly,
        as on MariaDB), then runs under total order isolation (proxy/toi.py) on the
        client's own backend connection; the client gets the server's answer."""
        session = relay.session
        if session.in_transaction and not await self._commit(relay, packet):
            return
        if session.sql is None:
            raise _Refused(
                ER_NOT_SUPPORTED,
                "42000",
                "wsrep-proxy replicates DDL and account statements sent as text only, "
                "not as prepared statements",
            )
        backend = _StreamSession(relay.backend, relay.deprecate_eof)
        try:
            prepared = await self.isolation.prepare(
                backend, packet.payload[1:], session.sql, info, session.parse_mode
            )
        except NotIsolatable as exc:
            raise _Refused(ER_NOT_SUPPORTED, "42000", str(exc)) from None
        except BackendError as exc:
            raise _Refused(exc.code, exc.sqlstate, exc.message) from None

        async def execute() -> QueryResult | BackendError:
            await relay.backend.send(relay.backend_bytes(packet))
            try:
                return await read_result(relay.backend, relay.deprecate_eof)
            except BackendError as exc:
                return exc

        try:
            _, outcome = await self.isolation.run_local(
                prepared, session.backend_thread_id, execute
            )
        except NotReady as exc:
            log.info("session %d: %s", session.session_id, exc)
            raise _Refused(*ER_NOT_READY) from None
        except OutcomeUnknown as exc:
            raise _Refused(ER_ERROR_DURING_COMMIT, "HY000", str(exc)) from None
        if isinstance(outcome, BackendError):
            raise _Refused(outcome.code, outcome.sqlstate, outcome.message)
        self._set_flags(relay, outcome.status_flags)
        await self._reply_ok(relay, packet, _result_reply(outcome, outcome.status_flags))

    # ---- commit path ---------------------------------------------------------------------

    async def _commit(self, relay: Relay, packet: Packet) -> bool:
        """Certify and commit the open transaction; False if the client got an error."""
        backend = _StreamSession(relay.backend, relay.deprecate_eof)
        thread_id = relay.session.backend_thread_id
        state = self._committing[thread_id] = _CommitState()
        try:
            await self._certify_and_commit(relay, backend, state)
        except _Refused as refused:
            await self._rollback(relay, backend)
            await self._reply_error(relay, packet, refused.code, refused.sqlstate, refused.message)
            return False
        finally:
            self._committing.pop(thread_id, None)
            relay.session.transaction_ended()
        self._set_flags(relay, backend.status_flags)
        return True

    async def _certify_and_commit(
        self, relay: Relay, backend: _StreamSession, state: _CommitState
    ) -> None:
        session = relay.session
        provider = self.provider
        last_seen = self._last_seen(session)  # before the drain's read view
        try:
            with self.times.stage("drain"):
                captured = await drain(backend, self.catalog)
        except CaptureError as exc:
            raise _Refused(ER_ERROR_DURING_COMMIT, "HY000", f"wsrep capture: {exc}") from None
        except BackendError as exc:
            raise self._refusal(relay, exc) from None
        if not captured.changes:  # read-only: nothing to replicate
            await backend.query(sql.COMMIT)
            return
        ws = WriteSet(
            provider.node_name,
            provider.new_trx_id(),
            last_seen,
            tuple(captured.keys),
            captured.payload(),
        )
        state.replicating = True
        try:
            provider.limits.check_rows(len(captured.changes))
            with self.times.stage("replicate"):
                replicated = await provider.replicate(ws)
        except NotReady as exc:
            log.info("session %d: %s", session.session_id, exc)
            raise _Refused(*ER_NOT_READY) from None
        except OutcomeUnknown as exc:
            raise _Refused(ER_ERROR_DURING_COMMIT, "HY000", str(exc)) from None
        except WriteSetTooLarge as exc:
            log.warning("session %d: %s: rolled back", session.session_id, exc)
            if exc.what == "rows":  # MariaDB Galera's words and codes for each limit
                code, message = ER_ERROR_DURING_COMMIT, "wsrep_max_ws_rows exceeded"
            else:
                code, message = ER_UNKNOWN_ERROR, f"Maximum writeset size exceeded: {exc}"
            raise _Refused(code, "HY000", message) from None
        finally:
            state.replicating = False  # no new abort starts; wait for one under way
            if state.aborting is not None:
                await state.aborting.wait()
        seqno, verdict = replicated.seqno, replicated.verdict
        state.seqno = seqno
        if not verdict.passed:
            log.info(
                "session %d: seqno %d failed certification (%s): 1213",
                session.session_id,
                seqno,
                verdict.describe(),
            )
            raise _Refused(*ER_LOCK_DEADLOCK)
        if state.rolled_back:
            log.info(
                "session %d: seqno %d was aborted for an applier while replicating: replaying",
                session.session_id,
                seqno,
            )
            committed: str | None = "aborted"
        else:
            with trio.CancelScope(shield=True):  # certified: commit it here if we can
                committed = await self._commit_in_order(relay, backend, state)
        if committed is None:
            self.provider.commit(seqno)
            self.provider.stats.local_commits += 1
            return
        # Not committed here: replay it from the write set (cancellable, so a node that
        # shuts down meanwhile can stop; the rest of the cluster has it either way).
        await self.appliers.replay(seqno, ws, verdict.depends_seqno)
        if committed == "backend lost":
            raise _BackendGoneAfterCommit()

    def _last_seen(self, session: Session) -> int:
        """The seqno to certify from. A transaction of locking writes only (no read view
        until the drain's) read the latest committed version of every row it wrote, under
        a lock no applier could pass: the node's last committed seqno now will do
        (docs/design/certification.md). Not if a DDL changed the tables it was judged by,
        or runs now."""
        if (
            session.locking_writes_only
            and session.judged_by is self.catalog
            and not self.isolation.running
        ):
            return self.provider.gate.last_committed
        return session.last_seen

    async def _commit_in_order(
        self, relay: Relay, backend: _StreamSession, state: _CommitState
    ) -> str | None:
        """Position + COMMIT at our turn; None if done, else why the replay must do it."""
        gate = self.provider.gate
        seqno = state.seqno
        with trio.move_on_after(self.commit_turn_timeout) as state.turn:
            with self.times.stage("commit turn"):
                await gate.wait_commit_order(seqno)
        state.turn = None
        try:
            if gate.last_entered < seqno - 1:
                raise TimeoutError("an applier ahead needs our locks, or no turn in time")
            with self.times.stage("commit"):
                result = await commit_in_order(
                    relay.backend,
                    relay.deprecate_eof,
                    provider_position(self.provider, seqno),
                    gate,
                )
            backend.status_flags = result.status_flags
        except (BackendError, TimeoutError) as exc:
            # Our locks may hold up an applier ahead of us: let go of them and replay.
            log.warning(
                "session %d: seqno %d certified but not committed (%s): replaying",
                relay.session.session_id,
                seqno,
                exc,
            )
            await self._rollback(relay, backend)
            return "not committed"
        except (PeerClosed, ProtocolError) as exc:
            log.warning(
                "session %d: seqno %d certified, backend connection lost (%s): replaying",
                relay.session.session_id,
                seqno,
                exc,
            )
            return "backend lost"
        return None

    async def _autocommit_write(self, relay: Relay, packet: Packet) -> None:
        """START TRANSACTION, the statement, certify + COMMIT; one answer to the client."""
        backend = _StreamSession(relay.backend, relay.deprecate_eof)
        try:
            await backend.query(sql.BEGIN)
            await relay.backend.send(relay.backend_bytes(packet))
            results = [await read_result(relay.backend, relay.deprecate_eof)]
            while results[-1].status_flags & ServerStatus.MORE_RESULTS_EXISTS:
                results.append(await read_result(relay.backend, relay.deprecate_eof))
        except BackendError as exc:
            await self._rollback(relay, backend)
            raise self._refusal(relay, exc) from None
        result = results[-1]
        if len(results) > 1 or (result.columns and packet.payload[0] != _QUERY):
            await self._rollback(relay, backend)
            raise _Refused(
                ER_NOT_SUPPORTED,
                "42000",
                "wsrep-proxy: a write returning several results, or rows to a prepared "
                "statement, needs an explicit transaction",
            )
        try:
            if not await self._commit(relay, packet):
                return
        except _BackendGoneAfterCommit:
            await self._reply_ok(relay, packet, _result_reply(result, _IDLE))
            raise BackendLost() from None
        # The flags after the COMMIT (`_commit` set them), not the wrapped statement's:
        # clients such as mysql-connector track "in transaction" from them.
        await self._reply_ok(relay, packet, _result_reply(result, relay.session.status_flags))

    async def _rollback(self, relay: Relay, backend: _StreamSession) -> None:
        """(A backend connection that broke has rolled back by itself.)"""
        try:
            await backend.query(sql.ROLLBACK)
        except (BackendError, PeerClosed, ProtocolError) as exc:
            log.warning("session %d: rollback failed: %s", relay.session.session_id, exc)
        relay.session.transaction_ended()
        self._set_flags(relay, backend.status_flags)

    async def _reply_ok(self, relay: Relay, packet: Packet, reply: ResultSet | OkPacket) -> None:
        flags = reply.status_flags if isinstance(reply, OkPacket) else relay.session.status_flags
        await relay.client.send(
            encode_reply(
                reply,
                seq=packet.last_seq + 1,
                deprecate_eof=relay.deprecate_eof,
                status_flags=flags,
            )
        )
        relay.session.statement_done(flags, True)

    async def _reply_error(
        self, relay: Relay, packet: Packet, code: int, sqlstate: str, message: str
    ) -> None:
        await relay.client.send(err_packet(code, sqlstate, message, packet.last_seq + 1))
        relay.session.statement_done(relay.session.status_flags, False)

    def _set_flags(self, relay: Relay, flags: int) -> None:
        if flags:
            relay.session.status_flags = flags
            relay.tracker.status_flags = flags


def _result_reply(result: QueryResult, flags: int) -> ResultSet | OkPacket:
    if result.columns:
        return ResultSet(result.columns, result.rows)
    return OkPacket(result.affected_rows, result.last_insert_id, flags, result.warnings)


def _error_at(response: bytes, code: int) -> int:
    """Where the ERR packet with `code` ending `response` starts, or -1."""
    end = len(response)
    for at in range(max(0, end - 1024), end - 8):
        if (
            int.from_bytes(response[at : at + 3], "little") == end - at - 4
            and response[at + 4] == ERR_HEADER
            and int.from_bytes(response[at + 5 : at + 7], "little") == code
        ):
            return at
    return -1


async def commit_in_order(
    stream: PacketStream,
    deprecate_eof: bool,
    position: Position,
    gate: OrderingGate,
    before: Sequence[str] = (),
    applied: Callable[[], object] | None = None,
) -> QueryResult:
    """Position + COMMIT in one round trip, at the seqno's commit turn (`wait_commit_order`).
    Once the position update returns, this transaction holds the position row's lock: a
    later seqno's update waits for our COMMIT, so nothing can overtake us and the next
    seqno may start its commit now (`gate.enter`): the backend flushes its log for both
    at once instead of one after the other. The update only takes if the seqno that
    entered before us committed (`entered_before`); if not, the backend skips our COMMIT
    and BackendError says so (roll back; replay after it). Returns the COMMIT's result.
    `before`: statements sent first in the same packet (an applier's rows; the first that
    fails stops the rest, COMMIT included), `applied()` called once they ran."""
    seqno = position.seqno
    update = sql.advance_position(position.cluster_uuid, seqno, gate.entered_before(seqno))
    script = "; ".join((*before, update, sql.COMMIT))
    await stream.send(frame(bytes((_QUERY,)) + script.encode(), 0))
    for _ in before:
        await read_result(stream, deprecate_eof)
    if applied is not None:
        applied()
    if (await read_result(stream, deprecate_eof)).affected_rows == 1:
        gate.enter(seqno)
    await read_result(stream, deprecate_eof)  # the check: raises if the update did not take
    return await read_result(stream, deprecate_eof)


def provider_position(provider: Provider, seqno: int) -> Position:
    view = provider.view
    return Position(str(view.cluster_uuid) if view else UNDEFINED_UUID, seqno)


def _replicates(info: StatementInfo) -> bool:
    """Statements that change replicated data or commit it."""
    return (info.is_write and not info.temporary) or info.kind in _COMMITS


def _isolated(info: StatementInfo) -> bool:
    """DDL and account statements: total order isolation (temporary tables stay local)."""
    return info.kind in (StatementKind.DDL, StatementKind.ACCOUNT) and not info.temporary


def _may_write(info: StatementInfo) -> bool:
    return info.is_write or info.kind in _MAY_WRITE


# Statements that read no rows and take no snapshot.
_READ_NOTHING = frozenset(
    {StatementKind.TXN_COMMIT, StatementKind.TXN_ROLLBACK, StatementKind.SAVEPOINT}
)


def _keeps_locking_only(catalog: Catalog, session: Session, info: StatementInfo) -> bool:
    """Whether a transaction of locking writes so far still is one after `info`: it is a
    locking write of tables whose writes read only what they lock, or reads nothing."""
    if info.multi:
        return False
    if info.kind is StatementKind.DML:
        return (
            info.locking_write
            and bool(info.tables)
            and all(
                catalog.writes_only_lock((t.schema or session.schema or "", t.name))
                for t in info.tables
            )
        )
    if info.kind is StatementKind.TXN_BEGIN:
        return "WITH CONSISTENT SNAPSHOT" not in info.modifiers
    return info.kind in _READ_NOTHING


def _sets_autocommit(info: StatementInfo) -> bool:
    return info.kind is StatementKind.SET and "autocommit" in info.session_vars
