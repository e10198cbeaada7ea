"""A member restarted from its gcache never grants two votes in one term (Raft's election
safety across crashes), and a member that starts from empty storage (new, or its gcache
lost) grants none until it has caught up with a primary leader.

Drives the pure core (`GroupMember`) with vote requests from three candidates, restarting
it from its reopened gcache at arbitrary points.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wsrep.gcache import GCache
from wsrep.group.codec import Message, VoteRequest, VoteResponse, decode, encode
from wsrep.group.log import Configuration, Entry, EntryKind, HardState
from wsrep.group.member import GroupMember
from wsrep.group.types import GroupConfig, MemberInfo, Send

CLUSTER = uuid.UUID(int=7)
ME = MemberInfo("m", "127.0.0.1:4000")
CANDIDATES = ("c1", "c2", "c3")
MEMBERS = (ME, *(MemberInfo(c, f"127.0.0.1:{4001 + i}") for i, c in enumerate(CANDIDATES)))
CONFIG = GroupConfig(member=ME)


def seed_storage(gcache: GCache) -> None:
    """A follower of a 4-member cluster in term 1 that has never voted."""
    view = Entry(1, 1, 0, 1, EntryKind.VIEW, config=Configuration(MEMBERS))
    gcache.append([view])
    gcache.save_hard_state(HardState(1, None, CLUSTER, 1))


def ask(member: GroupMember, candidate: str, term: int, last: tuple[int, int], now: float) -> bool:
    """Send a (real) vote request; whether `member` granted it."""
    request = VoteRequest(False, last[0], last[1])
    member.receive(candidate, encode(Message(CLUSTER, term, request)), now)
    granted = False
    for action in member.take_actions():
        if isinstance(action, Send) and action.to == candidate:
            body = decode(action.data, 1 << 20).body
            if isinstance(body, VoteResponse) and not body.pre:
                granted = body.granted
    return granted


# one step: a vote request (candidate, term offset, its log's last (index, term)) or a restart
steps = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(CANDIDATES),
            st.integers(0, 3),
            st.sampled_from([(1, 1), (2, 1), (2, 2), (0, 0)]),
        ),
        st.just("restart"),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_a_restarted_member_never_grants_two_votes_in_a_term(plan: list[object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gcache"
        gcache = GCache(path, segment_size=4096, size=1 << 20)
        seed_storage(gcache)
        granted: dict[int, set[str]] = {}
        now = 100.0  # past every election timeout: no leader lease
        member = GroupMember(CONFIG, gcache, now, 0)
        try:
            for step in plan:
                now += 10.0
                if step == "restart":  # what a SIGKILL leaves: the files
                    gcache.close()
                    gcache = GCache(path, segment_size=4096, size=1 << 20)
                    member = GroupMember(CONFIG, gcache, now, int(now))
                    continue
                candidate, offset, last = step  # type: ignore[misc]
                term = gcache.hard_state().term + offset
                if ask(member, candidate, term, last, now):
                    granted.setdefault(term, set()).add(candidate)
                    assert gcache.hard_state().voted_for == candidate  # durable before answering
                assert all(len(who) <= 1 for who in granted.values()), granted
        finally:
            gcache.close()


def test_votes_are_granted_and_remembered_across_restarts(tmp_path: Path) -> None:
    with GCache(tmp_path / "g", segment_size=4096, size=1 << 20) as gcache:
        seed_storage(gcache)
        member = GroupMember(CONFIG, gcache, 100.0, 0)
        assert ask(member, "c1", 2, (1, 1), 100.0)
        assert not ask(member, "c2", 2, (1, 1), 101.0)
    with GCache(tmp_path / "g", segment_size=4096, size=1 << 20) as gcache:
        assert gcache.hard_state() == HardState(2, "c1", CLUSTER, 1)
        member = GroupMember(CONFIG, gcache, 200.0, 1)
        assert not ask(member, "c2", 2, (1, 1), 200.0)
        assert ask(member, "c1", 2, (1, 1), 201.0)  # the same candidate again: yes
        assert ask(member, "c2", 3, (1, 1), 202.0)  # a new term: one new vote


def test_a_member_with_empty_storage_does_not_vote(tmp_path: Path) -> None:
    """It may have voted in this term, or acknowledged entries, before its gcache was lost."""
    with GCache(tmp_path / "g") as gcache:
        member = GroupMember(CONFIG, gcache, 100.0, 0)
        for term in (1, 2, 5):
            assert not ask(member, "c1", term, (9, 9), 100.0 + term)
        assert gcache.hard_state().voted_for is None
