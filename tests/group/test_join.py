"""Admitting a new member (Raft thesis 4.2.1): it catches up without a vote first.

A newcomer that gets no entry before it goes away must never become a vote the group
waits for: restarted with nothing, it is amnesiac and votes for nobody.
"""

from __future__ import annotations

import uuid

from wsrep.group.codec import Append, Message, VoteRequest, VoteResponse, decode, encode
from wsrep.group.log import Configuration, Entry, EntryKind, InMemoryLogStorage
from wsrep.group.member import GroupMember
from wsrep.group.types import GroupConfig, MemberInfo, Send

from .sim import TIMEOUTS, Schedule, Simulation
from .test_member import members, primary, submit_and_settle


def in_view(sim: Simulation, node_id: str, ids: set[str]) -> bool:
    view = sim.nodes[node_id].view
    return view is not None and view.primary and {m.id for m in view.members} == ids


def test_a_newcomer_that_heard_nothing_is_no_vote_the_group_waits_for() -> None:
    """Seeds 6588 / 5317 of the simulation in small: the leader hears the newcomer's `Join`,
    but nothing it sends gets through; then the leader crashes and restarts. Admitted at
    once (a joint configuration needing its vote) the newcomer, amnesiac, would leave the
    leader non-primary for good; caught up first, it was never a voter."""
    sim = Simulation(Schedule(0, "test", members(2), 0.0, 0.0, (0.001, 0.002), []))
    sim.start("n0", bootstrap=True)
    submit_and_settle(sim, "n0", 2)
    sim.blocked.add(("n0", "n1"))
    sim.start("n1")
    sim.run_until(sim.now + 2 * TIMEOUTS["election_timeout"])
    assert not primary(sim, "n1")
    sim.crash("n0")
    sim.start("n0")
    assert sim.run_until(sim.now + 5.0, lambda: in_view(sim, "n0", {"n0"})), sim.describe()
    submit_and_settle(sim, "n0")
    # once it can hear the leader it catches up, then is admitted
    sim.blocked.clear()
    assert sim.run_until(sim.now + 10.0, sim.converged), sim.describe()
    submit_and_settle(sim, "n1")
    assert len(sim.nodes["n1"].delivered) == 4
    sim.check()


def test_a_newcomer_is_admitted_only_once_it_holds_the_commit() -> None:
    sim = Simulation(Schedule(0, "test", members(3), 0.0, 0.0, (0.001, 0.002), []))
    sim.start("n0", bootstrap=True)
    sim.start("n1")
    assert sim.run_until(5.0, lambda: in_view(sim, "n0", {"n0", "n1"})), sim.describe()
    submit_and_settle(sim, "n0", 30)
    leader = sim.nodes["n0"].member
    assert leader is not None
    commit = leader._commit
    sim.start("n2")
    admitted: list[int] = []

    def watch() -> bool:
        cfg = leader._log.config
        if cfg is not None and cfg.info("n2") is not None and not admitted:
            admitted.append(leader._replication.followers["n2"].match)
        return bool(admitted)

    assert sim.run_until(sim.now + 5.0, watch), sim.describe()
    assert admitted[0] >= commit
    assert sim.run_until(sim.now + 5.0, sim.converged), sim.describe()


def test_a_newcomer_that_leaves_while_catching_up_is_out_at_once() -> None:
    """Seed 3017: joiners that left before they were admitted. Not a member yet, the leader
    answers its leave at once and stops replicating to it."""
    sim = Simulation(Schedule(0, "test", members(2), 0.0, 0.0, (0.001, 0.002), []))
    sim.start("n0", bootstrap=True)
    sim.start("n1")
    leader, joiner = sim.nodes["n0"].member, sim.nodes["n1"].member
    assert leader is not None and joiner is not None
    assert sim.run_until(sim.now + 3.0, lambda: "n1" in leader._catch_up), sim.describe()
    sim.blocked.add(("n1", "n0"))  # its acknowledgements never arrive: it stays a newcomer
    assert sim.run_until(sim.now + 3.0, lambda: primary(sim, "n1")), sim.describe()
    sim.blocked.clear()
    joiner.leave(sim.now)
    sim.drain(sim.nodes["n1"])
    assert sim.run_until(sim.now + 2.0, lambda: joiner.has_left), sim.describe()
    sim.crash("n1")
    assert "n1" not in leader._catch_up and "n1" not in leader._replication.followers
    assert in_view(sim, "n0", {"n0"})


def vote_after_a_batch(batch: int) -> bool:
    """A fresh member gets the first `batch` entries of leader a's log (term 2, commit index
    already 9); then b, whose log is as long, asks for its vote in term 3."""
    cluster_uuid = uuid.UUID(int=7)
    a, b = MemberInfo("a", "127.0.0.1:1"), MemberInfo("b", "127.0.0.1:2")
    config = GroupConfig(MemberInfo("n", "127.0.0.1:3"))
    member = GroupMember(config, InMemoryLogStorage(), 0.0, 1)
    cfg = Configuration((a, b))
    log = (
        Entry(1, 1, 0, 1, EntryKind.VIEW, config=cfg),
        Entry(2, 2, 0, 2, EntryKind.VIEW, config=cfg),  # leader a opens term 2
        Entry(2, 3, 1, 2, EntryKind.PAYLOAD, "a", 1, 1, b"x"),
    )
    append = Append(0, 0, 9, log[:batch], True, False)
    member.receive("a", encode(Message(cluster_uuid, 2, append)), 1.0)
    member.take_actions()
    later = 1.0 + 2 * config.election_timeout  # a is gone: no lease
    member.receive("b", encode(Message(cluster_uuid, 3, VoteRequest(False, 3, 2))), later)
    answers = [decode(s.data, 1 << 20).body for s in member.take_actions() if isinstance(s, Send)]
    return VoteResponse(False, True) in answers


def test_an_amnesiac_votes_once_its_commit_point_is_in_the_leaders_term() -> None:
    """A newcomer catching up gets batches that end before the leader's commit index. Once
    its commit point is an entry of the leader's term (the opening view), it holds every
    entry committed in earlier terms and may vote; waiting for a batch that reaches the
    leader's commit index could leave it mute when the leader crashes right after
    admitting it. Short of the opening view it still votes for nobody."""
    assert vote_after_a_batch(3)
    assert vote_after_a_batch(2)
    assert not vote_after_a_batch(1)
