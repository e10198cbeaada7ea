"""`GroupNode`: the trio driver around the group-communication core.

It owns one `GroupMember` (sans-I/O) and one `TcpTransport`: every transport notice and
every call from the replication layer is fed to the core with the current time. One task
(`_run_core`) takes the core's actions once per scheduling round, so what arrived in that
round leaves batched, and carries them out in order: Send over the transport,
Deliver/ViewChange/Behind onto the event stream, Submitted to the waiting submitter. The
same task calls `tick()` at the core's `next_deadline()`.

Durability (Raft: a member acknowledges, votes for or delivers only what its disk holds):
before carrying out a round's actions the task runs the storage's sync job (one
fdatasync for every entry appended since the last round) in a worker thread, so the event
loop keeps relaying, applying and receiving meanwhile; what arrives during the sync is
the next round's batch (group commit).

    async with open_group_node(config, storage, secret) as node:
        seqno = await node.submit(b"write set")
        for event in await node.next_events():  # Deliver | ViewChange | Behind, same order
            ...                                 # on every member
"""

from __future__ import annotations

import heapq
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import trio

from wsrep.group.log import LogStorage
from wsrep.group.member import GroupMember
from wsrep.group.types import (
    Behind,
    Connect,
    Deliver,
    FlowControl,
    GroupConfig,
    GroupStats,
    MemberId,
    MemberInfo,
    Send,
    Submitted,
    View,
    ViewChange,
)
from wsrep.transport.tcp import TcpTransport, TransportConfig, TransportStats

log = logging.getLogger("wsrep.group")

GroupEvent = Deliver | ViewChange | Behind
# Takes a round's events, in order, in the core task (see GroupNode.handle_events).
EventHandler = Callable[[list[GroupEvent]], None]

# Room for the protocol's own fields around the largest payload one message may carry.
_MESSAGE_OVERHEAD = 64 << 10
# a leaving member waits at most this long for its last messages to be written out
LAST_WORDS_TIMEOUT = 1.0


class GroupError(Exception):
    """A submission was not ordered."""


class SubmitRefused(GroupError):
    """The core refused or dropped the submission (non-primary, evicted, too large, ...)."""


class PayloadTooLarge(SubmitRefused):
    """The payload is over `max_payload`: no view would order it."""


class SubmitTimeout(GroupError):
    """No answer in time: the payload may still be ordered later (the outcome is unknown)."""


@dataclass
class _Waiter:
    done: trio.Event
    deadline: float
    result: Submitted | None = None  # None once done: timed out


def transport_config(config: GroupConfig, secret: bytes) -> TransportConfig:
    """Transport settings that follow the group's timeouts (small in tests, Galera-like else)."""
    max_message = max(config.max_payload, config.max_message_bytes) + _MESSAGE_OVERHEAD
    return TransportConfig(
        member=config.member,
        secret=secret,
        seeds=config.seeds,
        max_message=max_message,
        send_buffer_limit=max(128 << 20, 2 * max_message),
        connect_timeout=max(1.0, config.suspect_timeout),
        handshake_timeout=max(1.0, config.suspect_timeout),
        reconnect_initial=min(0.05, config.heartbeat_interval),
        reconnect_max=max(0.2, min(2.0, config.suspect_timeout / 2)),
    )


class GroupNode:
    """Use `open_group_node`; the methods are for the replication layer."""

    def __init__(
        self,
        config: GroupConfig,
        storage: LogStorage,
        secret: bytes,
        *,
        submit_timeout: float = 30.0,
        transport: TransportConfig | None = None,
        rng_seed: int | None = None,
    ) -> None:
        self.config = config
        self.submit_timeout = submit_timeout
        seed = rng_seed if rng_seed is not None else uuid.uuid4().int & 0xFFFFFFFF
        self._core = GroupMember(config, storage, trio.current_time(), rng_seed=seed)
        self._storage = storage
        self._transport = TcpTransport(transport or transport_config(config, secret), self)
        self._events_in, self.events = trio.open_memory_channel[GroupEvent](math.inf)
        self._handler: EventHandler | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._deadlines: list[tuple[float, int]] = []  # heap of (deadline, token)
        self._wanted: dict[MemberId, str] = {}  # members to stay connected to, by address
        self._wake = trio.Event()
        self._dirty = False
        self._fc_paused = False
        self._left = trio.Event()
        self._name = config.member.id

    # ---- API for the replication layer ---------------------------------------------------

    @property
    def view(self) -> View | None:
        return self._core.view

    @property
    def leader(self) -> MemberId | None:
        return self._core.leader

    @property
    def role(self) -> str:
        """The core's Raft role (follower, candidate, leader, ...), for status and tests."""
        return self._core.state.value

    @property
    def flow_control_paused(self) -> bool:
        return self._fc_paused

    @property
    def stats(self) -> GroupStats:
        core, net = self._core.stats, self._transport.stats
        return replace(core, extra={**core.extra, **_transport_counters(net)})

    @property
    def connected(self) -> frozenset[MemberId]:
        return self._transport.connected

    async def submit(self, payload: bytes, timeout: float | None = None) -> int:
        """Order `payload` in the group; its global seqno once ordered.

        SubmitRefused when this member cannot order it (not in a primary component, ...),
        SubmitTimeout when no answer came in time.
        """
        if len(payload) > self.config.max_payload:
            raise PayloadTooLarge(
                f"payload of {len(payload)} bytes exceeds max_payload {self.config.max_payload}"
            )
        limit = self.submit_timeout if timeout is None else timeout
        now = trio.current_time()
        token = self._core.submit(payload, now)
        # The core task times waiters out: cheaper than a cancel scope per submission.
        waiter = self._waiters[token] = _Waiter(trio.Event(), now + limit)
        heapq.heappush(self._deadlines, (waiter.deadline, token))
        self._touch()
        try:
            await waiter.done.wait()
        finally:
            self._waiters.pop(token, None)
        result = waiter.result
        if result is None:
            raise SubmitTimeout(f"{self._name}: no seqno for a payload after {limit}s")
        if result.seqno is None:
            raise SubmitRefused(result.error or "not ordered")
        return result.seqno

    async def next_events(self, limit: int = 4096) -> list[GroupEvent]:
        """Wait for at least one event, then take every event already queued (up to `limit`).

        Taking them in batches keeps a busy consumer from falling behind: a channel
        `receive()` yields to the scheduler once per event.
        """
        batch = [await self.events.receive()]
        while len(batch) < limit:
            try:
                batch.append(self.events.receive_nowait())
            except trio.WouldBlock:
                break
        return batch

    def handle_events(self, handler: EventHandler | None) -> list[GroupEvent]:
        """From now on hand each round's events to `handler`, called by the core task right
        after the round's other actions, instead of queueing them for `next_events()`
        (None: back to the queue). Returns the events queued until now, which come first.

        For a consumer whose handling is synchronous and short (certify, hand over): it
        spares a task switch per batch. It must not raise; what it raises stops the node.
        """
        self._handler = handler
        pending: list[GroupEvent] = []
        while True:
            try:
                pending.append(self.events.receive_nowait())
            except trio.WouldBlock:
                return pending

    @property
    def pending_events(self) -> int:
        """Events delivered to the stream and not taken yet."""
        return self.events.statistics().current_buffer_used

    def request_leave(self) -> None:
        """Ask to be removed from the group (Galera's graceful leave); see `leave`."""
        self._core.leave(trio.current_time())
        self._touch()

    @property
    def has_left(self) -> bool:
        return self._left.is_set()

    async def leave(self, timeout: float | None = None) -> bool:
        """Leave the group before stopping, so the others install a smaller primary view
        rather than suspect a failure. True once the configuration without this member
        committed; False when that took longer than `timeout` (default: two election
        timeouts, at least 5 s): the member just goes, and the others judge its silence
        as a failure."""
        limit = max(5.0, 2 * self.config.election_timeout) if timeout is None else timeout
        self.request_leave()
        with trio.move_on_after(limit):
            await self._left.wait()
        if not self.has_left:
            log.warning("%s: no leader removed it in %.1fs: going anyway", self._name, limit)
        await self._transport.flush(LAST_WORDS_TIMEOUT)
        return self.has_left

    def set_apply_queue(self, length: int) -> None:
        """Payloads delivered and not applied yet: drives flow control."""
        if self._core.set_apply_queue(length, trio.current_time()):
            self._touch()

    # ---- TransportHandler ----------------------------------------------------------------

    def peer_up(self, peer: MemberInfo, peer_cluster: uuid.UUID | None) -> None:
        self._core.peer_up(peer, trio.current_time())
        self._touch()

    def peer_down(self, peer_id: MemberId) -> None:
        self._core.peer_down(peer_id, trio.current_time())
        self._touch()

    def received(self, peer_id: MemberId, data: bytes) -> None:
        self._core.receive(peer_id, data, trio.current_time())
        self._touch()

    def cluster_uuid(self) -> uuid.UUID | None:
        return self._core.cluster_uuid

    # ---- running -------------------------------------------------------------------------

    async def _run_core(self) -> None:
        """Tick the core at its deadlines and carry out its actions after every input.

        Inputs (submissions, messages, peer notices) only mark the core dirty; its actions
        are taken here, once every task that was ready has run. So the submissions and
        messages of one scheduling round leave in one batch, like Galera's group commit.
        """
        while True:
            if self._dirty:
                self._dirty = False
                await self._pump()
            now = trio.current_time()
            self._expire_waiters(now)
            deadline = self._core.next_deadline()
            if now >= deadline:
                self._core.tick(now)
                await self._pump()
                continue
            if self._deadlines:
                deadline = min(deadline, self._deadlines[0][0])
            with trio.move_on_at(deadline):
                await self._wake.wait()
            self._wake = trio.Event()

    def _expire_waiters(self, now: float) -> None:
        """Time out overdue waiters; drop heap entries of answered ones as they surface."""
        heap = self._deadlines
        while heap and (heap[0][0] <= now or heap[0][1] not in self._waiters):
            _, token = heapq.heappop(heap)
            waiter = self._waiters.get(token)
            if waiter is not None and not waiter.done.is_set():
                waiter.done.set()  # with no result: timed out

    def _touch(self) -> None:
        self._dirty = True
        self._wake.set()

    async def _pump(self) -> None:
        """Carry out the core's actions, in order, once the writes they rest on are durable."""
        actions = self._core.take_actions()
        job = self._storage.sync_job()
        if job is not None:
            await trio.to_thread.run_sync(job)
            await trio.lowlevel.checkpoint_if_cancelled()  # stopped meanwhile: carry out nothing
        handler = self._handler
        events: list[GroupEvent] = []
        emit = events.append if handler is not None else self._events_in.send_nowait
        for action in actions:
            if isinstance(action, Send):
                self._transport.send(action.to, action.data)
            elif isinstance(action, Deliver):
                emit(action)
            elif isinstance(action, ViewChange):
                self._on_view(action.view)
                emit(action)
            elif isinstance(action, Submitted):
                waiter = self._waiters.get(action.token)
                if waiter is not None:
                    waiter.result = action
                    waiter.done.set()
            elif isinstance(action, FlowControl):
                if action.paused != self._fc_paused:
                    log.info(
                        "%s: flow control %s",
                        self._name,
                        "paused the group" if action.paused else "resumed",
                    )
                self._fc_paused = action.paused
            elif isinstance(action, Connect):
                self._want(action.member)
            else:
                log.warning(
                    "%s: behind the group: delivered up to seqno %d, %s holds from %d",
                    self._name,
                    action.delivered_seqno,
                    action.donor,
                    action.oldest_seqno,
                )
                emit(action)
        if events and handler is not None:
            handler(events)
        if self._core.has_left:
            self._left.set()

    def _on_view(self, view: View) -> None:
        for member in view.members:
            self._want(member)

    def _want(self, member: MemberInfo) -> None:
        if member.id == self._name or self._wanted.get(member.id) == member.address:
            return
        self._wanted[member.id] = member.address
        self._transport.set_view_addresses(frozenset(self._wanted.values()))


def _transport_counters(stats: TransportStats) -> dict[str, int]:
    return {
        "transport_connections_refused": stats.connections_refused,
        "transport_messages_sent": stats.messages_sent,
        "transport_messages_received": stats.messages_received,
        "transport_sends_dropped": stats.sends_dropped,
    }


@asynccontextmanager
async def open_group_node(
    config: GroupConfig,
    storage: LogStorage,
    secret: bytes,
    *,
    submit_timeout: float = 30.0,
    transport: TransportConfig | None = None,
    rng_seed: int | None = None,
    leave_on_exit: bool = False,
) -> AsyncIterator[GroupNode]:
    """Run a group member until the block exits. Then it just stops (peers see it vanish)
    or, with `leave_on_exit` and a block that ended without an error, first leaves the
    group (`GroupNode.leave`: a clean shutdown, Galera's graceful leave)."""
    node = GroupNode(
        config,
        storage,
        secret,
        submit_timeout=submit_timeout,
        transport=transport,
        rng_seed=rng_seed,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node._transport.run)
        nursery.start_soon(node._run_core)
        try:
            yield node
            if leave_on_exit:
                await node.leave()
        finally:
            node._events_in.close()
            nursery.cancel_scope.cancel()
