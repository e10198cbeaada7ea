"""Graceful leave (Galera: a clean shutdown leaves the cluster), on the simulated network.

A member that stops cleanly asks the leader to remove it; the others install a smaller
primary view instead of suspecting a failure, so stopping members one by one keeps the
last one primary. A crash keeps counting as a failure.
"""

from __future__ import annotations

import pytest

from wsrep.group.log import InMemoryLogStorage
from wsrep.group.member import GroupMember, Role
from wsrep.group.types import GroupConfig, MemberInfo, ViewChange

from .sim import TIMEOUTS, Simulation
from .test_member import cluster, members, primary, submit_and_settle

# well under the eviction of a silent member (inactive_timeout): a leave is not an eviction
LEAVE_BOUND = TIMEOUTS["suspect_timeout"]


def view_ids(sim: Simulation, node_id: str) -> set[str]:
    view = sim.nodes[node_id].view
    assert view is not None
    return {m.id for m in view.members}


def leave(sim: Simulation, node_id: str) -> None:
    """`node_id` leaves cleanly, then its process goes (as `run_node` does)."""
    node = sim.nodes[node_id]
    assert node.member is not None
    node.member.leave(sim.now)
    sim.drain(node)
    assert sim.run_until(sim.now + LEAVE_BOUND, lambda: node.member.has_left), sim.describe()
    sim.crash(node_id)


def test_members_leaving_one_by_one_keep_the_last_one_primary() -> None:
    sim = cluster(members(3))
    leader = next(n for n, node in sim.nodes.items() if node.member.state is Role.LEADER)
    followers = [n for n in sim.nodes if n != leader]
    leave(sim, followers[0])
    assert sim.run_until(sim.now + LEAVE_BOUND, lambda: len(view_ids(sim, leader)) == 2)
    assert primary(sim, leader) and primary(sim, followers[1])
    submit_and_settle(sim, followers[1])
    # the leader leaves too: the last member forms a primary component of one
    leave(sim, leader)
    last = followers[1]
    assert sim.run_until(
        sim.now + 4 * TIMEOUTS["election_timeout"],
        lambda: primary(sim, last) and view_ids(sim, last) == {last},
    ), sim.describe()
    submit_and_settle(sim, last, 2)
    assert len(sim.nodes[last].delivered) == 3
    sim.check()


def test_a_crash_still_counts_as_a_failure() -> None:
    sim = cluster(members(3))
    sim.crash("n1")
    sim.run_until(sim.now + LEAVE_BOUND)
    assert len(view_ids(sim, "n0")) == 3  # suspected, not removed before inactive_timeout
    sim.crash("n2")
    sim.run_until(sim.now + 3 * TIMEOUTS["election_timeout"])
    assert not primary(sim, "n0")


def test_a_member_that_left_never_counts_in_a_quorum() -> None:
    sim = cluster(members(3))
    n2 = sim.nodes["n2"].member
    n2.leave(sim.now)
    sim.drain(sim.nodes["n2"])
    assert sim.run_until(sim.now + LEAVE_BOUND, lambda: n2.has_left)
    assert sim.run_until(sim.now + LEAVE_BOUND, lambda: view_ids(sim, "n0") == {"n0", "n1"})
    # n2's process stays up and connected, but it is out: losing n1 leaves n0 with 1 of 2
    assert not primary(sim, "n2")
    sim.crash("n1")
    sim.run_until(sim.now + 4 * TIMEOUTS["election_timeout"])
    assert not primary(sim, "n0"), sim.describe()
    assert n2.state is not Role.LEADER and not primary(sim, "n2")
    sim.submit("n2")
    answer = list(sim.nodes["n2"].answers.values())[-1][0]
    assert answer.seqno is None
    # and it does not ask to come back: n1 returns, n0 and n1 form the primary without it
    sim.start("n1")
    assert sim.run_until(sim.now + 20, lambda: primary(sim, "n0") and primary(sim, "n1")), (
        sim.describe()
    )
    sim.run_until(sim.now + 2 * TIMEOUTS["inactive_timeout"])
    assert view_ids(sim, "n0") == {"n0", "n1"}


def test_a_leave_during_a_partition_just_goes_and_the_majority_goes_on() -> None:
    sim = cluster(members(3))
    leader = next(n for n, node in sim.nodes.items() if node.member.state is Role.LEADER)
    cut = next(n for n in sim.nodes if n != leader)
    sim._on_partition((cut,), 100.0)
    member = sim.nodes[cut].member
    member.leave(sim.now)
    sim.drain(sim.nodes[cut])
    sim.run_until(sim.now + LEAVE_BOUND)
    assert not member.has_left  # nobody answered: the driver's bound ends the wait
    sim.crash(cut)
    others = [n for n in sim.nodes if n != cut]
    assert all(primary(sim, n) for n in others)
    submit_and_settle(sim, others[1])
    # the silent member is evicted later, as a failed one would be
    assert sim.run_until(
        sim.now + TIMEOUTS["inactive_timeout"] + 3.0, lambda: view_ids(sim, leader) == set(others)
    )
    sim.check()


def test_a_leave_while_the_rest_are_partitioned_removes_nobody() -> None:
    """The leader is cut off from both followers: it is not primary, so it changes nothing."""
    sim = cluster(members(3))
    leader = next(n for n, node in sim.nodes.items() if node.member.state is Role.LEADER)
    sim._on_partition((leader,), 3.0)
    sim.run_until(sim.now + 3 * TIMEOUTS["election_timeout"])
    member = sim.nodes[leader].member
    member.leave(sim.now)
    sim.drain(sim.nodes[leader])
    sim.run_until(sim.now + LEAVE_BOUND)
    assert not member.has_left
    others = [n for n in sim.nodes if n != leader]
    assert all(primary(sim, n) and len(view_ids(sim, n)) == 3 for n in others)


def test_a_member_alone_has_nobody_to_tell() -> None:
    m = GroupMember(
        GroupConfig(MemberInfo("a", "127.0.0.1:1"), bootstrap=True), InMemoryLogStorage(), 0.0, 7
    )
    m.take_actions()
    m.leave(0.1)
    assert m.has_left
    (change,) = [a for a in m.take_actions() if isinstance(a, ViewChange)]
    assert not change.view.primary


def test_the_leader_tells_a_leaver_as_soon_as_its_removal_commits() -> None:
    sim = cluster(members(3))
    leader = next(n for n, node in sim.nodes.items() if node.member.state is Role.LEADER)
    leaver = next(n for n in sim.nodes if n != leader)
    member = sim.nodes[leaver].member
    member.leave(sim.now)
    sim.drain(sim.nodes[leaver])
    # a few message delays (1-2 ms each), not the next repeat a heartbeat later
    assert sim.run_until(sim.now + TIMEOUTS["heartbeat_interval"] / 2, lambda: member.has_left)


def handed_over(sim: Simulation, rest: list[str]) -> bool:
    """One leader among `rest`, all of them primary in a view of just them."""
    leaders = [n for n in rest if sim.nodes[n].member.state is Role.LEADER]
    return len(leaders) == 1 and all(
        primary(sim, n) and view_ids(sim, n) == set(rest) for n in rest
    )


@pytest.mark.parametrize("weights", [(1, 1, 1), (1, 1, 1, 1, 1), (1, 1, 2)])
def test_a_leaving_leader_hands_over_without_an_election_timeout(
    weights: tuple[int, ...],
) -> None:
    """Raft's leadership transfer: once its removal committed, the leader tells its caught-up
    follower to campaign at once; the group orders again within a few message delays,
    not after the 1-2 election timeouts the followers would otherwise wait."""
    sim = cluster(members(len(weights), weights))
    submit_and_settle(sim, "n1", 3)
    leader = next(n for n, node in sim.nodes.items() if node.member.state is Role.LEADER)
    rest = [n for n in sim.nodes if n != leader]
    sim.nodes[leader].member.leave(sim.now)
    sim.drain(sim.nodes[leader])
    assert sim.run_until(
        sim.now + TIMEOUTS["election_timeout"] / 2, lambda: handed_over(sim, rest)
    ), sim.describe()
    assert sim.nodes[leader].member.has_left
    sim.crash(leader)
    submit_and_settle(sim, rest[-1], 2)
    sim.settle()
    sim.check()
    assert all(len(sim.nodes[n].delivered) == 5 for n in rest)
