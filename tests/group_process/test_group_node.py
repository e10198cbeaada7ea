"""`GroupNode` end to end in one process: real core, real TCP on loopback, small timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio

from tests.transport.conftest import free_address, wait_until
from wsrep.group.log import InMemoryLogStorage
from wsrep.group.types import Deliver, GroupConfig, MemberInfo, ViewChange
from wsrep.group_node import (
    GroupEvent,
    GroupNode,
    SubmitRefused,
    SubmitTimeout,
    open_group_node,
)

SECRET = b"group node test secret"


@dataclass
class Running:
    node: GroupNode
    scope: trio.CancelScope
    events: list[GroupEvent] = field(default_factory=list)
    closed: bool = False

    @property
    def deliveries(self) -> list[tuple[int, str, bytes]]:
        return [(e.seqno, e.origin, e.payload) for e in self.events if isinstance(e, Deliver)]

    def primary_with(self, n: int) -> bool:
        view = self.node.view
        return view is not None and view.primary and len(view.members) == n


async def start(nursery: trio.Nursery, config: GroupConfig) -> Running:
    async def run(task_status: trio.TaskStatus[Running]) -> None:
        with trio.CancelScope() as scope:
            async with open_group_node(config, InMemoryLogStorage(), SECRET) as node:
                running = Running(node, scope)
                task_status.started(running)
                while True:
                    running.events += await node.next_events()
        running.closed = True

    return await nursery.start(run)


def config(name: str, address: str, seeds: tuple[str, ...] = (), **kw: object) -> GroupConfig:
    return GroupConfig(
        MemberInfo(name, address),
        seeds=seeds,
        heartbeat_interval=0.05,
        suspect_timeout=0.4,
        inactive_timeout=1.0,
        election_timeout=0.4,
        max_payload=1 << 16,
        **kw,  # type: ignore[arg-type]
    )


async def test_three_nodes_deliver_the_same_stream_and_refuse_what_they_cannot_order() -> None:
    addrs = [free_address() for _ in range(3)]
    async with trio.open_nursery() as nursery:
        n1 = await start(nursery, config("n1", addrs[0], bootstrap=True))
        n2 = await start(nursery, config("n2", addrs[1], (addrs[0],)))
        n3 = await start(nursery, config("n3", addrs[2], (addrs[0], addrs[1])))
        nodes = [n1, n2, n3]
        await wait_until(lambda: all(n.primary_with(3) for n in nodes), timeout=20)

        seqnos: dict[bytes, int] = {}

        async def submit(n: Running, payload: bytes) -> None:
            seqnos[payload] = await n.node.submit(payload)

        async with trio.open_nursery() as submitters:
            for i in range(60):
                n = nodes[i % 3]
                submitters.start_soon(submit, n, b"%s-%d" % (n.node.config.member.id.encode(), i))
        await wait_until(lambda: all(len(n.deliveries) == 60 for n in nodes))
        assert n1.deliveries == n2.deliveries == n3.deliveries
        assert {p: s for s, _, p in n1.deliveries} == seqnos
        assert all(origin == p.split(b"-")[0].decode() for _, origin, p in n1.deliveries)
        views = [[e.view.conf_id for e in n.events if isinstance(e, ViewChange)] for n in nodes]
        assert views[0][-1] == views[1][-1] == views[2][-1]

        with pytest.raises(SubmitRefused, match="exceeds max_payload"):
            await n1.node.submit(b"x" * ((1 << 16) + 1))
        with pytest.raises(SubmitTimeout):
            await n2.node.submit(b"no time to order me", timeout=0)
        assert n1.node.stats.extra["transport_messages_sent"] > 0

        # two of three gone: the last one is a minority and refuses to order
        n2.scope.cancel()
        n3.scope.cancel()
        await wait_until(lambda: n2.closed and n3.closed)
        await wait_until(lambda: n1.node.view is not None and not n1.node.view.primary)
        with pytest.raises(SubmitRefused, match="non-primary"):
            await n1.node.submit(b"in a minority")
        nursery.cancel_scope.cancel()


async def test_a_handler_takes_the_events_in_order_after_those_already_queued() -> None:
    cfg = config("h1", free_address(), bootstrap=True)
    async with open_group_node(cfg, InMemoryLogStorage(), SECRET) as node:
        await wait_until(lambda: node.view is not None and node.view.primary)
        assert await node.submit(b"queued") == 1
        handled: list[list[GroupEvent]] = []
        pending = node.handle_events(handled.append)
        assert [type(e) for e in pending] == [ViewChange, Deliver]
        assert isinstance(pending[1], Deliver) and pending[1].payload == b"queued"
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(node.submit, b"h%d" % i)
        await wait_until(lambda: sum(len(batch) for batch in handled) == 20)
        delivered = [e for batch in handled for e in batch]
        assert all(isinstance(e, Deliver) for e in delivered)
        assert [e.seqno for e in delivered if isinstance(e, Deliver)] == list(range(2, 22))
        assert node.pending_events == 0  # nothing went to the queue meanwhile
        assert node.handle_events(None) == []
        assert await node.submit(b"back to the queue") == 22
        assert [e.seqno for e in await node.next_events() if isinstance(e, Deliver)] == [22]
