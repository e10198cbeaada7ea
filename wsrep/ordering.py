"""Apply and commit ordering: Galera's apply and commit monitors.

Every ordered write set has a global `seqno`. Certification also gives it a
`depends_seqno`: the highest earlier seqno whose keys overlap its own (or seqno-1 for
write sets that must run alone, like TOI). Two rules make parallel appliers safe:

- a write set may start applying once every seqno <= depends_seqno has committed, so
  write sets that touch disjoint rows apply side by side;
- commits happen strictly in seqno order, so every node's history is the same sequence
  and its position `uuid:seqno` is always a prefix of the global order.

A commit is pipelined like Galera's group commit: a seqno *enters* its commit once
nothing later can overtake it any more (the proxy: its update of the position row holds
that row's lock, and the COMMIT follows in the same round trip); the next seqno may then
start its own (`wait_commit_order`), so the backend's log flushes overlap. A seqno is
*committed* when its COMMIT returned; those may be reported out of order within the
entered ones, and `last_committed` (what reads and dependencies rely on) only counts an
unbroken prefix.

A pipelined commit can still fail after it entered (its connection dies between the
position update and the COMMIT, which rolls both back): the next seqno's update, waiting
on the row lock, would then go ahead and commit past a hole. So each commit's position
update only succeeds if the row holds at least `entered_before(seqno)`, the last seqno
that entered its commit before it; otherwise its COMMIT is not run and it is replayed
after the failed one (see `proxy.replication.commit_in_order`).

A write set that failed certification still owns its seqno: it is `skip`ped, which
counts as committed for ordering. `OrderingMonitor` is the pure bookkeeping;
`OrderingGate` wraps it for trio tasks.
"""

from __future__ import annotations

import bisect
import heapq
import itertools

import trio


class OrderingError(RuntimeError):
    pass


class OrderingMonitor:
    """Which seqnos may apply and commit, given what has committed so far."""

    def __init__(self, last_committed: int) -> None:
        self._last_committed = last_committed
        # Every seqno up to this one entered its commit (or finished).
        self._entered = last_committed
        # Finished out of order (a skip can arrive before its predecessors commit).
        self._done_ahead: set[int] = set()
        # Seqnos that entered by their own position update, ascending; those at or below
        # last_committed are pruned but the highest of them (`entered_before`'s answers).
        # -1 first: what committed before we started (the backend's position, which may
        # still be the undefined -1) sets no bound.
        self._entries = [-1]

    @property
    def last_committed(self) -> int:
        return self._last_committed

    @property
    def last_entered(self) -> int:
        return self._entered

    def may_apply(self, depends_seqno: int) -> bool:
        return depends_seqno <= self._last_committed

    def may_commit(self, seqno: int) -> bool:
        return seqno == self._last_committed + 1

    def may_enter(self, seqno: int) -> bool:
        return seqno <= self._entered + 1

    def enter(self, seqno: int) -> None:
        """`seqno` began its commit and can no longer be overtaken (again: a no-op)."""
        if not self.may_enter(seqno):
            raise OrderingError(
                f"seqno {seqno} enters its commit out of order (last entered {self._entered})"
            )
        if seqno > self._entered:
            self._entries.append(seqno)
        self._entered = max(self._entered, seqno)
        self._advance()

    def entered_before(self, seqno: int) -> int:
        """The last seqno below `seqno` that entered its commit here (-1 if none): the
        position row must hold at least this before `seqno` may commit."""
        entries = self._entries
        return entries[bisect.bisect_left(entries, seqno) - 1] if entries[0] < seqno else -1

    def commit(self, seqno: int) -> int:
        """Record that `seqno` committed; returns the new last committed seqno. A seqno
        that entered its commit may finish before an earlier one that entered too."""
        if seqno <= self._last_committed or seqno in self._done_ahead:
            raise OrderingError(f"seqno {seqno} already finished")
        if not (self.may_commit(seqno) or seqno <= self._entered):
            raise OrderingError(
                f"commit of seqno {seqno} out of order (last committed {self._last_committed})"
            )
        self._done_ahead.add(seqno)
        self._advance()
        return self._last_committed

    def skip(self, seqno: int) -> int:
        """`seqno` will never commit here (failed certification, or not ours to apply)."""
        if seqno <= self._last_committed or seqno in self._done_ahead:
            raise OrderingError(f"seqno {seqno} already finished")
        self._done_ahead.add(seqno)
        self._advance()
        return self._last_committed

    def _advance(self) -> None:
        while self._last_committed + 1 in self._done_ahead:
            self._last_committed += 1
            self._done_ahead.remove(self._last_committed)
        entries = self._entries
        if len(entries) > 1 and entries[1] <= self._last_committed:
            del entries[: bisect.bisect_right(entries, self._last_committed) - 1]
        self._entered = max(self._entered, self._last_committed)
        while self._entered + 1 in self._done_ahead:  # a skip ahead counts as entered
            self._entered += 1


class OrderingGate:
    """Trio side of the monitor: tasks wait for their turn to apply or commit."""

    def __init__(self, last_committed: int) -> None:
        self.monitor = OrderingMonitor(last_committed)
        # Waiters by the seqno they wait for (heaps): a commit wakes only the tasks whose
        # turn it is, not every applier and committing session.
        self._committed: list[tuple[int, int, trio.Event]] = []
        self._entered: list[tuple[int, int, trio.Event]] = []
        self._tiebreak = itertools.count()

    @property
    def last_committed(self) -> int:
        return self.monitor.last_committed

    async def wait_committed(self, seqno: int) -> None:
        """Until everything up to `seqno` committed here (causal reads, apply admission)."""
        if self.monitor.last_committed < seqno:
            await self._wait(self._committed, seqno)

    async def wait_apply_turn(self, depends_seqno: int) -> None:
        await self.wait_committed(depends_seqno)

    @property
    def last_entered(self) -> int:
        return self.monitor.last_entered

    async def wait_commit_turn(self, seqno: int) -> None:
        """Until everything before `seqno` committed (a commit that is not pipelined)."""
        await self.wait_committed(seqno - 1)

    async def wait_commit_order(self, seqno: int) -> None:
        """Until everything before `seqno` entered its commit: `seqno` may start its own,
        then `enter(seqno)` once it cannot be overtaken, `commit(seqno)` once done."""
        if self.monitor.last_entered < seqno - 1:
            await self._wait(self._entered, seqno - 1)

    def enter(self, seqno: int) -> None:
        self.monitor.enter(seqno)
        self._wake()

    def entered_before(self, seqno: int) -> int:
        return self.monitor.entered_before(seqno)

    def commit(self, seqno: int) -> None:
        self.monitor.commit(seqno)
        self._wake()

    def skip(self, seqno: int) -> None:
        self.monitor.skip(seqno)
        self._wake()

    async def _wait(self, waiters: list[tuple[int, int, trio.Event]], seqno: int) -> None:
        event = trio.Event()  # (left in the heap if cancelled: set and dropped later)
        heapq.heappush(waiters, (seqno, next(self._tiebreak), event))
        await event.wait()

    def _wake(self) -> None:
        for waiters, reached in (
            (self._committed, self.monitor.last_committed),
            (self._entered, self.monitor.last_entered),
        ):
            while waiters and waiters[0][0] <= reached:
                heapq.heappop(waiters)[2].set()
