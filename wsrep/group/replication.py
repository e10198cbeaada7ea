"""The leader's side of log replication: what each follower holds, what to send it next.

Like etcd's Progress: the leader pipelines batches (up to a window beyond what a follower
acknowledged), goes back to the acknowledged point when a heartbeat period passes without
progress, and a commit point is the highest index a weighted quorum holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from wsrep.group.codec import Append, Message, Purged, encode, encode_append, encode_entries
from wsrep.group.local_log import LocalLog
from wsrep.group.log import Configuration, Entry, EntryKind
from wsrep.group.types import GroupConfig, MemberId

# batches a follower may have in flight before the leader waits for its acks: with 4, the
# batch size bounded the throughput of the real-process bench (docs/design/group-transport.md)
_WINDOW_BATCHES = 16
# a rough per-entry overhead when sizing a message
_ENTRY_OVERHEAD = 64


@dataclass(slots=True)
class Progress:
    """The leader's view of one follower's log."""

    next: int
    last_contact: float
    match: int = 0
    match_at_heartbeat: int = 0
    sent_commit: int = -1
    apply_queue: int = 0
    need_send: bool = True
    suspected: bool = False


@dataclass(frozen=True, slots=True)
class Header:
    """What every AppendEntries of this round says besides the entries."""

    cluster_uuid: UUID
    term: int
    commit: int
    primary: bool
    fc_paused: bool


class Replication:
    def __init__(self, log: LocalLog, config: GroupConfig) -> None:
        self._log = log
        self._cfg = config
        self.followers: dict[MemberId, Progress] = {}
        self._encoded: tuple[tuple[int, int, int], bytes] = ((0, 0, 0), b"")

    def track(self, voters: set[MemberId], now: float) -> None:
        """Follow exactly `voters` (a new one is probed from the end of our log)."""
        for gone in set(self.followers) - voters:
            del self.followers[gone]
        for m in voters - set(self.followers):
            self.followers[m] = Progress(next=self._log.last_index + 1, last_contact=now)

    def heard_since(self, when: float) -> set[MemberId]:
        return {m for m, p in self.followers.items() if p.last_contact >= when}

    def heartbeat(self, now: float) -> list[MemberId]:
        """A heartbeat period passed: send to everyone; the newly suspected members."""
        suspected = []
        for m, p in self.followers.items():
            p.need_send = True
            if p.match == p.match_at_heartbeat and p.next > p.match + 1:
                p.next = p.match + 1  # nothing acknowledged since last time: resend
            p.match_at_heartbeat = p.match
            if not p.suspected and now - p.last_contact > self._cfg.suspect_timeout:
                p.suspected = True
                suspected.append(m)
        return suspected

    def acknowledged(self, p: Progress, success: bool, index: int) -> bool:
        """A follower's answer; True when it holds more of our log than we knew."""
        if not success:
            p.next = max(p.match + 1, min(p.next, index + 1))
            p.need_send = True
            return False
        if self._log.last_index >= index > p.match:
            p.match = index
            p.next = max(p.next, index + 1)
            return True
        return False

    def commit_point(self, me: MemberId, config: Configuration, commit: int, term: int) -> int:
        """The highest index a quorum holds, if it is of our term (Raft's commit rule)."""
        match = {m: p.match for m, p in self.followers.items()}
        match[me] = self._log.last_index
        for n in sorted(set(match.values()), reverse=True):
            if n <= commit:
                break
            if config.has_quorum({m for m, i in match.items() if i >= n}):
                if self._log.term_at(n) == term:
                    return n
                break
        return commit

    def messages(self, header: Header, skip: set[MemberId]) -> list[tuple[MemberId, bytes]]:
        """Everything to send now: new entries, heartbeats, new commit points, `Purged`."""
        out: list[tuple[MemberId, bytes]] = []
        first = self._log.storage.first_index()
        window = _WINDOW_BATCHES * self._cfg.max_batch
        for m, p in self.followers.items():
            if m in skip:
                continue
            if p.next < first:
                if p.need_send:
                    p.need_send = False
                    out.append((m, self._purged(header, first)))
                continue
            sent = False
            while p.next <= self._log.last_index and p.next - p.match <= window:
                entries = self._batch(p.next)
                out.append((m, self._append(header, p, entries)))
                p.next += len(entries)
                sent = True
            if not sent and (p.need_send or p.sent_commit < header.commit):
                out.append((m, self._append(header, p, [])))
            p.need_send = False
        return out

    def _purged(self, header: Header, first: int) -> bytes:
        oldest = self._log.storage.entry(first)
        seqno = oldest.seqno if oldest.kind is EntryKind.PAYLOAD else oldest.seqno + 1
        return encode(Message(header.cluster_uuid, header.term, Purged(seqno)))

    def _batch(self, start: int) -> list[Entry]:
        end = min(self._log.last_index + 1, start + self._cfg.max_batch)
        entries = self._log.entries(start, end)
        size = 0
        for i, e in enumerate(entries):
            size += len(e.payload) + _ENTRY_OVERHEAD
            if size > self._cfg.max_message_bytes and i > 0:
                return entries[:i]
        return entries

    def _append(self, header: Header, p: Progress, entries: list[Entry]) -> bytes:
        prev = p.next - 1
        prev_term = self._log.term_at(prev)
        assert prev_term is not None
        p.sent_commit = header.commit
        body = Append(prev, prev_term, header.commit, (), header.primary, header.fc_paused)
        # followers get the same batches: by log matching, (first, last, last term) names them
        key = (prev + 1, prev + len(entries), entries[-1].term if entries else 0)
        if self._encoded[0] != key:
            self._encoded = (key, encode_entries(entries))
        return encode_append(header.cluster_uuid, header.term, body, len(entries), self._encoded[1])
