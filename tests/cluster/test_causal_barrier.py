"""The causal barrier (Galera's gcs_caused) over real group members on loopback, no
database: its seqno covers every write ordered before the call, concurrent callers share
one marker, the marker is skipped on every node, and outside a primary component the
barrier fails instead of answering."""

from __future__ import annotations

import random

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cluster.test_provider import SECRET, member, until, ws
from wsrep.causal import CAUSAL_MARKER, CausalBarrier, CausalBarrierError
from wsrep.group.log import InMemoryLogStorage
from wsrep.group_node import open_group_node
from wsrep.provider import Provider
from wsrep.provider_core import Action, ProviderCore


def test_marker_is_skipped_by_every_core() -> None:
    cores = [ProviderCore(name) for name in ("a", "b")]
    for core in cores:
        outcome = core.deliver(1, CAUSAL_MARKER, set())
        assert (outcome.action, outcome.seqno, outcome.ws) == (Action.SKIP, 1, None)
        assert core.last_delivered == 1


async def test_barrier_covers_earlier_writes_and_batches_callers() -> None:
    a_config = member("a", bootstrap=True)
    b_config = member("b", seeds=(a_config.member.address,))
    applied: list[int] = []
    with trio.fail_after(30):
        async with (
            open_group_node(a_config, InMemoryLogStorage(), SECRET) as group_a,
            open_group_node(b_config, InMemoryLogStorage(), SECRET) as group_b,
            trio.open_nursery() as nursery,
        ):
            a = Provider(group_a, lambda *_: None)
            b = Provider(group_b, lambda s, w, d: applied.append(s))
            for p in (a, b):
                await nursery.start(p.run)
                await nursery.start(p.causal.run)
                await p.wait_state(ready=True)
            await until(lambda: a.view is not None and len(a.view.members) == 2 and b.ready)

            write = await a.replicate(ws(a, 0, row=1))
            await a.gate.wait_commit_turn(write.seqno)
            a.commit(write.seqno)
            barrier = await b.causal.seqno()  # b has not applied the write: it is ahead
            assert barrier > write.seqno
            await until(lambda: applied == [write.seqno])
            b.commit(write.seqno)
            with trio.fail_after(10):  # the marker itself is skipped in both gates
                await b.gate.wait_committed(barrier)
                await a.gate.wait_committed(barrier)

            markers_before = b.causal.markers
            seqnos: list[int] = []

            async def read() -> None:
                seqnos.append(await b.causal.seqno())

            async with trio.open_nursery() as readers:
                for _ in range(20):
                    readers.start_soon(read)
            assert len(seqnos) == 20 and min(seqnos) > barrier
            assert b.causal.markers - markers_before <= 3  # not one marker per caller
            assert b.causal.calls == 21 and a.causal.calls == 0
            nursery.cancel_scope.cancel()


async def test_barrier_fails_outside_a_primary_component() -> None:
    config = member("lonely")  # not bootstrapped and no peers: never primary
    async with (
        open_group_node(config, InMemoryLogStorage(), SECRET, submit_timeout=2) as group,
        trio.open_nursery() as nursery,
    ):
        provider = Provider(group, lambda *_: None)
        await nursery.start(provider.run)
        await nursery.start(provider.causal.run)
        with trio.fail_after(10):
            try:
                await provider.causal.seqno()
            except CausalBarrierError as exc:
                assert "lonely" in str(exc)
            else:
                raise AssertionError("a barrier answered outside a primary component")
        nursery.cancel_scope.cancel()


class _Orderer:
    """A stand-in for the group's total order: every submission (a write or a marker)
    takes the next seqno when submitted (the leader appends it) and its submitter hears
    of it after a random delay."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ordered = 0  # the last seqno handed out
        self.markers = 0

    async def submit(self, payload: bytes, timeout: float) -> int:
        self.ordered += 1
        seqno = self.ordered
        self.markers += payload == CAUSAL_MARKER
        await trio.sleep(self.rng.uniform(0, 0.01))
        return seqno


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
def test_every_caller_gets_a_seqno_above_what_was_ordered_before_it_called(
    seed: int, callers: int
) -> None:
    """The batching must never hand a caller a marker that was submitted before it
    called: its seqno could then be below a write ordered in between."""

    async def main() -> None:
        rng = random.Random(seed)
        group = _Orderer(rng)
        barrier = CausalBarrier(group.submit, "n")
        async with trio.open_nursery() as nursery:
            await nursery.start(barrier.run)

            async def writer() -> None:
                for _ in range(20):
                    await group.submit(b"write", 1)

            async def caller() -> None:
                await trio.sleep(rng.uniform(0, 0.05))
                seen = group.ordered
                assert await barrier.seqno() > seen

            async with trio.open_nursery() as clients:
                clients.start_soon(writer)
                for _ in range(callers):
                    clients.start_soon(caller)
            assert barrier.calls == callers and group.markers == barrier.markers <= callers
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
