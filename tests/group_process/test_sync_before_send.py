"""`GroupNode` syncs the log before anything leans on it, and a power loss (the unsynced tail
of a member's log gone) never loses an acknowledged submission.

The members' storage models a disk under a page cache: appends are written at once and
durable only once the driver ran the storage's sync job (in a worker thread). Every message
a member sends is checked as it leaves: an acknowledgement (AppendResponse) or a commit
index (Append) may only name entries its disk holds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import trio

from tests.group_process.test_group_node import SECRET, Running, config
from tests.transport.conftest import free_address, wait_until
from wsrep.group.codec import Append, AppendResponse, decode
from wsrep.group.log import EntryKind, HardState, InMemoryLogStorage
from wsrep.group.types import GroupConfig, MemberId
from wsrep.group_node import SubmitRefused, SubmitTimeout, open_group_node


class PageCacheStorage(InMemoryLogStorage):
    """In-memory log whose entries are durable only up to `durable`, moved by sync jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.durable = 0  # the last index a power loss would keep
        self.jobs = 0
        self.crashed = False  # the power is off: no sync completes any more

    def truncate_from(self, index: int) -> None:
        super().truncate_from(index)
        self.durable = min(self.durable, index - 1)  # a truncation is synced on the spot

    def sync_job(self) -> Callable[[], None] | None:
        last = self.last_index()
        if last <= self.durable:
            return None

        def job() -> None:
            time.sleep(0.02)  # a disk: appends made meanwhile wait for the next job
            if not self.crashed:
                self.durable = max(self.durable, min(last, self.last_index()))
                self.jobs += 1

        return job

    def power_loss(self) -> int:
        """Drop the unsynced tail (how many entries); `delivered` never claims more than the
        disk holds."""
        lost = self.last_index() - self.durable
        del self._entries[max(0, self.durable + 1 - self._first) :]
        state = self.hard_state()
        self._state = HardState(
            state.term, state.voted_for, state.cluster_uuid, min(state.delivered, self.durable)
        )
        self.crashed = False
        return lost


class Member:
    def __init__(self, cfg: GroupConfig) -> None:
        self.cfg = cfg
        self.storage = PageCacheStorage()
        self.running: Running | None = None
        self.violations: list[str] = []
        self.checked = 0

    def check(self, to: MemberId, data: bytes) -> bool:
        """Whether `data` may leave (not after the crash); records what it claims wrongly."""
        if self.storage.crashed:
            return False
        body = decode(data, 1 << 20).body
        claimed = None
        if isinstance(body, AppendResponse) and body.success:
            claimed = body.index
        elif isinstance(body, Append):
            claimed = body.commit
        if claimed is None:
            return True
        self.checked += 1
        if claimed > self.storage.durable:
            self.violations.append(
                f"{self.cfg.member.id} -> {to}: {type(body).__name__} names index {claimed}, "
                f"the disk holds up to {self.storage.durable}"
            )
        return True


async def run_member(member: Member, task_status: trio.TaskStatus[Running]) -> None:
    with trio.CancelScope() as scope:
        async with open_group_node(member.cfg, member.storage, SECRET) as node:
            transport = node._transport
            send = transport.send

            def checked_send(to: MemberId, data: bytes) -> None:
                if member.check(to, data):
                    send(to, data)

            transport.send = checked_send  # type: ignore[method-assign]
            running = member.running = Running(node, scope)
            task_status.started(running)
            while True:
                running.events += await node.next_events()
    running.closed = True


async def test_nothing_leaves_a_member_before_its_disk_holds_it_even_across_power_losses() -> None:
    addrs = [free_address() for _ in range(3)]
    members = [
        Member(config("p1", addrs[0], bootstrap=True)),
        Member(config("p2", addrs[1], (addrs[0],))),
        Member(config("p3", addrs[2], (addrs[0], addrs[1]))),
    ]
    acked: dict[bytes, int] = {}
    rng = random.Random(7)

    async def submitter(i: int) -> None:
        for k in range(1000):
            m = members[(i + k) % 3]
            if m.running is None or m.running.closed:
                await trio.sleep(0.01)
                continue
            payload = b"s%d-%d" % (i, k)
            with trio.move_on_after(3):  # (a crashed member answers nothing)
                try:
                    acked[payload] = await m.running.node.submit(payload, timeout=2)
                except (SubmitRefused, SubmitTimeout):
                    await trio.sleep(0.02)

    def primary_everywhere() -> bool:
        return all(
            m.running is not None and not m.running.closed and m.running.primary_with(3)
            for m in members
        )

    async with trio.open_nursery() as nursery:
        for m in members:
            await nursery.start(run_member, m)
        await wait_until(primary_everywhere, timeout=20)
        async with trio.open_nursery() as load:
            for i in range(8):
                load.start_soon(submitter, i)
            lost = 0
            for victim in (1, 0, 2, 1, 0, 2):  # followers and leaders
                goal = len(acked) + 40
                await wait_until(lambda goal=goal: len(acked) >= goal, timeout=30)
                await trio.sleep(rng.uniform(0.0, 0.1))
                m = members[victim]
                assert m.running is not None
                m.storage.crashed = True  # power off: nothing more reaches its disk or the wire
                m.running.scope.cancel()
                await wait_until(lambda m=m: m.running is not None and m.running.closed)
                lost += m.storage.power_loss()
                assert [v for m in members for v in m.violations] == []
                await trio.sleep(0.2)
                await nursery.start(run_member, m)
                await wait_until(primary_everywhere, timeout=30)
            load.cancel_scope.cancel()
        # a last submission through each member: every log catches up to it
        final = []
        for m in members:
            assert m.running is not None
            final.append(await m.running.node.submit(b"final-" + m.cfg.member.id.encode()))
        await wait_until(
            lambda: all(
                m.running is not None and max(s for s, _, _ in m.running.deliveries) >= max(final)
                for m in members
            ),
            timeout=30,
        )
        nursery.cancel_scope.cancel()

    assert [v for m in members for v in m.violations] == []
    assert all(m.checked > 0 and m.storage.jobs > 0 for m in members)
    assert lost > 0  # some power loss did cut an unsynced tail
    # every acknowledged submission is in every member's log at its seqno (a restarted
    # member delivers from where its disk says; together the members hold every seqno)
    for m in members:
        assert m.running is not None
        entries = m.storage.entries(1, m.storage.last_index() + 1)
        log = {e.seqno: e.payload for e in entries if e.kind is EntryKind.PAYLOAD}
        missing = {p: s for p, s in acked.items() if log.get(s) != p}
        assert not missing, f"{m.cfg.member.id} lost acknowledged submissions: {missing}"
