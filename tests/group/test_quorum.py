"""Weighted majorities: any two quorums of the same or of consecutive configurations meet."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wsrep.group.log import Configuration
from wsrep.group.types import MemberInfo

IDS = [f"n{i}" for i in range(6)]
weighted = st.lists(
    st.tuples(st.sampled_from(IDS), st.integers(0, 5)), min_size=1, max_size=6,
    unique_by=lambda t: t[0],
).map(lambda ms: tuple(MemberInfo(i, "", w) for i, w in ms))  # fmt: skip
subsets = st.sets(st.sampled_from(IDS))


@given(weighted, subsets, subsets)
def test_two_quorums_of_one_configuration_intersect(
    members: tuple[MemberInfo, ...], a: set[str], b: set[str]
) -> None:
    cfg = Configuration(members)
    if cfg.has_quorum(a) and cfg.has_quorum(b):
        assert a & b


@given(weighted, weighted, subsets, subsets)
def test_joint_quorum_meets_quorums_of_old_and_new(
    old: tuple[MemberInfo, ...], new: tuple[MemberInfo, ...], a: set[str], b: set[str]
) -> None:
    """Why membership changes go through a joint configuration, whatever the weights."""
    joint = Configuration(new, old)
    if joint.has_quorum(a):
        if Configuration(old).has_quorum(b):
            assert a & b
        if Configuration(new).has_quorum(b):
            assert a & b


def test_strict_majority_by_weight() -> None:
    cfg = Configuration((MemberInfo("a", "", 2), MemberInfo("b", "", 1), MemberInfo("c", "", 1)))
    assert cfg.has_quorum({"a", "b"}) and cfg.has_quorum({"a", "c"})
    assert not cfg.has_quorum({"a"}) and not cfg.has_quorum({"b", "c"})
