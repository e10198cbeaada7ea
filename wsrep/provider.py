"""The provider: replicate local write sets, certify every ordered one, order commits.

It owns the group member, the certification index (inside `ProviderCore`, the pure part)
and the `OrderingGate`. `run` takes the group's events in order, in the group's core
task: each write set is decoded and certified (the same verdicts on every node); a local
session waiting for its own write set gets the verdict; passed write sets from elsewhere go to the
application's `apply` callback; failed ones are skipped in the gate. Views move the node
state (Galera's OPEN -> PRIMARY -> JOINED -> SYNCED) and `ready`.

The application side (the proxy) calls, like Galera's wsrep API: `replicate(ws)` at
commit, then `gate.wait_commit_turn(seqno)`, its own commit, `commit(seqno)`. It knows no
SQL: write-set data is opaque here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from certification.index import Verdict
from certification.limits import NO_LIMITS, WriteSetLimits, WriteSetTooLarge
from wsrep.causal import CausalBarrier
from wsrep.group.types import Behind, Deliver, MemberId, View, ViewChange
from wsrep.group_node import (
    GroupEvent,
    GroupNode,
    PayloadTooLarge,
    SubmitRefused,
    SubmitTimeout,
)
from wsrep.node_state import NodeState
from wsrep.ordering import OrderingGate
from wsrep.provider_core import Action, ProviderCore
from wsrep.writeset import WriteSet, WriteSetFlags, encode

log = logging.getLogger("wsrep.provider")

# apply(seqno, write set, depends_seqno): queue a passed remote write set for the appliers;
# they must `commit(seqno)` when done. Called in seqno order; must not block.
ApplyCallback = Callable[[int, WriteSet, int], None]


class NotReady(Exception):
    """The node is not in a primary component (Galera's ER_UNKNOWN_COM_ERROR 1047 case)."""


class OutcomeUnknown(Exception):
    """The write set was sent but no verdict came in time; if it is ordered later it is
    applied by the appliers like a remote one, so the node stays consistent."""


@dataclass(frozen=True, slots=True)
class Replicated:
    seqno: int
    verdict: Verdict


@dataclass(slots=True)
class _Waiter:
    done: trio.Event
    result: Replicated | None = None


@dataclass(slots=True)
class ProviderStats:
    replicated: int = 0
    replicated_bytes: int = 0
    local_commits: int = 0
    local_cert_failures: int = 0
    local_bf_aborts: int = 0  # local transactions aborted for an applier
    toi_inconsistencies: int = 0  # TOI statements whose outcome here differed from the origin's
    received: int = 0


class Provider:
    def __init__(
        self,
        group: GroupNode,
        apply: ApplyCallback,
        initial_seqno: int = 0,
        limits: WriteSetLimits = NO_LIMITS,
    ) -> None:
        self.group = group
        # Galera's wsrep_max_ws_rows/size: this node's own writes only, checked before
        # ordering (never in certification: nodes may be configured differently).
        self.limits = limits
        self.node_name: MemberId = group.config.member.id
        self.core = ProviderCore(self.node_name, initial_seqno)
        self.gate = OrderingGate(initial_seqno)
        self.stats = ProviderStats()
        self.inconsistency = ""  # the first reason this node was found inconsistent
        self._apply = apply
        self._waiters: dict[tuple[MemberId, int], _Waiter] = {}
        self._receive_queue: set[int] = set()  # handed to the appliers, none took it yet
        # Unique per origin across restarts: nanoseconds at start, then counting.
        self._next_trx_id = time.time_ns()
        self._state_changed = trio.Event()
        # Galera's gcs_caused(), for causal reads: its `run` must run beside `run`.
        self.causal = CausalBarrier(group.submit, self.node_name, group.submit_timeout)
        # Called on every view and state change (auto-increment control, admission).
        self.state_listeners: list[Callable[[], None]] = []
        # How long a commit that finds the node outside a primary component waits for it
        # before NotReady (1047): a leader change leaves it so for tens of milliseconds.
        self.not_ready_hold = 0.0

    # ---- for the application side --------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.core.ready

    @property
    def state(self) -> NodeState:
        return self.core.state.state

    @property
    def view(self) -> View | None:
        return self.core.view

    def new_trx_id(self) -> int:
        self._next_trx_id += 1
        return self._next_trx_id

    async def replicate(self, ws: WriteSet, timeout: float = 30.0) -> Replicated:
        """Order `ws` and certify it; a failed verdict's seqno is already skipped (seqno 0:
        it was known to fail before ordering and was not sent). A passed one must be
        committed: wait for the commit turn, commit, then `commit(seqno)`.
        If the caller is cancelled before the verdict, the write set (if ordered and
        passed) is applied by the appliers instead."""
        if not self.ready:
            with trio.move_on_after(self.not_ready_hold):
                await self.wait_state(True)
            if not self.ready:
                raise NotReady(
                    f"{self.node_name} is {self.state.name}, not in a primary component"
                )
        if ws.flags == WriteSetFlags.COMMIT:  # a plain transaction (TOI is always ordered)
            early = self.core.index.precheck(ws.keys, ws.last_seen)
            if not early.passed:
                # A write set ordered since `last_seen` already wrote one of our keys: it
                # would fail certification on every node once ordered, so it is not sent
                # (seqno 0).
                self.stats.local_cert_failures += 1
                return Replicated(0, early)
        key = (ws.origin, ws.trx_id)
        waiter = self._waiters[key] = _Waiter(trio.Event())
        payload = encode(ws, self.limits)
        try:
            try:
                await self.group.submit(payload, timeout)
            except PayloadTooLarge:  # Galera's repl.max_ws_size; the node is fine
                limit = self.group.config.max_payload
                raise WriteSetTooLarge("bytes", len(payload), limit) from None
            except SubmitRefused as exc:
                raise NotReady(f"{self.node_name}: write set not ordered: {exc}") from None
            except SubmitTimeout:
                log.warning(
                    "%s: %s: no seqno in %.0fs, waiting once more",
                    self.node_name,
                    ws.describe(),
                    timeout,
                )
            with trio.move_on_after(timeout):
                await waiter.done.wait()
        finally:
            self._waiters.pop(key, None)
        if waiter.result is None:
            raise OutcomeUnknown(f"{self.node_name}: no verdict for {ws.describe()}")
        self.stats.replicated += 1
        self.stats.replicated_bytes += len(payload)
        if not waiter.result.verdict.passed:
            self.stats.local_cert_failures += 1
        return waiter.result

    async def announce(self, ws: WriteSet) -> None:
        """Order `ws` without waiting for it (a TOI outcome report): best effort, a lost
        report only means no comparison."""
        try:
            await self.group.submit(encode(ws), self.group.submit_timeout)
        except (SubmitRefused, SubmitTimeout) as exc:
            log.warning("%s: %s not ordered: %s", self.node_name, ws.describe(), exc)

    def mark_inconsistent(self, reason: str) -> None:
        """This node's data may differ from the cluster's: stop serving (see ProviderCore)
        and leave the group, as Galera does, so it neither applies nor votes any more; the
        process stays up answering 1047 and saying why in its status."""
        log.error(
            "%s: inconsistent with the cluster (%s): no longer ready, leaving the group",
            self.node_name,
            reason,
        )
        self.stats.toi_inconsistencies += 1
        self.inconsistency = self.inconsistency or reason
        self.group.request_leave()
        was = self.ready
        self.core.mark_inconsistent()
        if was:
            self._notify_state()

    def commit(self, seqno: int) -> None:
        """`seqno` committed on the backend (local commit or applier)."""
        self.gate.commit(seqno)
        self.dequeued(seqno)

    def dequeued(self, seqno: int) -> None:
        """An applier took `seqno` (Galera's slave thread dequeuing it): it leaves the
        receive queue that flow control limits."""
        if seqno in self._receive_queue:
            self._receive_queue.discard(seqno)
            self._report_queue()

    async def wait_state(self, ready: bool) -> None:
        while self.ready != ready:
            await self._state_changed.wait()

    # ---- the ordered stream --------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take the ordered stream until cancelled. The events are handled in the group's
        core task as each round produces them (all of it is synchronous: decode, certify,
        hand over), which spares a task switch per batch."""
        pending = self.group.handle_events(self._on_events)
        try:
            task_status.started()
            if pending:
                self._on_events(pending)
            await trio.sleep_forever()
        finally:
            self.group.handle_events(None)

    def _on_events(self, events: list[GroupEvent]) -> None:
        for event in events:
            if isinstance(event, Deliver):
                self._deliver(event)
            elif isinstance(event, ViewChange):
                self._view(event.view)
            elif isinstance(event, Behind):
                self.core.behind()
                self._notify_state()
        self._report_queue()

    def _deliver(self, event: Deliver) -> None:
        if event.seqno <= self.core.last_delivered:
            log.warning("%s: seqno %d delivered again: ignored", self.node_name, event.seqno)
            return
        outcome = self.core.deliver(event.seqno, event.payload, self._waiters)
        seqno, ws, verdict = outcome.seqno, outcome.ws, outcome.verdict
        if outcome.action is Action.RESOLVE:
            assert ws is not None and verdict is not None
            waiter = self._waiters.pop((ws.origin, ws.trx_id))
            waiter.result = Replicated(seqno, verdict)
            if not verdict.passed:
                self.gate.skip(seqno)
                log.info(
                    "%s: seqno %d local %s failed: %s",
                    self.node_name,
                    seqno,
                    ws.describe(),
                    verdict.describe(),
                )
            waiter.done.set()
            return
        if outcome.action is Action.SKIP:
            self.gate.skip(seqno)
            return
        assert ws is not None and verdict is not None
        self.stats.received += 1
        self._receive_queue.add(seqno)
        self._apply(seqno, ws, verdict.depends_seqno)

    def _view(self, view: View) -> None:
        was = self.ready
        self.core.view_changed(view)
        log.info(
            "%s: view %d %s, %d members (%s), state %s, last committed %d",
            self.node_name,
            view.conf_id,
            "primary" if view.primary else "non-primary",
            len(view.members),
            ", ".join(m.id for m in view.members),
            self.state.name,
            self.gate.last_committed,
        )
        if was != self.ready:
            self._notify_state()
        else:
            self._notify_listeners()

    def _notify_state(self) -> None:
        self._state_changed.set()
        self._state_changed = trio.Event()
        self._notify_listeners()

    def _notify_listeners(self) -> None:
        for listener in self.state_listeners:
            listener()

    @property
    def local_recv_queue(self) -> int:
        """Galera's wsrep_local_recv_queue: remote write sets waiting to be applied."""
        return len(self._receive_queue)

    def _report_queue(self) -> None:
        """What flow control limits: the appliers' backlog, as in Galera: write sets no
        applier took yet (not those being applied or waiting for their commit turn, nor
        local commits: both are the group's own pace, bounded by the appliers and the
        clients)."""
        self.group.set_apply_queue(len(self._receive_queue))
