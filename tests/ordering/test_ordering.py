from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from wsrep.ordering import OrderingError, OrderingGate, OrderingMonitor


def test_commit_must_be_next_in_order() -> None:
    mon = OrderingMonitor(last_committed=10)
    assert mon.may_commit(11) and not mon.may_commit(12)
    with pytest.raises(OrderingError):
        mon.commit(12)
    assert mon.commit(11) == 11


def test_skip_ahead_is_released_when_the_gap_closes() -> None:
    mon = OrderingMonitor(last_committed=0)
    assert mon.skip(2) == 0  # 1 still outstanding
    assert mon.skip(3) == 0
    assert mon.commit(1) == 3  # 2 and 3 were finished already
    with pytest.raises(OrderingError):
        mon.skip(3)


def test_apply_admission_follows_dependencies() -> None:
    mon = OrderingMonitor(last_committed=5)
    assert mon.may_apply(5)
    assert not mon.may_apply(6)


@given(st.data())
def test_any_finishing_order_yields_a_gapless_prefix(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 40))
    skipped = data.draw(st.sets(st.integers(1, n)))
    mon = OrderingMonitor(last_committed=0)
    pending = list(range(1, n + 1))
    order = data.draw(st.permutations(pending))
    waiting = list(order)
    committed: list[int] = []
    # Keep finishing whatever is allowed; skips may happen any time, commits only in turn.
    for _ in range(n * n + 1):
        if not waiting:
            break
        for seqno in list(waiting):
            if seqno in skipped:
                mon.skip(seqno)
                waiting.remove(seqno)
            elif mon.may_commit(seqno):
                mon.commit(seqno)
                committed.append(seqno)
                waiting.remove(seqno)
    assert not waiting
    assert mon.last_committed == n
    assert committed == sorted(set(range(1, n + 1)) - skipped)


async def test_parallel_appliers_commit_in_seqno_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = OrderingGate(last_committed=0)
    rng = random.Random(7)
    commits: list[int] = []
    started: dict[int, int] = {}

    async def applier(seqno: int, depends: int) -> None:
        await gate.wait_apply_turn(depends)
        started[seqno] = gate.last_committed
        await trio.sleep(rng.random())  # applying rows
        await gate.wait_commit_turn(seqno)
        commits.append(seqno)
        gate.commit(seqno)

    deps = {s: rng.randint(0, s - 1) for s in range(1, 60)}
    async with trio.open_nursery() as nursery:
        for seqno, depends in deps.items():
            nursery.start_soon(applier, seqno, depends)
    assert commits == sorted(deps)
    assert all(started[s] >= deps[s] for s in deps)


async def test_waiting_for_a_seqno_returns_once_it_committed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = OrderingGate(last_committed=3)
    await gate.wait_committed(3)  # already there: no wait
    with trio.move_on_after(1) as scope:
        await gate.wait_committed(4)
    assert scope.cancelled_caught
    gate.skip(4)
    with trio.fail_after(1):
        await gate.wait_committed(4)
