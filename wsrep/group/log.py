"""The replicated log: its entries, and the storage interface that keeps them.

The log is Raft's: every entry has a term and an index. Two kinds of entries exist:

- `PAYLOAD`: an opaque payload submitted by `origin`; it consumes the next global seqno.
- `VIEW`: a configuration (the members and their weights). A *stable* view consumes the next
  conf_id and is delivered as a `ViewChange`; a *joint* view (`old` set, Raft's joint
  consensus) only exists while a membership change is in flight and is never delivered.

Every entry carries the seqno and conf_id in force after it, so the position of any entry
in Galera terms is known without scanning the log.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from wsrep.group.types import MemberId, MemberInfo


class EntryKind(enum.IntEnum):
    PAYLOAD = 1
    VIEW = 2


@dataclass(frozen=True, slots=True)
class Configuration:
    """Voting members; while `old` is set both it and `members` must agree (joint consensus)."""

    members: tuple[MemberInfo, ...]
    old: tuple[MemberInfo, ...] | None = None

    @property
    def joint(self) -> bool:
        return self.old is not None

    def voters(self) -> set[MemberId]:
        ids = {m.id for m in self.members}
        if self.old is not None:
            ids.update(m.id for m in self.old)
        return ids

    def info(self, member_id: MemberId) -> MemberInfo | None:
        for m in self.members:
            if m.id == member_id:
                return m
        for m in self.old or ():
            if m.id == member_id:
                return m
        return None

    def has_quorum(self, ids: set[MemberId]) -> bool:
        """A weighted strict majority of `members` (and of `old` while joint) is in `ids`."""
        if not weighted_majority(self.members, ids):
            return False
        return self.old is None or weighted_majority(self.old, ids)


def weighted_majority(members: tuple[MemberInfo, ...], ids: set[MemberId]) -> bool:
    total = sum(m.weight for m in members)
    present = sum(m.weight for m in members if m.id in ids)
    return 2 * present > total


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    seqno: int  # PAYLOAD: its own seqno; VIEW: the last payload seqno before it
    conf_id: int  # stable VIEW: its own conf_id; others: the conf_id in force
    kind: EntryKind
    origin: MemberId = ""  # PAYLOAD: who submitted it
    incarnation: int = 0  # PAYLOAD: the origin's process lifetime, to match submissions
    request: int = 0  # PAYLOAD: the origin's submission number within that incarnation
    payload: bytes = b""
    config: Configuration | None = None  # VIEW only


@dataclass(frozen=True, slots=True)
class HardState:
    """What must survive a restart besides the entries (Raft's persistent state + Galera's)."""

    term: int = 0
    voted_for: MemberId | None = None
    cluster_uuid: UUID | None = None
    # the last log index this member delivered; a restarted member delivers from the next one
    delivered: int = 0


class LogStorage(Protocol):
    """Where a member keeps its log.

    A change of term, vote or cluster uuid is durable when `save_hard_state` returns.
    Appended entries may become durable later: by the job `sync_job()` hands out, which
    the driver runs before it carries out anything the core decided after those appends
    (an acknowledgement, a vote, a delivery), so nothing leaves a member that its disk
    does not back. `delivered` alone may be persisted lazily (it only spares a restarted
    member re-deliveries; never beyond what was delivered).

    Entries below `first_index()` were purged; `base()` describes the last purged one (its
    term, index, seqno, conf_id) and the stable configuration in force at it, so the log can
    still be matched and continued. An on-disk gcache implements the same interface.
    """

    def hard_state(self) -> HardState: ...

    def save_hard_state(self, state: HardState) -> None: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def entry(self, index: int) -> Entry: ...

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries with lo <= index < hi, all of which must be held."""
        ...

    def base(self) -> tuple[Entry | None, Entry | None]:
        """(last purged entry, the last stable VIEW entry at or before it), None if none."""
        ...

    def append(self, entries: list[Entry]) -> None:
        """Add entries right after `last_index()`."""
        ...

    def truncate_from(self, index: int) -> None:
        """Drop entries with index >= `index` (never below what was delivered)."""
        ...

    def sync_job(self) -> Callable[[], None] | None:
        """A callable that makes every write so far durable, safe to run in a worker thread
        while more is written; None when everything written is durable already."""
        ...


class InMemoryLogStorage:
    """A `LogStorage` in a list; keeps `retain` (up to 1.25 x `retain`) delivered entries.

    `retain=None` keeps everything.
    """

    def __init__(self, retain: int | None = None) -> None:
        self._retain = retain
        self._state = HardState()
        self._entries: list[Entry] = []
        self._first = 1  # index of _entries[0]
        self._base: Entry | None = None
        self._base_view: Entry | None = None

    def hard_state(self) -> HardState:
        return self._state

    def save_hard_state(self, state: HardState) -> None:
        self._state = state
        retain = self._retain
        # purge in chunks: dropping the head of a list costs its length
        if retain is not None and state.delivered - retain - self._first >= max(1, retain // 4):
            self._purge_to(state.delivered - retain)

    def first_index(self) -> int:
        return self._first

    def last_index(self) -> int:
        return self._first + len(self._entries) - 1

    def entry(self, index: int) -> Entry:
        if index < self._first:
            raise IndexError(f"entry {index} was purged (first held is {self._first})")
        return self._entries[index - self._first]

    def entries(self, lo: int, hi: int) -> list[Entry]:
        if lo < self._first:
            raise IndexError(f"entry {lo} was purged (first held is {self._first})")
        return self._entries[lo - self._first : hi - self._first]

    def base(self) -> tuple[Entry | None, Entry | None]:
        return self._base, self._base_view

    def append(self, entries: list[Entry]) -> None:
        if entries and entries[0].index != self.last_index() + 1:
            raise ValueError(f"append at {entries[0].index}, log ends at {self.last_index()}")
        self._entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        if index <= self._state.delivered:
            raise ValueError(f"truncating delivered entry {index}")
        del self._entries[max(0, index - self._first) :]

    def sync_job(self) -> Callable[[], None] | None:
        return None  # memory is as durable as it gets

    def _purge_to(self, index: int) -> None:
        """Drop entries with index <= `index`."""
        count = index - self._first + 1
        if count <= 0:
            return
        for e in self._entries[:count]:
            if e.kind is EntryKind.VIEW and e.config is not None and not e.config.joint:
                self._base_view = e
        self._base = self._entries[count - 1]
        del self._entries[:count]
        self._first = index + 1
