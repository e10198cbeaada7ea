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


def test_entered_commits_may_finish_out_of_order() -> None:
    mon = OrderingMonitor(last_committed=0)
    with pytest.raises(OrderingError):
        mon.enter(2)  # 1 has not entered
    mon.enter(1)
    mon.enter(2)
    mon.enter(2)  # again: a retry after a failed COMMIT
    assert mon.last_entered == 2
    with pytest.raises(OrderingError):
        mon.commit(3)  # neither next nor entered
    assert mon.commit(2) == 0  # its COMMIT returned first
    assert mon.commit(1) == 2
    with pytest.raises(OrderingError):
        mon.commit(2)


def test_a_skip_counts_as_entered() -> None:
    mon = OrderingMonitor(last_committed=0)
    mon.skip(2)
    mon.enter(1)
    assert mon.last_entered == 2 and mon.may_enter(3)


def test_entered_before_names_the_commit_a_seqno_must_follow() -> None:
    mon = OrderingMonitor(last_committed=10)
    assert mon.entered_before(11) == -1  # what committed before sets no bound
    mon.enter(11)
    mon.skip(12)  # failed certification: no position update of its own
    mon.enter(13)
    assert [mon.entered_before(s) for s in (12, 13, 14)] == [11, 11, 13]
    mon.enter(13)  # a replay of 13 after its COMMIT failed: still behind 11
    assert mon.entered_before(13) == 11
    mon.commit(11)
    mon.commit(13)
    mon.enter(14)
    assert mon.entered_before(14) == 13 and mon.entered_before(15) == 14


@given(st.data())
def test_pipelined_commits_enter_in_order_and_leave_a_gapless_prefix(
    data: st.DataObject,
) -> None:
    """Any interleaving of skips, entries (in turn) and commits (once entered) ends with
    every seqno committed, entered strictly in seqno order, `last_committed` never past
    a seqno that has not finished."""
    n = data.draw(st.integers(1, 30))
    skipped = data.draw(st.sets(st.integers(1, n)))
    mon = OrderingMonitor(last_committed=0)
    to_enter = [s for s in range(1, n + 1) if s not in skipped]
    to_skip = sorted(skipped)
    entered: list[int] = []
    finished: set[int] = set()
    for _ in range(4 * n + 1):
        moves = []
        if to_skip:
            moves.append("skip")
        if to_enter and mon.may_enter(to_enter[0]):
            moves.append("enter")
        if set(entered) - finished:
            moves.append("commit")
        if not moves:
            break
        move = data.draw(st.sampled_from(moves))
        if move == "skip":
            seqno = to_skip.pop(data.draw(st.integers(0, len(to_skip) - 1)))
            mon.skip(seqno)
            finished.add(seqno)
        elif move == "enter":
            seqno = to_enter.pop(0)
            mon.enter(seqno)
            entered.append(seqno)
        else:
            seqno = data.draw(st.sampled_from(sorted(set(entered) - finished)))
            mon.commit(seqno)
            finished.add(seqno)
        assert all(s in finished for s in range(1, mon.last_committed + 1))
    assert entered == sorted(entered)
    assert mon.last_committed == n


async def test_pipelined_commits_enter_in_seqno_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = OrderingGate(last_committed=0)
    rng = random.Random(3)
    entries: list[int] = []

    async def committer(seqno: int) -> None:
        await trio.sleep(rng.random())
        await gate.wait_commit_order(seqno)
        entries.append(seqno)
        gate.enter(seqno)
        await trio.sleep(rng.random())  # the COMMIT's round trip, overlapping others
        gate.commit(seqno)

    async with trio.open_nursery() as nursery:
        for seqno in range(1, 40):
            nursery.start_soon(committer, seqno)
    assert entries == list(range(1, 40))
    assert gate.last_committed == 39
