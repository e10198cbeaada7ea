"""Total order isolation (Galera's `wsrep_OSU_method=TOI`) for DDL and account statements.

The statement itself is replicated, as an ISOLATION write set carrying its text, the
session context it needs (current database, sql_mode, character sets, ...; see
`toi_payload`) and TABLE keys of what it touches (`toi_plan`). The provider orders it
like any write set and never fails it; its keys make concurrent row write sets on those
tables that did not see it fail, and every later write set waits for it. Each node runs
it at its seqno with nothing else in flight: once everything before it committed, and
before anything after it starts (`Isolation._run_at`):

- the origin runs it on the client's own backend connection, so the client gets the
  server's exact answer or error; other nodes run it on a connection of their own, with
  the origin session's context set first;
- local transactions holding metadata locks it waits for are brute-force aborted (their
  clients get 1213), found with MariaDB's metadata_lock_info plugin;
- after a DDL the capture triggers are regenerated for the new shapes and the catalog the
  drain uses is reloaded, before the seqno counts as committed (so any write set captured
  with the old triggers has `last_seen` below it and fails certification);
- the node's position is recorded at the seqno, success or error;
- every node then orders a report of its outcome (0 or the error code); the majority's
  is the cluster's (`toi_vote`, Galera 4's inconsistency voting): a node whose own
  differs logs an ERROR, counts it and stops serving (Galera makes it leave the cluster).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Container, Iterable
from dataclasses import dataclass

import trio

from proxy.backend_client import BackendClient, BackendError, QueryResult, read_result
from proxy.capture import Catalog, Position, commit_at, drop_capture, follow
from proxy.capture import mariadb_sql as sql
from proxy.capture.position import UNDEFINED_UUID
from proxy.capture.session import SqlSession, text
from proxy.packet_stream import PeerClosed
from proxy.protocol.constants import Capability, Command
from proxy.protocol.wire import ProtocolError, frame
from proxy.sql_text import SqlMode
from proxy.statement_class import classify
from proxy.statement_types import StatementInfo
from proxy.toi_payload import IsolatedStatement, IsolationOutcome, PayloadError, decode, encode
from proxy.toi_plan import IsolationPlan, Name, NotIsolatable, plan_isolation
from proxy.toi_vote import Inconsistent, Voting
from wsrep.provider import Provider
from wsrep.writeset import WriteSet, WriteSetFlags

log = logging.getLogger("wsrep.toi")

BF_ABORT_AFTER = 0.2  # seconds a TOI statement waits for a metadata lock before aborting
ESCALATE_AFTER = 5  # rounds of aborting its tables' lock holders before whole schemas
UNREADABLE = 0xFFFF  # outcome of a payload this node cannot read (every node alike)
_FLAGS = WriteSetFlags.ISOLATION | WriteSetFlags.COMMIT
_REPORT_FLAGS = WriteSetFlags.ISOLATION | WriteSetFlags.ROLLBACK
_LOST = (BackendError, PeerClosed, ProtocolError, OSError)

Connect = Callable[[], Awaitable[BackendClient]]
# abort(thread id, admin connection, seqno): brute-force abort of a local backend thread.
AbortLocal = Callable[[int, BackendClient, int, float], Awaitable[None]]
Outcome = QueryResult | BackendError


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement ready to replicate, from the origin session's context."""

    plan: IsolationPlan
    statement: IsolatedStatement


class Isolation:
    """TOI on one node: `prepare`/`run_local` at the origin, `apply` for the appliers."""

    def __init__(
        self,
        provider: Provider,
        connect: Connect,
        catalog: Catalog,
        abort_local: AbortLocal,
        applier_threads: Container[int] = (),
    ) -> None:
        self.provider = provider
        self.catalog = catalog  # what the drain reads; replaced after each DDL
        self._connect = connect
        self._abort_local = abort_local
        self._applier_threads = applier_threads
        self._voting = Voting()
        self._running: trio.Event | None = None  # set when the TOI running here is done
        # This node's outcome reports, ordered by `run` (never from an applier: a submit
        # may wait for flow control, which waits for the appliers).
        self._reports_in, self._reports = trio.open_memory_channel[IsolationOutcome](math.inf)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send this node's outcome reports (run it beside the provider)."""
        task_status.started()
        provider = self.provider
        async for report in self._reports:
            ws = WriteSet(
                provider.node_name,
                provider.new_trx_id(),
                report.seqno,
                (),
                encode(report),
                _REPORT_FLAGS,
            )
            await provider.announce(ws)

    @property
    def running(self) -> bool:
        """A TOI statement runs here now (from its start until capture follows it)."""
        return self._running is not None

    async def wait_finished(self) -> None:
        while self._running is not None:
            await self._running.wait()

    # ---- the origin ----------------------------------------------------------------------

    async def prepare(
        self, session: SqlSession, raw: bytes, statement: str, info: StatementInfo, mode: SqlMode
    ) -> Prepared:
        """Read the session's context on its own backend connection (one round trip) and
        plan the statement (`raw` as the client sent it, read as `statement`); raises
        NotIsolatable for what TOI does not replicate."""
        row = (await session.query(sql.TOI_CONTEXT_QUERY)).rows[0]
        schema = None if row[0] is None else text(row[0])
        plan = plan_isolation(statement, info, schema, mode)
        definer = sql.account(text(row[1])) if plan.definer_at is not None else None
        values = [None if v is None else text(v) for v in row[2:]]
        variables = tuple(zip(sql.TOI_VARIABLES, values, strict=True))
        return Prepared(plan, IsolatedStatement(raw, schema, definer, variables))

    async def run_local(
        self, prepared: Prepared, thread_id: int, execute: Callable[[], Awaitable[Outcome]]
    ) -> tuple[int, Outcome]:
        """Replicate, then run `execute` (the client's own packet on its backend
        connection, backend thread `thread_id`) at the seqno. Returns (seqno, outcome).
        Raises NotReady / OutcomeUnknown from the provider if it was not ordered."""
        provider = self.provider
        ws = WriteSet(
            provider.node_name,
            provider.new_trx_id(),
            provider.gate.last_committed,
            prepared.plan.keys(self.catalog.shapes),
            encode(prepared.statement),
            _FLAGS,
        )
        seqno = (await provider.replicate(ws)).seqno
        log.info(
            "%s: TOI seqno %d: %s %s %s",
            provider.node_name,
            seqno,
            prepared.plan.verb,
            prepared.plan.object,
            _shown(prepared.statement.text.decode("utf-8", "replace")),
        )
        with trio.CancelScope(shield=True):  # ordered: it runs here, whatever happens
            threads = lambda: (thread_id,)  # noqa: E731
            outcome = await self._run_at(seqno, ws.origin, prepared.plan, execute, threads)
        return seqno, outcome

    # ---- the appliers --------------------------------------------------------------------

    async def apply(self, seqno: int, ws: WriteSet) -> None:
        """An ordered ISOLATION write set: a statement to run, or a node's report."""
        try:
            payload = decode(ws.data)
        except PayloadError as exc:  # the same bytes everywhere: every node fails alike
            log.error("%s: TOI seqno %d unreadable (%s)", self.provider.node_name, seqno, exc)
            payload = None
        if isinstance(payload, IsolationOutcome):
            view = self.provider.view
            members = view.members if view is not None else ()
            electorate = frozenset(m.id for m in members if not m.arbitrator)
            verdict = self._voting.vote(
                payload.seqno, ws.origin, payload.error, payload.origin, electorate
            )
            self._inconsistent(verdict)
            await self.provider.gate.wait_commit_turn(seqno)
            self.provider.commit(seqno)
            return
        if payload is None or WriteSetFlags.ROLLBACK in ws.flags:
            await self._run_at(seqno, ws.origin, None, _unreadable, tuple)
            return
        statement = payload
        text = statement.text.decode("utf-8", "replace")
        plan = _replan(statement, text)
        connection: BackendClient | None = None

        async def execute() -> Outcome:
            nonlocal connection
            connection = await self._connect()
            try:
                if statement.schema is not None:
                    await connection.query(sql.use_schema(statement.schema))
                for name, value in statement.variables:
                    await connection.query(sql.set_session_variable(name, value))
                run = statement.text
                if plan is not None and statement.definer is not None:
                    run = plan.with_definer(run, text, statement.definer)
                return await _query_bytes(connection, run)
            except BackendError as exc:
                return exc

        def threads() -> tuple[int, ...]:
            return () if connection is None else (connection.thread_id,)

        try:
            await self._run_at(seqno, ws.origin, plan, execute, threads)
        finally:
            if connection is not None:
                with trio.CancelScope(shield=True):
                    await connection.aclose()

    # ---- both ----------------------------------------------------------------------------

    async def _run_at(
        self,
        seqno: int,
        origin: str,
        plan: IsolationPlan | None,
        execute: Callable[[], Awaitable[Outcome]],
        threads: Callable[[], Iterable[int]],
    ) -> Outcome:
        """Run `execute` (on backend threads `threads()`) once everything before `seqno`
        committed, BF-aborting holders of metadata locks it waits for; then capture
        follows the new shapes, the position is recorded and the seqno committed,
        whatever the outcome: it is ordered."""
        provider = self.provider
        await provider.gate.wait_commit_turn(seqno)
        outcome: Outcome = BackendError(UNREADABLE, "HY000", "not run")
        self._running = running = trio.Event()
        try:
            admin = await self._connect()
            try:
                failure: Exception | None = None
                async with trio.open_nursery() as nursery:
                    waiters = lambda: {admin.thread_id, *threads()}  # noqa: E731
                    nursery.start_soon(self._bf_abort_mdl_holders, seqno, plan, waiters)
                    try:
                        moving = plan is not None and _moves_across_schemas(plan)
                        if moving:
                            assert plan is not None
                            shapes = self.catalog.shapes
                            await drop_capture(admin, [n for n in plan.tables if n in shapes])
                        outcome = await execute()
                        if plan is not None and plan.reshapes and (
                            moving or isinstance(outcome, QueryResult)
                        ):
                            await self._follow_shapes(admin, seqno, plan)
                    except _LOST as exc:  # re-raised below, not wrapped in an exception group
                        failure = exc
                    nursery.cancel_scope.cancel()
                if failure is not None:
                    raise failure
                view = provider.view
                uuid = str(view.cluster_uuid) if view else UNDEFINED_UUID
                await commit_at(admin, Position(uuid, seqno))
            finally:
                with trio.CancelScope(shield=True):
                    await admin.aclose()
        except _LOST as exc:  # the backend went away: this node no longer knows its data
            provider.mark_inconsistent(f"TOI seqno {seqno} could not complete: {exc}")
        finally:  # committed before the writes waiting for it go on (they need its seqno)
            error = outcome.code if isinstance(outcome, BackendError) else 0
            provider.commit(seqno)
            self._running = None
            running.set()
        log.info("%s: TOI seqno %d done: %s", provider.node_name, seqno, _result(error))
        self._reports_in.send_nowait(IsolationOutcome(seqno, error, origin))
        self._inconsistent(self._voting.ran(seqno, error))
        return outcome

    async def _follow_shapes(self, admin: BackendClient, seqno: int, plan: IsolationPlan) -> None:
        touched = {*plan.tables, *(n for n in self.catalog.shapes if n[0] in plan.schemas)}
        try:
            self.catalog = await follow(admin, self.catalog, touched)
        except BackendError as exc:
            self.provider.mark_inconsistent(
                f"TOI seqno {seqno}: capture triggers could not follow the new shape: {exc}"
            )

    async def _bf_abort_mdl_holders(
        self, seqno: int, plan: IsolationPlan | None, waiters: Callable[[], set[int]]
    ) -> None:
        """Galera BF-aborts local transactions whose metadata locks a TOI statement waits
        for; so does this, for the statement and the trigger regeneration after it: first
        the holders of its tables and their FK neighbours, then, if it still waits (a
        lock we cannot name), of any table in their schemas."""
        await trio.sleep(BF_ABORT_AFTER)
        tables, schemas = self._lock_scope(plan)
        try:
            admin = await self._connect()
        except _LOST as exc:
            log.warning("%s: cannot look for metadata lock holders: %s", self._name, exc)
            return
        try:
            for attempt in itertools.count():
                if attempt == ESCALATE_AFTER:
                    schemas = sorted({*schemas, *(s for s, _ in tables)})
                ours = waiters() | {admin.thread_id}
                query = sql.mdl_blockers(sorted(ours), tables, schemas)
                asked_at = time.monotonic()  # metadata locks are read live
                rows = (await admin.query(query)).rows
                # Shielded: this task is cancelled as soon as the statement gets its lock,
                # which an abort's own rollback brings about; a cancelled abort would leave
                # the rollback's reply unread on the victim's connection.
                with trio.CancelScope(shield=True):
                    for (raw,) in rows:
                        victim = int(raw or 0)
                        if victim in ours or victim in self._applier_threads or not victim:
                            continue
                        log.info(
                            "%s: TOI seqno %d waits for a metadata lock of backend thread %d: "
                            "aborting it",
                            self._name,
                            seqno,
                            victim,
                        )
                        await self._abort_local(victim, admin, seqno, asked_at)
                await trio.sleep(BF_ABORT_AFTER)
        except _LOST as exc:
            log.warning("%s: looking for metadata lock holders failed: %s", self._name, exc)
        finally:
            with trio.CancelScope(shield=True):
                await admin.aclose()

    def _lock_scope(self, plan: IsolationPlan | None) -> tuple[list[Name], list[str]]:
        """The tables whose metadata locks the statement may need (its own and their FK
        parents and children), and the schemas it takes whole."""
        if plan is None:
            return [], []
        tables = set(plan.tables)
        for name in plan.tables:
            if (shape := self.catalog.shapes.get(name)) is not None:
                tables |= {(fk.parent_schema, fk.parent_table) for fk in shape.foreign_keys}
            tables |= {(fk.schema, fk.table) for fk in self.catalog.referencing.get(name, ())}
        return sorted(tables), sorted(plan.schemas)

    def _inconsistent(self, verdict: Inconsistent | None) -> None:
        if verdict is not None:
            reason = verdict.describe()
            log.error("%s: %s", self._name, reason)
            self.provider.mark_inconsistent(reason)

    @property
    def _name(self) -> str:
        return self.provider.node_name


def _moves_across_schemas(plan: IsolationPlan) -> bool:
    """RENAME TABLE / ALTER TABLE ... RENAME into another database."""
    return (
        plan.verb in ("RENAME", "ALTER")
        and plan.object == "TABLE"
        and len({schema for schema, _ in plan.tables}) > 1
    )


async def _unreadable() -> Outcome:
    return BackendError(UNREADABLE, "HY000", "unreadable TOI payload")


async def _query_bytes(connection: BackendClient, statement: bytes) -> QueryResult:
    """COM_QUERY with the statement's exact bytes (`BackendClient.query` takes text)."""
    await connection.stream.send(frame(bytes((Command.QUERY,)) + statement, 0))
    deprecate_eof = bool(connection.capabilities & Capability.DEPRECATE_EOF)
    return await read_result(connection.stream, deprecate_eof)


def _replan(statement: IsolatedStatement, text: str) -> IsolationPlan | None:
    """The plan again, from the text read under the origin's sql_mode (for the metadata
    locks, capture and the definer); None if it does not plan (it runs anyway: the
    origin accepted it)."""
    mode = SqlMode.from_sql_mode(dict(statement.variables).get("sql_mode") or "")
    try:
        return plan_isolation(text, classify(text, mode), statement.schema, mode)
    except (NotIsolatable, ValueError):
        return None


def _result(error: int) -> str:
    return f"error {error}" if error else "OK"


def _shown(statement: str, limit: int = 200) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
