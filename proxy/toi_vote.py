"""Did a TOI statement come out here as it did in the cluster? Pure (Galera 4's
inconsistency voting).

Every node that runs a TOI statement reports its outcome (0 or the error code) through
the ordered stream. The cluster's outcome is the one a strict majority of the data
members of the view reported; when all have reported and none has a majority, the
origin's (its client got that answer). A node whose own outcome differs from the
cluster's is inconsistent. Every node sees the same reports in the same order, so every
node reaches the same decision, whichever arrives first: its own run or the votes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

REMEMBERED = 1_000  # statements whose votes are kept (a decision needs only a few)


@dataclass(frozen=True, slots=True)
class Inconsistent:
    seqno: int
    here: int  # this node's outcome
    cluster: int  # the cluster's
    votes: tuple[tuple[str, int], ...]  # (member, outcome) as reported

    def describe(self) -> str:
        shown = ", ".join(f"{member} {_result(error)}" for member, error in self.votes)
        return (
            f"TOI seqno {self.seqno} came out differently: {_result(self.here)} here, "
            f"{_result(self.cluster)} in the cluster ({shown})"
        )


@dataclass(slots=True)
class _Statement:
    origin: str = ""
    here: int | None = None  # this node's outcome, once run
    votes: dict[str, int] = field(default_factory=dict)
    cluster: int | None = None  # decided outcome
    settled: bool = False  # compared already


class Voting:
    def __init__(self) -> None:
        self._statements: dict[int, _Statement] = {}

    def ran(self, seqno: int, error: int) -> Inconsistent | None:
        """This node ran the statement at `seqno` with this outcome."""
        statement = self._get(seqno)
        statement.here = error
        return self._settle(seqno, statement)

    def vote(
        self, seqno: int, member: str, error: int, origin: str, electorate: frozenset[str]
    ) -> Inconsistent | None:
        """`member` reported `error` for the statement `origin` sent at `seqno`;
        `electorate`: the data members of the current view."""
        statement = self._get(seqno)
        if member not in electorate or statement.cluster is not None:
            return None
        statement.origin = origin
        statement.votes[member] = error
        counts = Counter(statement.votes.values())
        outcome, top = counts.most_common(1)[0]
        if top * 2 > len(electorate):
            statement.cluster = outcome
        elif electorate <= statement.votes.keys() and statement.origin in statement.votes:
            statement.cluster = statement.votes[statement.origin]
        return self._settle(seqno, statement)

    def _get(self, seqno: int) -> _Statement:
        statement = self._statements.get(seqno)
        if statement is None:
            statement = self._statements[seqno] = _Statement()
            while len(self._statements) > REMEMBERED:
                del self._statements[min(self._statements)]
        return statement

    @staticmethod
    def _settle(seqno: int, statement: _Statement) -> Inconsistent | None:
        if statement.settled or statement.here is None or statement.cluster is None:
            return None
        statement.settled = True
        if statement.here == statement.cluster:
            return None
        return Inconsistent(
            seqno, statement.here, statement.cluster, tuple(sorted(statement.votes.items()))
        )


def _result(error: int) -> str:
    return f"error {error}" if error else "OK"
