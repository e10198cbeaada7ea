"""The certification index: a deterministic verdict for every ordered write set.

Rule (no exemption for the write set's own origin node, unlike Galera): a write set with
`seqno` S and `last_seen` L fails iff some earlier write set that passed, with seqno in
(L, S), has a key that conflicts with one of its keys by type (see `Key.conflicts_with`).

The index keeps, per key, only the highest seqno that wrote it: since every indexed seqno is
below S, "some conflicting writer in (L, S)" is exactly "the latest conflicting writer > L".
Four dicts keyed by hash-cached ident bytes make that one lookup per key in the common case
(no foreign keys, no DDL in flight):

    written[row]      latest seqno with an EXCLUSIVE key on the row
    referenced[row]   latest seqno with a SHARED key on the row
    table_rows[table] latest seqno with any row key in the table
    locked[table]     latest seqno with a TABLE key on the table

The same lookups give a passing write set its `depends_seqno` (Galera's name): the latest
earlier write set with a conflicting key, which the appliers must have committed before it
may apply; write sets with disjoint keys apply in parallel.

Purge walks a log of (seqno, keys) from the left and deletes a dict entry only if it still
holds that seqno (a later writer replaced it otherwise), so what stays is exact above the
purge point. Every node applies the same purges at the same position of the stream, so
verdicts never differ; a write set whose `last_seen` is below the purge point can't be
checked exactly and fails (`Outcome.STALE`), identically everywhere. Dependencies at or
below the purge point are dropped too: the safe point is the minimum `last_committed` over
all members, so those write sets are committed on every node already.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from certification.keys import Key, KeyKind

_EXCLUSIVE = KeyKind.EXCLUSIVE
_SHARED = KeyKind.SHARED


class CertificationRequest(NamedTuple):  # NamedTuple: built per write set, cheaply
    seqno: int  # global seqno the group assigned to the write set
    last_seen: int  # origin's last committed seqno before the transaction's snapshot
    keys: tuple[Key, ...]  # held by the index until purged: immutable on purpose


class Outcome(Enum):
    PASSED = "passed"
    CONFLICT = "conflict"  # a key was written in (last_seen, seqno)
    STALE = "stale"  # last_seen below the purge point: can't be checked exactly
    INVALID = "invalid"  # last_seen not in [0, seqno): a broken origin


class Verdict(NamedTuple):  # NamedTuple: built per write set, cheaply
    outcome: Outcome
    key: Key | None = None  # the write set's first conflicting key (CONFLICT)
    conflict_seqno: int | None = None  # the latest conflicting writer of that key (CONFLICT)
    depends_seqno: int = 0  # PASSED: apply only after this seqno committed (0: no dependency)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def describe(self) -> str:
        if self.key is not None:
            return f"{self.outcome.value}: {self.key.describe()} written at {self.conflict_seqno}"
        if self.passed:
            return f"passed, depends on {self.depends_seqno}"
        return self.outcome.value


@dataclass(frozen=True, slots=True)
class CertificationStats:
    certified: int  # write sets given a verdict
    passed: int
    failed: int
    index_size: int  # keys held: rows written, rows referenced, tables locked
    log_length: int  # passed write sets held until purge
    purged_to: int  # entries at or below this seqno are gone
    avg_keys_per_write_set: float  # over certified write sets


class CertificationIndex:
    def __init__(self, initial_seqno: int = 0) -> None:
        """`initial_seqno`: the position the stream starts after.

        Nothing before it is known, so it is also the first purge point: a write set that
        claims to have seen less is stale. For a joiner see `preload`.
        """
        self._written: dict[bytes, int] = {}
        self._referenced: dict[bytes, int] = {}
        self._table_rows: dict[bytes, int] = {}
        self._locked: dict[bytes, int] = {}
        self._log: deque[tuple[int, tuple[Key, ...]]] = deque()
        self._last_seqno = initial_seqno
        self._purged_to = initial_seqno
        self._certified = 0
        self._failed = 0
        self._keys_seen = 0

    @property
    def last_seqno(self) -> int:
        return self._last_seqno

    @property
    def purged_to(self) -> int:
        return self._purged_to

    def certify(self, ws: CertificationRequest) -> Verdict:
        """Give the verdict for the next write set in total order; index it if it passed."""
        seqno, last_seen, keys = ws.seqno, ws.last_seen, ws.keys
        if seqno <= self._last_seqno:
            raise ValueError(f"seqno {seqno} is not after {self._last_seqno}: out of order")
        self._last_seqno = seqno
        self._certified += 1
        self._keys_seen += len(keys)
        if not 0 <= last_seen < seqno:
            verdict = Verdict(Outcome.INVALID)
        elif last_seen < self._purged_to:
            verdict = Verdict(Outcome.STALE)
        else:
            verdict = self._check(keys, last_seen)
        if verdict.outcome is Outcome.PASSED:
            self._insert(seqno, keys)
        else:
            self._failed += 1
        return verdict

    def precheck(self, keys: tuple[Key, ...], last_seen: int) -> Verdict:
        """The verdict `keys` would get if ordered now, without indexing anything. A
        CONFLICT is final: the write set that conflicts stays in the index until a purge,
        and a purge past it makes `last_seen` STALE. So the caller may fail the transaction
        without ordering it (a PASSED here proves nothing: later write sets may conflict)."""
        if not self._purged_to <= last_seen <= self._last_seqno:
            return Verdict(Outcome.PASSED)
        return self._check(keys, last_seen)

    def preload(self, ws: CertificationRequest) -> None:
        """Index a write set the cluster already passed, without certifying it again.

        For a joiner (Galera's certification index preload from IST): start with
        `CertificationIndex(initial_seqno=C)`, C being the cluster's purge point at the
        joiner's position P, preload every write set that passed in (C, P], then certify
        from P+1 on: the index then holds exactly what every other node's holds, so the
        verdicts are the same. Re-certifying that history instead could differ, since the
        other nodes judged it against their purge point at the time.
        """
        if ws.seqno <= self._last_seqno:
            raise ValueError(f"seqno {ws.seqno} is not after {self._last_seqno}: out of order")
        self._last_seqno = ws.seqno
        self._insert(ws.seqno, ws.keys)

    def _check(self, keys: tuple[Key, ...], last_seen: int) -> Verdict:
        written, referenced = self._written, self._referenced
        table_rows, locked = self._table_rows, self._locked
        depends = 0  # never above last_seen, so only a new maximum can be a conflict
        for key in keys:
            kind = key.kind
            if kind is _EXCLUSIVE:
                seen = written.get(key.ident, 0)
                if referenced:  # empty unless foreign keys are in play
                    shared = referenced.get(key.ident, 0)
                    if shared > seen:
                        seen = shared
            elif kind is _SHARED:
                seen = written.get(key.ident, 0)
            else:
                seen = table_rows.get(key.table, 0)
            if locked:  # TOI is rare and purged quickly: no lookup while no table is locked
                whole = locked.get(key.table, 0)
                if whole > seen:
                    seen = whole
            if seen > depends:
                if seen > last_seen:
                    return Verdict(Outcome.CONFLICT, key, seen)
                depends = seen
        return Verdict(Outcome.PASSED, depends_seqno=depends)

    def _insert(self, seqno: int, keys: tuple[Key, ...]) -> None:
        written, referenced = self._written, self._referenced
        table_rows, locked = self._table_rows, self._locked
        last_table = None  # a write set's keys share table objects: store each run once
        for key in keys:
            kind = key.kind
            if kind is _EXCLUSIVE:
                written[key.ident] = seqno
            elif kind is _SHARED:
                referenced[key.ident] = seqno
            else:
                locked[key.table] = seqno
                continue
            if key.table is not last_table:
                last_table = key.table
                table_rows[last_table] = seqno
        self._log.append((seqno, keys))

    def purge(self, safe_seqno: int) -> None:
        """Forget write sets at or below the cluster-wide safe point.

        Every node must call this at the same position of the ordered stream. A safe point
        below the current one (a member with an older position joined) changes nothing.
        """
        if safe_seqno <= self._purged_to:
            return
        self._purged_to = safe_seqno
        written, referenced = self._written, self._referenced
        table_rows, locked = self._table_rows, self._locked
        log = self._log
        while log and log[0][0] <= safe_seqno:
            seqno, keys = log.popleft()
            last_table = None
            for key in keys:
                kind = key.kind
                held = written if kind is _EXCLUSIVE else referenced if kind is _SHARED else locked
                if held.get(key.ident) == seqno:
                    del held[key.ident]
                if key.table is not last_table:
                    last_table = key.table
                    if table_rows.get(last_table) == seqno:
                        del table_rows[last_table]

    @property
    def stats(self) -> CertificationStats:
        certified = self._certified
        return CertificationStats(
            certified=certified,
            passed=certified - self._failed,
            failed=self._failed,
            index_size=len(self._written) + len(self._referenced) + len(self._locked),
            log_length=len(self._log),
            purged_to=self._purged_to,
            avg_keys_per_write_set=self._keys_seen / certified if certified else 0.0,
        )
