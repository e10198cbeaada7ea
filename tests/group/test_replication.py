"""The leader's replication bookkeeping: commit rule, pipelining, resend, purged followers."""

from __future__ import annotations

import uuid

from wsrep.group.codec import Append, Purged, decode
from wsrep.group.local_log import LocalLog
from wsrep.group.log import Configuration, Entry, EntryKind, HardState, InMemoryLogStorage
from wsrep.group.replication import Header, Replication
from wsrep.group.types import GroupConfig, MemberInfo

A, B, C = (MemberInfo(n, f"127.0.0.1:{4001 + i}") for i, n in enumerate("abc"))
CONFIG = Configuration((A, B, C))


def log_with(terms: list[int], retain: int | None = None) -> LocalLog:
    st = InMemoryLogStorage(retain)
    st.append([Entry(terms[0], 1, 0, 1, EntryKind.VIEW, config=CONFIG)])
    st.append(
        [
            Entry(t, i, i - 1, 1, EntryKind.PAYLOAD, "a", 1, i, b"x")
            for i, t in enumerate(terms[1:], 2)
        ]
    )
    return LocalLog(st, 0)


def replication(log: LocalLog, max_batch: int = 2) -> Replication:
    r = Replication(log, GroupConfig(A, max_batch=max_batch, suspect_timeout=5.0))
    r.track({"b", "c"}, now=0.0)
    return r


def header(commit: int = 0) -> Header:
    return Header(uuid.UUID(int=1), 3, commit, True, False)


def test_commit_needs_a_quorum_and_an_entry_of_the_leaders_term() -> None:
    log = log_with([1, 1, 2, 3, 3])
    r = replication(log)
    assert r.commit_point("a", CONFIG, 0, term=3) == 0  # only the leader holds anything
    r.acknowledged(r.followers["b"], True, 3)  # b holds up to index 3 (term 2)
    # index 3 is on a quorum but of an older term: Raft may not count it (Figure 8)
    assert r.commit_point("a", CONFIG, 0, term=3) == 0
    r.acknowledged(r.followers["b"], True, 5)
    assert r.commit_point("a", CONFIG, 0, term=3) == 5


def test_pipelining_sends_batches_then_resends_from_the_acknowledged_point() -> None:
    r = replication(log_with([3] * 7))
    ((_, probe),) = r.messages(header(), skip={"c"})  # a new follower is probed at our end
    assert decode(probe, 1 << 20).body == Append(7, 3, 0, (), True, False)
    r.acknowledged(r.followers["b"], False, 0)  # b's log is empty
    sent = r.messages(header(), skip={"c"})
    batches = [decode(data, 1 << 20).body for to, data in sent]
    assert all(to == "b" for to, _ in sent)
    assert [(m.prev_index, len(m.entries)) for m in batches if isinstance(m, Append)] == [
        (0, 2), (2, 2), (4, 2), (6, 1),
    ]  # fmt: skip
    assert r.messages(header(), skip={"b", "c"}) == []  # nothing new, no heartbeat due
    r.acknowledged(r.followers["b"], True, 2)
    r.heartbeat(now=1.0)
    r.heartbeat(now=2.0)  # a period without progress: go back to what b acknowledged
    (_, data), *_ = r.messages(header(), skip={"c"})
    body = decode(data, 1 << 20).body
    assert isinstance(body, Append) and body.prev_index == 2


def test_a_follower_behind_the_purged_log_is_told_so() -> None:
    log = log_with([1] * 40, retain=10)
    log.storage.save_hard_state(HardState(1, None, None, delivered=40))
    r = replication(log)
    r.acknowledged(r.followers["b"], False, 3)  # b's log ends at 3
    sent = dict(r.messages(header(), skip={"c"}))
    body = decode(sent["b"], 1 << 20).body
    assert isinstance(body, Purged) and body.oldest_seqno == log.storage.first_index() - 1
