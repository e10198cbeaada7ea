"""GroupMember behaviour, scenario by scenario, on the simulated network without random faults."""

from __future__ import annotations

import logging
import math
import uuid

import pytest

from wsrep.group.codec import Forward, Message, Purged, encode
from wsrep.group.log import HardState, InMemoryLogStorage
from wsrep.group.member import GroupMember, Role
from wsrep.group.types import (
    Connect,
    Deliver,
    FlowControl,
    GroupConfig,
    MemberInfo,
    Submitted,
    ViewChange,
)

from .sim import TIMEOUTS, Schedule, Simulation, watch_behind


def members(n: int, weights: tuple[int, ...] | None = None) -> list[MemberInfo]:
    weights = weights or (1,) * n
    return [MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}", weights[i]) for i in range(n)]


def cluster(infos: list[MemberInfo], storage_retain: int | None = None) -> Simulation:
    """A formed cluster on a clean network: n0 bootstrapped, the others joined."""
    sim = Simulation(Schedule(0, "test", infos, 0.0, 0.0, (0.001, 0.002), []))
    if storage_retain is not None:
        for node in sim.nodes.values():
            node.storage = InMemoryLogStorage(retain=storage_retain)
    ids = list(sim.nodes)
    sim.start(ids[0], bootstrap=True)
    for node_id in ids[1:]:
        sim.start(node_id)
    assert sim.run_until(10.0, sim.converged), sim.describe()
    return sim


def submit_and_settle(sim: Simulation, node_id: str, count: int = 1) -> None:
    for _ in range(count):
        sim.submit(node_id)
    sim.run_until(sim.now + 1.0)


def primary(sim: Simulation, node_id: str) -> bool:
    view = sim.nodes[node_id].view
    return view is not None and view.primary


def test_bootstrap_forms_a_cluster_of_one() -> None:
    m = GroupMember(
        GroupConfig(MemberInfo("a", "127.0.0.1:1"), bootstrap=True), InMemoryLogStorage(), 0.0, 7
    )
    (first,) = m.take_actions()
    assert isinstance(first, ViewChange)
    assert first.view.primary and first.view.conf_id == 1 and first.view.own_index == 0
    assert m.state is Role.LEADER and m.cluster_uuid == first.view.cluster_uuid
    token = m.submit(b"x", 0.1)
    assert m.take_actions() == [Deliver(1, "a", b"x"), Submitted(token, 1)]


def test_three_members_deliver_the_same_stream() -> None:
    sim = cluster(members(3))
    for node_id in ("n0", "n1", "n2"):
        submit_and_settle(sim, node_id, 5)
    sim.settle()
    sim.check()
    streams = {tuple(n.delivered) for n in sim.nodes.values()}
    assert len(streams) == 1
    (stream,) = streams
    assert [s for s, _, _ in stream] == list(range(1, 16))
    assert {o for _, o, _ in stream} == {"n0", "n1", "n2"}
    # every submitter learned its seqno exactly once
    for n in sim.nodes.values():
        assert all(len(a) == 1 and a[0].seqno for a in n.answers.values())
    # views: same conf_ids with the same members everywhere, the last one with all three
    last = {n.view.conf_id for n in sim.nodes.values()}
    assert len(last) == 1
    assert all(len(n.view.members) == 3 for n in sim.nodes.values())


def test_isolated_member_turns_non_primary_and_refuses_submissions() -> None:
    sim = cluster(members(3))
    sim._on_partition(("n2",), 100.0)
    sim.run_until(sim.now + 3 * TIMEOUTS["election_timeout"])
    view = sim.nodes["n2"].view
    assert view is not None and not view.primary and view.conf_id == -1
    sim.submit("n2")
    answer = list(sim.nodes["n2"].answers.values())[-1][0]
    assert answer.seqno is None and "non-primary" in (answer.error or "")
    # the majority keeps going
    assert primary(sim, "n0") and primary(sim, "n1")
    submit_and_settle(sim, "n1")
    assert len(sim.nodes["n0"].delivered) == 1


def test_partition_heals_and_member_catches_up_with_a_new_conf_id() -> None:
    sim = cluster(members(3))
    conf_before = sim.nodes["n2"].view.conf_id
    sim._on_partition(("n2",), 1.5)
    sim.run_until(sim.now + 0.5)
    submit_and_settle(sim, "n0", 3)
    assert sim.run_until(sim.now + 10, sim.converged)
    sim.run_until(sim.now + 1.0)
    sim.check()
    assert sim.nodes["n2"].delivered == sim.nodes["n0"].delivered
    # the leader marks the member's return with a new view
    assert sim.nodes["n2"].view.conf_id > conf_before


def test_eviction_shrinks_the_view_so_a_second_failure_is_judged_against_it() -> None:
    sim = cluster(members(3))
    sim.crash("n2")
    sim.run_until(sim.now + TIMEOUTS["inactive_timeout"] + 2.0)
    view = sim.nodes["n0"].view
    assert view.primary and {m.id for m in view.members} == {"n0", "n1"}
    submit_and_settle(sim, "n1")
    # with n2 evicted, losing n1 leaves n0 alone: 1 of 2 is no majority (like Galera)
    sim.crash("n1")
    sim.run_until(sim.now + 3 * TIMEOUTS["election_timeout"])
    assert not primary(sim, "n0")
    # both come back: all three in one primary component again, n2 re-admitted
    sim.start("n1")
    sim.start("n2")
    assert sim.run_until(sim.now + 20, sim.converged), sim.describe()
    submit_and_settle(sim, "n2")
    sim.settle()
    sim.check()


def test_two_nodes_and_an_arbitrator_survive_losing_either_node() -> None:
    infos = [*members(2), MemberInfo("garb", "127.0.0.1:4010", arbitrator=True)]
    for victim, survivor in (("n0", "n1"), ("n1", "n0")):
        sim = cluster(infos)
        sim.crash(victim)
        sim.run_until(sim.now + 5.0)
        assert primary(sim, survivor) and primary(sim, "garb")
        submit_and_settle(sim, survivor)
        assert sim.nodes[survivor].delivered[-1][1] == survivor
        # the arbitrator votes and keeps the log but delivers nothing and submits nothing
        garb = sim.nodes["garb"]
        assert garb.delivered == []
        sim.submit("garb")
        assert "arbitrator" in (list(garb.answers.values())[-1][0].error or "")
        assert garb.member.state is not Role.LEADER


def test_restart_delivers_nothing_twice() -> None:
    sim = cluster(members(3))
    submit_and_settle(sim, "n0", 5)
    sim.crash("n1")
    submit_and_settle(sim, "n0", 5)
    sim.start("n1")
    assert sim.run_until(sim.now + 10, sim.converged)
    submit_and_settle(sim, "n2", 2)
    # Simulation.check_delivery fails on any repeated or skipped seqno across lifetimes
    assert [s for s, _, _ in sim.nodes["n1"].delivered] == list(range(1, 13))
    assert sim.nodes["n1"].storage.hard_state().delivered >= 12
    assert sim.nodes["n1"].member.delivered_seqno == 12


def test_weights_decide_the_majority() -> None:
    sim = cluster(members(3, weights=(2, 1, 1)))
    # n0 (weight 2) + n1 hold 3 of 4: primary; n2 alone is 1 of 4
    sim._on_partition(("n2",), 100.0)
    sim.run_until(sim.now + 2.0)
    assert primary(sim, "n0") and primary(sim, "n1") and not primary(sim, "n2")
    sim = cluster(members(3, weights=(2, 1, 1)))
    # n1 + n2 hold 2 of 4: not a strict majority, n0 alone neither
    sim._on_partition(("n0",), 100.0)
    sim.run_until(sim.now + 2.0)
    assert not any(primary(sim, i) for i in ("n0", "n1", "n2"))


def test_member_of_another_cluster_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    a = GroupMember(GroupConfig(MemberInfo("a", "x:1"), bootstrap=True), InMemoryLogStorage(), 0, 1)
    b = GroupMember(GroupConfig(MemberInfo("b", "x:2"), bootstrap=True), InMemoryLogStorage(), 0, 2)
    assert a.cluster_uuid != b.cluster_uuid
    a.take_actions()
    foreign = encode(Message(b.cluster_uuid, 5, Purged(1)))
    with caplog.at_level(logging.ERROR, "wsrep.group"):
        a.receive("b", foreign, 0.1)
        a.receive("b", foreign, 0.2)
    assert a.stats.dropped_messages == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"a: refusing b: it belongs to cluster {b.cluster_uuid}, this member to cluster "
        f"{a.cluster_uuid}"
    ]
    assert a.take_actions() == [] and a.state is Role.LEADER


def test_garbage_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    sim = cluster(members(3))
    leader = sim.nodes["n0"].member
    with caplog.at_level(logging.WARNING, "wsrep.group"):
        for junk in (b"", b"\x01", b"\xff" * 100, b"\x01\x01" + bytes(16) + b"\x00" * 8):
            leader.receive("n1", junk, sim.now)
    assert leader.stats.dropped_messages == 4
    assert "dropped a bad message from n1" in caplog.text
    submit_and_settle(sim, "n1")
    sim.check()


def test_far_behind_member_is_told_to_state_transfer() -> None:
    sim = cluster(members(3), storage_retain=5)
    sim.crash("n2")
    submit_and_settle(sim, "n0", 20)
    sim.start("n2")
    behind = watch_behind(sim.nodes["n2"])
    sim.run_until(sim.now + 3.0)
    assert behind and behind[0].donor == "n0"
    assert behind[0].delivered_seqno == 0 and behind[0].oldest_seqno > 1
    assert not primary(sim, "n2")


def test_a_new_member_joining_after_a_purge_is_told_to_state_transfer() -> None:
    """A member that never belonged to the cluster (no configuration yet) must not ignore
    `Purged`: it would wait for entries nobody holds any more, silently."""
    sim = Simulation(Schedule(0, "test", members(4), 0.0, 0.0, (0.001, 0.002), []))
    for node in sim.nodes.values():
        node.storage = InMemoryLogStorage(retain=5)
    sim.start("n0", bootstrap=True)
    sim.start("n1")
    sim.start("n2")
    formed = ("n0", "n1", "n2")

    def in_view(node_id: str) -> bool:
        view = sim.nodes[node_id].view
        return view is not None and view.primary and len(view.members) == len(formed)

    assert sim.run_until(10.0, lambda: all(in_view(i) for i in formed)), sim.describe()
    submit_and_settle(sim, "n0", 20)
    sim.start("n3")
    behind = watch_behind(sim.nodes["n3"])
    sim.run_until(sim.now + 3.0)
    assert behind and behind[0].delivered_seqno == 0 and behind[0].oldest_seqno > 1
    assert not primary(sim, "n3")


def test_flow_control_pauses_the_group_until_the_queue_drains() -> None:
    sim = cluster(members(3))
    slow = sim.nodes["n2"].member
    leader = sim.nodes["n0"].member
    # Galera's scaling: fc_limit * sqrt(members)
    limit = round(GroupConfig(MemberInfo("x", "")).fc_limit * math.sqrt(3))
    assert not slow.set_apply_queue(limit, sim.now)  # a follower at the limit: no report due
    sim.drain(sim.nodes["n2"])
    sim.run_until(sim.now + 0.5)
    assert not leader.flow_paused
    assert slow.set_apply_queue(limit + 1, sim.now)  # over it: a Flow report is due
    sim.drain(sim.nodes["n2"])
    sim.run_until(sim.now + 0.5)
    assert leader.flow_paused and slow.flow_paused
    before = len(sim.nodes["n0"].delivered)
    submit_and_settle(sim, "n1", 3)
    assert len(sim.nodes["n0"].delivered) == before  # held, not lost
    slow.set_apply_queue(0, sim.now)
    sim.drain(sim.nodes["n2"])
    sim.run_until(sim.now + 1.0)
    assert len(sim.nodes["n0"].delivered) == before + 3
    assert leader.stats.flow_control_paused_seconds > 0
    assert slow.stats.flow_control_sent == 1 and leader.stats.flow_control_recv == 1


def test_flow_control_reports_pause_and_resume_as_actions() -> None:
    m = GroupMember(
        GroupConfig(MemberInfo("a", "x:1"), bootstrap=True, fc_limit=2, fc_factor=0.5),
        InMemoryLogStorage(),
        0.0,
    )
    m.take_actions()
    assert not m.set_apply_queue(2, 0.5)  # at the limit: nothing to do (no round needed)
    assert m.set_apply_queue(3, 1.0)
    assert FlowControl(True) in m.take_actions()
    assert not m.set_apply_queue(2, 2.0)  # above limit * factor: still paused
    assert m.take_actions() == []
    assert m.set_apply_queue(1, 3.0)
    assert FlowControl(False) in m.take_actions()
    assert m.stats.flow_control_paused_seconds == 2.0


def test_oversized_submission_is_refused() -> None:
    m = GroupMember(
        GroupConfig(MemberInfo("a", "x:1"), bootstrap=True, max_payload=10),
        InMemoryLogStorage(),
        0.0,
    )
    m.take_actions()
    token = m.submit(b"x" * 11, 0.1)
    (answer,) = m.take_actions()
    assert answer == Submitted(token, None, "payload of 11 bytes exceeds max_payload")


def test_bootstrap_uses_the_configured_cluster_uuid() -> None:
    u = uuid.uuid4()
    m = GroupMember(
        GroupConfig(MemberInfo("a", "x:1"), bootstrap=True, cluster_uuid=u),
        InMemoryLogStorage(),
        0.0,
    )
    (change,) = m.take_actions()
    assert isinstance(change, ViewChange) and change.view.cluster_uuid == u


def test_leader_orders_nothing_for_a_stranger() -> None:
    sim = cluster(members(3))
    leader = sim.nodes["n0"].member
    forward = Forward(incarnation=1, ordered=0, requests=((1, b"smuggled"),))
    leader.receive("n9", encode(Message(leader.cluster_uuid, 1, forward)), sim.now)
    sim.drain(sim.nodes["n0"])
    sim.run_until(sim.now + 1.0)
    assert all(p != b"smuggled" for _, _, p in sim.nodes["n1"].delivered)
    submit_and_settle(sim, "n1")
    assert sim.nodes["n1"].delivered  # the group itself goes on


def test_new_member_is_dialed() -> None:
    sim = cluster(members(2))
    m = GroupMember(
        GroupConfig(MemberInfo("n0", "127.0.0.1:4001")), sim.nodes["n0"].storage, sim.now, 3
    )
    # a restarted member asks its driver to connect to the members its log knows
    assert Connect(MemberInfo("n1", "127.0.0.1:4002")) in m.take_actions()


def test_join_through_a_follower_is_forwarded_to_the_leader() -> None:
    infos = members(4)
    sim = Simulation(Schedule(0, "test", infos, 0.0, 0.0, (0.001, 0.002), []))
    sim.start("n0", bootstrap=True)
    sim.start("n1")
    sim.start("n2")
    sim.run_until(5.0)
    assert {m.id for m in sim.nodes["n0"].view.members} == {"n0", "n1", "n2"}
    submit_and_settle(sim, "n1", 2)
    sim.blocked.add(("n3", "n0"))  # the newcomer cannot reach the leader, only followers
    sim.start("n3")
    leader = sim.nodes["n0"].member
    assert sim.run_until(sim.now + 3.0, lambda: "n3" in leader._catch_up), sim.describe()
    # (it is admitted once caught up, which takes its acknowledgements reaching the leader)
    sim.blocked.clear()
    sim.run_until(sim.now + 3.0)
    view = sim.nodes["n3"].view
    assert view is not None and view.primary and view.own_index == 3
    assert [p for _, _, p in sim.nodes["n3"].delivered] == [
        p for _, _, p in sim.nodes["n0"].delivered
    ]


def test_whole_cluster_restarts_from_storage() -> None:
    sim = cluster(members(3))
    submit_and_settle(sim, "n0", 3)
    for node_id in ("n0", "n1", "n2"):
        sim.crash(node_id)
    sim.run_until(sim.now + 1.0)
    for node_id in ("n2", "n1", "n0"):
        sim.start(node_id)
    assert sim.run_until(sim.now + 10, sim.converged), sim.describe()
    submit_and_settle(sim, "n2", 2)
    sim.settle()
    sim.check()
    assert [s for s, _, _ in sim.nodes["n1"].delivered] == [1, 2, 3, 4, 5]


def test_a_member_ahead_in_term_with_a_shorter_log_does_not_block_elections() -> None:
    """Found by seed 21021 (PYTHONHASHSEED=18): members whose campaigns went unanswered
    (ignored under a leader's lease) sit at a higher term with a shorter log. They refuse
    every pre-vote of a lower term, the others refuse theirs for the log: nobody ever wins,
    unless a refused pre-vote hands its refuser's term over (etcd raft's rule)."""
    sim = cluster(members(3))
    sim.crash("n2")
    submit_and_settle(sim, "n0", 3)  # n2's log is now the shorter one
    n2 = sim.nodes["n2"].storage
    hs = n2.hard_state()
    n2.save_hard_state(HardState(hs.term + 4, "n2", hs.cluster_uuid, hs.delivered))
    sim.crash("n0")
    sim.start("n2")
    assert sim.run_until(sim.now + 10.0, lambda: sim.nodes["n1"].member.state is Role.LEADER), (
        sim.describe()
    )
    assert sim.nodes["n1"].member._term > hs.term + 4
    sim.start("n0")
    assert sim.run_until(sim.now + 10.0, sim.converged), sim.describe()
    submit_and_settle(sim, "n2")
    sim.check()
