"""Inconsistency voting on TOI outcomes (pure): the majority's outcome is the cluster's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.toi_vote import Inconsistent, Voting

NODES = frozenset({"n1", "n2", "n3"})


def test_all_agree_nobody_is_inconsistent() -> None:
    voting = Voting()
    assert voting.ran(5, 0) is None
    for member in sorted(NODES):
        assert voting.vote(5, member, 0, "n1", NODES) is None


def test_the_odd_node_out_is_inconsistent_even_the_origin() -> None:
    voting = Voting()  # on n1, the origin, which failed where the others succeeded
    assert voting.ran(7, 1146) is None
    assert voting.vote(7, "n1", 1146, "n1", NODES) is None
    assert voting.vote(7, "n2", 0, "n1", NODES) is None
    verdict = voting.vote(7, "n3", 0, "n1", NODES)
    assert verdict == Inconsistent(7, 1146, 0, (("n1", 1146), ("n2", 0), ("n3", 0)))
    assert "error 1146 here, OK in the cluster" in verdict.describe()
    assert voting.vote(7, "n3", 0, "n1", NODES) is None  # reported once


def test_decided_before_this_node_ran() -> None:
    voting = Voting()
    voting.vote(9, "n1", 0, "n1", NODES)
    voting.vote(9, "n2", 0, "n1", NODES)
    verdict = voting.ran(9, 1050)
    assert verdict is not None and (verdict.here, verdict.cluster) == (1050, 0)


def test_a_tie_goes_to_the_origin_and_outsiders_do_not_vote() -> None:
    two = frozenset({"a", "b"})
    voting = Voting()  # on b
    voting.ran(3, 1064)
    assert voting.vote(3, "arbitrator", 1064, "a", two) is None  # not a data member
    assert voting.vote(3, "b", 1064, "a", two) is None
    verdict = voting.vote(3, "a", 0, "a", two)
    assert verdict is not None and verdict.cluster == 0


outcomes = st.sampled_from([0, 1050, 1146])


@given(
    st.lists(outcomes, min_size=3, max_size=3),
    st.permutations(range(3)),
    st.integers(0, 2),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
)
def test_every_node_decides_alike_whatever_the_order(
    results: list[int], order: list[int], origin: int, runs_at: list[int]
) -> None:
    """The same reports reach every node in the same order; each node's own run ends
    at its own moment among them. Exactly the nodes off the cluster's outcome say so."""
    members = [f"n{i + 1}" for i in range(3)]
    reports = [(members[i], results[i]) for i in order]
    inconsistent = []
    for me in range(3):
        voting = Voting()
        found = []
        for step in range(4):
            if step == runs_at[me]:
                found.append(voting.ran(1, results[me]))
            if step < 3:
                member, error = reports[step]
                found.append(voting.vote(1, member, error, members[origin], NODES))
        verdicts = [v for v in found if v is not None]
        assert len(verdicts) <= 1
        inconsistent.append(bool(verdicts))
    majority = [r for r in results if results.count(r) >= 2]
    cluster = majority[0] if majority else results[origin]
    assert inconsistent == [r != cluster for r in results]
