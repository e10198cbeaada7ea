"""GCache: the durable replicated log (Galera's gcache), an on-disk `LogStorage`.

A directory holds:

- `seg-<first index>.gcache`: segment files of consecutive log entries, appended in
  order (see `gcache_segment`); a new one starts when the current one reaches
  `segment_size`;
- `gcache.state`: the Raft hard state (term, vote, cluster uuid, delivered) and the base
  (the last purged entry and the stable view in force at it), replaced atomically;
- `gcache.delivered`: the delivered index, rewritten in place (one `pwrite`) after every
  delivery batch: it only spares a restarted member re-deliveries, so it is never synced
  on its own (a power loss may leave it behind; a killed process loses nothing);
- `gcache.lock`: held (flock) while a process has the cache open.

Size bound (Galera's `gcache.size`): when the segments take more than `size` bytes, the
oldest segments are dropped, but only those whose entries are all delivered by this member
(`HardState.delivered`) and below `purge_floor`, the owner's hold (e.g. entries a donor
still streams for IST). The current segment is never dropped, so the bound can be exceeded
by up to one segment, or by whatever the floors hold.

Durability: every write reaches the OS before the call returns, so a killed process loses
nothing. With `sync=True` (the default) appended records become durable through
`sync_job()` (or `flush()`): one fdatasync per segment written since the last job, which
the group driver runs in a worker thread, once per batch, before it sends anything the
core decided after those appends; `truncate_from`, new segments and purges are synced on
the spot (rare). With `sync=False` appends are never flushed: a power loss or kernel crash
loses the unflushed tail of the log. A change of term, vote or cluster uuid is always
synced before `save_hard_state` returns, whatever `sync` says: a member never forgets a
vote it gave. `delivered` alone is never synced (see `gcache.delivered` above).

Recovery on open scans every segment, verifies each record's crc, and cuts the log at the
first torn or damaged record (everything after it is dropped, and logged); entries are
then read by index through an in-memory offset index.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from wsrep.gcache_codec import (
    DELIVERED_SIZE,
    StateError,
    decode_bodies,
    decode_delivered,
    decode_state,
    encode_body,
    encode_delivered,
    encode_state,
)
from wsrep.gcache_files import atomic_write, fsync_dir
from wsrep.gcache_segment import (
    HEADER_SIZE,
    STABLE_VIEW,
    Segment,
    SegmentVersionError,
    decode_header,
    encode_record,
    parse_segment_name,
    scan_records,
)
from wsrep.group.codec import CodecError
from wsrep.group.log import Entry, EntryKind, HardState

logger = logging.getLogger("wsrep.gcache")

STATE_FILE = "gcache.state"
DELIVERED_FILE = "gcache.delivered"
LOCK_FILE = "gcache.lock"
_MiB = 1 << 20


class GCacheError(Exception):
    """The cache directory cannot be used as it is (the message says why and what to do)."""


class GCache:
    """An on-disk, size-bounded `LogStorage`. Open with the directory; `close()` when done.

    Closing flushes nothing that was not already written: a closed cache is exactly what a
    killed process leaves behind.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        size: int = 128 * _MiB,
        segment_size: int = 16 * _MiB,
        sync: bool = True,
        cluster_uuid: uuid.UUID | None = None,
        cache_bytes: int = 8 * _MiB,
    ) -> None:
        if segment_size <= HEADER_SIZE or size < segment_size:
            raise ValueError(f"need size >= segment_size > {HEADER_SIZE} bytes")
        self.path = Path(path)
        self.size = size
        self.segment_size = segment_size
        self.sync = sync
        self.purge_floor: int | None = None  # never purge entries with index >= this
        self._cache_bytes = cache_bytes
        self._recent: OrderedDict[int, Entry] = OrderedDict()  # the newest entries by index
        self._recent_bytes = 0
        self._segments: list[Segment] = []
        self._firsts: list[int] = []  # first index of each segment, for bisect
        self._stable_views: list[int] = []  # indexes of held stable VIEW entries
        self._unsynced: list[Segment] = []  # segments appended to since the last sync job
        self._delivered_fd = -1
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = _lock(self.path)
        try:
            self._open(cluster_uuid)
        except BaseException:
            self.close()
            raise

    # ---- LogStorage -----------------------------------------------------------------------

    def hard_state(self) -> HardState:
        return self._state

    def save_hard_state(self, state: HardState) -> None:
        if state == self._state:
            return
        old = self._state.cluster_uuid
        if old is not None and state.cluster_uuid != old:
            raise ValueError(f"cluster uuid change from {old} to {state.cluster_uuid}")
        old_vote = (self._state.term, self._state.voted_for, self._state.cluster_uuid)
        vote = (state.term, state.voted_for, state.cluster_uuid)
        if vote != old_vote:
            self._write_state(state, self._base, self._base_view, sync=True)
        if state.delivered != self._state.delivered:
            _write_mark(self._delivered_fd, encode_delivered(state.delivered))
        self._state = state
        self._purge()

    def first_index(self) -> int:
        return self._first

    def last_index(self) -> int:
        return self._last

    def entry(self, index: int) -> Entry:
        e = self._recent.get(index)
        if e is not None:
            return e
        if not self._first <= index <= self._last:
            raise IndexError(self._missing(index))
        return self._read(index, index + 1)[0]

    def entries(self, lo: int, hi: int) -> list[Entry]:
        if lo < self._first:
            raise IndexError(self._missing(lo))
        hi = min(hi, self._last + 1)
        if lo >= hi:
            return []
        recent = self._recent
        if lo in recent:
            return [recent[i] for i in range(lo, hi)]
        cached_from = next(iter(recent), hi)  # the cache is a contiguous tail of the log
        out = self._read(lo, min(hi, cached_from))
        out += (recent[i] for i in range(cached_from, hi))
        return out

    def base(self) -> tuple[Entry | None, Entry | None]:
        """(last purged entry, stable view in force at it); the base keeps no payload."""
        return self._base, self._base_view

    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        if entries[0].index != self._last + 1:
            raise ValueError(f"append at {entries[0].index}, log ends at {self._last}")
        try:
            self._write(entries)
        except BaseException:
            # e.g. a full disk: forget whatever part was written, the log stays as it was
            self._cut(entries[0].index)
            raise
        self._stable_views += (e.index for e in entries if _stable(e))
        self._last = entries[-1].index
        self._remember(entries)
        self._purge()

    def truncate_from(self, index: int) -> None:
        if index <= self._state.delivered or index < self._first:
            raise ValueError(f"truncating delivered or purged entry {index}")
        if index > self._last:
            return
        dropped = self._last - index + 1
        self._cut(index)
        logger.info("gcache %s: dropped %d entries from index %d", self.path, dropped, index)

    def sync_job(self) -> Callable[[], None] | None:
        """A job that fdatasyncs every segment appended to so far (on duplicated file
        descriptors, so it may run in a worker thread while appends, purges and truncations
        go on); None when nothing is waiting for a sync."""
        fds = [os.dup(s.fd) for s in self._unsynced if s.fd >= 0]
        self._unsynced = []
        if not fds:
            return None

        def job() -> None:
            try:
                for fd in fds:
                    os.fdatasync(fd)
            finally:
                for fd in fds:
                    os.close(fd)

        return job

    def flush(self) -> None:
        """Make every append so far durable, here and now."""
        job = self.sync_job()
        if job is not None:
            job()

    # ---- IST lookups ----------------------------------------------------------------------

    def seqno_range(self) -> tuple[int, int] | None:
        """(lowest, highest) payload seqno held, None when no payload is held."""
        if self._last < self._first:
            return None
        first, last = self._segments[0], self._segments[-1]
        low = first.seqnos[0] + (0 if first.kinds[0] & 0x0F == EntryKind.PAYLOAD else 1)
        high = last.seqnos[-1]
        return (low, high) if low <= high else None

    def index_of_seqno(self, seqno: int) -> int:
        """The log index of the payload entry with `seqno`; KeyError when not held."""
        for seg in self._segments[self._segment_for_seqno(seqno) :]:
            i = bisect.bisect_left(seg.seqnos, seqno)
            if i < seg.count:
                if seg.seqnos[i] == seqno and seg.kinds[i] & 0x0F == EntryKind.PAYLOAD:
                    return seg.first_index + i
                break
        raise KeyError(f"seqno {seqno} is not in gcache {self.path}")

    # ---- bookkeeping ----------------------------------------------------------------------

    @property
    def disk_bytes(self) -> int:
        """Bytes held in segment files (what `size` bounds)."""
        return sum(s.size for s in self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def close(self) -> None:
        for s in self._segments:
            s.close()
        self._segments = []
        self._unsynced = []
        if self._delivered_fd >= 0:
            os.close(self._delivered_fd)
            self._delivered_fd = -1
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> GCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------------

    def _open(self, cluster_uuid: uuid.UUID | None) -> None:
        started = time.monotonic()
        state_path = self.path / STATE_FILE
        names = {
            first: self.path / name
            for name in os.listdir(self.path)
            if (first := parse_segment_name(name)) is not None
        }
        try:
            data = state_path.read_bytes()
        except FileNotFoundError:
            if names:
                raise GCacheError(
                    f"gcache {self.path}: segment files but no {STATE_FILE}: the term and vote "
                    "are lost; remove the directory to rejoin through state transfer"
                ) from None
            self._state, self._base, self._base_view = HardState(), None, None
            self._write_state(self._state, None, None, sync=True)
            (self.path / DELIVERED_FILE).unlink(missing_ok=True)  # of an earlier cache
        else:
            try:
                self._state, self._base, self._base_view = decode_state(data)
            except StateError as e:
                raise GCacheError(f"gcache {self.path}: {STATE_FILE}: {e}") from e
        self._delivered_fd = os.open(self.path / DELIVERED_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        marked = decode_delivered(os.pread(self._delivered_fd, DELIVERED_SIZE, 0))
        known = self._state.cluster_uuid
        if cluster_uuid is not None and known is not None and known != cluster_uuid:
            raise GCacheError(f"gcache {self.path} belongs to cluster {known}, not {cluster_uuid}")
        self._first = self._base.index + 1 if self._base else 1
        self._last = self._first - 1
        self._recover(names)
        if marked is not None and marked > self._state.delivered:
            if marked > self._last:
                # after a power loss: the mark reached the disk, the log's unsynced tail did
                # not; entries past the synced log were never handed out (the driver syncs
                # before it carries out a delivery)
                logger.warning(
                    "gcache %s: delivered mark %d is beyond the log end %d (a lost unsynced "
                    "tail): delivering again from %d", self.path, marked, self._last,
                    self._last + 1,
                )  # fmt: skip
            self._state = replace(self._state, delivered=min(marked, self._last))
        span = self.seqno_range()
        logger.info(
            "gcache %s: opened in %.2fs: entries [%d..%d], seqnos %s, %d segments, %.1f MiB, "
            "term %d, delivered index %d",
            self.path, time.monotonic() - started, self._first, self._last,
            f"[{span[0]}..{span[1]}]" if span else "none", len(self._segments),
            self.disk_bytes / _MiB, self._state.term, self._state.delivered,
        )  # fmt: skip

    def _recover(self, names: dict[int, Path]) -> None:
        """Open the segments in order and cut the log at the first damage. Nothing is
        changed on disk before the cut is known not to lose delivered entries."""
        damaged: tuple[str, Segment | None] | None = None  # (file name, its kept part)
        doomed: list[Path] = []  # below the base (an interrupted purge), or after the damage
        prev_seqno = self._base.seqno if self._base else 0
        after_damage = 0
        for first in sorted(names):
            path = names[first]
            if first < self._first or damaged is not None:
                after_damage += damaged is not None
                doomed.append(path)
                continue
            problem, seg = self._open_segment(path, first, prev_seqno)
            if problem is not None:
                logger.warning(
                    "gcache %s: %s: %s at index %d", self.path, path.name, problem,
                    first + (seg.count if seg else 0),
                )  # fmt: skip
                damaged = (path.name, seg)
            if seg is None or seg.count == 0:  # (empty: a crash right after creating it)
                if seg is not None:
                    seg.close()
                doomed.append(path)
                continue
            self._segments.append(seg)
            self._firsts.append(first)
            self._last = seg.last_index
            prev_seqno = seg.seqnos[-1]
            self._stable_views += (first + i for i, k in enumerate(seg.kinds) if k & STABLE_VIEW)
        if self._state.delivered > self._last:
            raise GCacheError(
                f"gcache {self.path}: log ends at index {self._last} but entries up to "
                f"{self._state.delivered} were delivered: committed entries were lost (disk "
                "damage); nothing was changed; move the directory away to rejoin through "
                "state transfer"
            )
        if damaged is not None:
            name, seg = damaged
            logger.warning(
                "gcache %s: the log now ends at index %d (cut in %s, %d later files dropped)",
                self.path, self._last, name, after_damage,
            )  # fmt: skip
            if seg is not None and seg.count:
                os.ftruncate(seg.fd, seg.size)
                os.fsync(seg.fd)
        for path in doomed:
            path.unlink()
        if doomed:
            fsync_dir(self.path)

    def _open_segment(
        self, path: Path, first: int, prev_seqno: int
    ) -> tuple[str | None, Segment | None]:
        """The segment and, if it is damaged, what is wrong (records before it are kept)."""
        if first != self._last + 1:
            return f"gap: starts at index {first}, the log ends at {self._last}", None
        data = path.read_bytes()
        try:
            header = decode_header(data)
        except SegmentVersionError as e:
            raise GCacheError(f"gcache {self.path}: {path.name}: {e}; refusing to touch it") from e
        if isinstance(header, str):
            return header, None
        seg_uuid, header_first = header
        known = self._state.cluster_uuid
        if seg_uuid is not None and known is not None and seg_uuid != known:
            raise GCacheError(
                f"gcache {self.path}: {path.name} belongs to cluster {seg_uuid}, "
                f"the cache to {known}"
            )
        if header_first != first:
            return f"header names first index {header_first}", None
        scan = scan_records(data, HEADER_SIZE, first, prev_seqno)
        seg = Segment(path, os.open(path, os.O_RDWR), first, scan)
        if scan.problem is not None:
            return f"{scan.problem} ({len(data) - scan.end} bytes dropped)", seg
        return None, seg

    def _write(self, entries: list[Entry]) -> None:
        """Append records, one write per segment touched (synced by the next sync job)."""
        seg = self._segments[-1] if self._segments else None
        pending: list[bytes] = []
        meta: list[tuple[int, int]] = []
        size = seg.size if seg else 0
        for e in entries:
            kind = int(e.kind) | (STABLE_VIEW if _stable(e) else 0)
            record = encode_record(e.index, e.seqno, kind, encode_body(e))
            if seg is None or (size + len(record) > self.segment_size and size > HEADER_SIZE):
                if seg is not None and pending:
                    self._append_records(seg, pending, meta)
                seg = self._new_segment(e.index)
                pending, meta, size = [], [], seg.size
            pending.append(record)
            meta.append((e.seqno, kind))
            size += len(record)
        assert seg is not None
        self._append_records(seg, pending, meta)

    def _append_records(
        self, seg: Segment, records: list[bytes], meta: list[tuple[int, int]]
    ) -> None:
        seg.append(records, meta)
        if self.sync and (not self._unsynced or self._unsynced[-1] is not seg):
            self._unsynced.append(seg)

    def _cut(self, index: int) -> None:
        """Drop the records with index >= `index` from the files and the index."""
        k = bisect.bisect_right(self._firsts, index) - 1
        doomed = self._segments[k + 1 :]
        if k >= 0:
            seg = self._segments[k]
            if index == seg.first_index:
                doomed.insert(0, seg)
            elif index <= seg.last_index:
                # cut this segment first: a crash before the unlinks below leaves a gap
                # that recovery cuts at, never the dropped entries back
                seg.truncate_at(index - seg.first_index, self.sync)
        for s in doomed:
            s.remove()
        if doomed and self.sync:
            fsync_dir(self.path)
        del self._segments[len(self._segments) - len(doomed) :]
        del self._firsts[len(self._firsts) - len(doomed) :]
        del self._stable_views[bisect.bisect_left(self._stable_views, index) :]
        for i in range(index, self._last + 1):
            e = self._recent.pop(i, None)
            if e is not None:
                self._recent_bytes -= _weight(e)
        self._last = min(self._last, index - 1)

    def _new_segment(self, first_index: int) -> Segment:
        seg = Segment.create(self.path, first_index, self._state.cluster_uuid, self.sync)
        self._segments.append(seg)
        self._firsts.append(first_index)
        if self.sync:
            fsync_dir(self.path)
        return seg

    def _write_state(
        self, state: HardState, base: Entry | None, base_view: Entry | None, sync: bool
    ) -> None:
        atomic_write(self.path / STATE_FILE, encode_state(state, base, base_view), sync)

    def _read(self, lo: int, hi: int) -> list[Entry]:
        """Entries lo <= index < hi from the segment files (one read per segment, decoded
        segment by segment so a long range costs little more memory than its entries)."""
        out: list[Entry] = []
        k = bisect.bisect_right(self._firsts, lo) - 1
        i = lo
        while i < hi:
            seg = self._segments[k]
            end = min(hi, seg.last_index + 1)
            try:
                out += decode_bodies(seg.read_bodies(i, end), i)
            except OSError as e:
                raise GCacheError(f"gcache {self.path}: {e}") from e
            except CodecError as e:  # a sound record this code cannot decode
                raise GCacheError(f"gcache {self.path}: entries from index {i}: {e}") from e
            i, k = end, k + 1
        return out

    def _remember(self, entries: list[Entry]) -> None:
        """Keep the newest entries decoded: the leader reads them right back to replicate."""
        recent = self._recent
        for e in entries:
            recent[e.index] = e
            self._recent_bytes += _weight(e)
        while self._recent_bytes > self._cache_bytes and len(recent) > 1:
            self._recent_bytes -= _weight(recent.popitem(last=False)[1])

    def _purge(self) -> None:
        """Drop the oldest segments while over `size`, within the floors."""
        floor = self._state.delivered
        if self.purge_floor is not None:
            floor = min(floor, self.purge_floor - 1)
        total = self.disk_bytes
        n = 0
        while (
            total > self.size
            and n < len(self._segments) - 1
            and self._segments[n].last_index <= floor
        ):
            total -= self._segments[n].size
            n += 1
        if n == 0:
            return
        doomed = self._segments[:n]
        last = doomed[-1].last_index
        base = replace(self.entry(last), payload=b"")
        views = self._stable_views
        v = bisect.bisect_right(views, last)
        base_view = self.entry(views[v - 1]) if v else self._base_view
        # the new base is durable before the entries go: a crash in between leaves
        # segments below the base, which recovery removes
        self._write_state(self._state, base, base_view, self.sync)
        for s in doomed:
            s.remove()
        if self.sync:
            fsync_dir(self.path)
        del self._segments[:n]
        del self._firsts[:n]
        del views[:v]
        for i in range(self._first, last + 1):
            e = self._recent.pop(i, None)
            if e is not None:
                self._recent_bytes -= _weight(e)
        self._base, self._base_view = base, base_view
        logger.info(
            "gcache %s: purged entries [%d..%d] (seqno %d), %.1f MiB held in %d segments",
            self.path, self._first, last, base.seqno, total / _MiB, len(self._segments),
        )  # fmt: skip
        self._first = last + 1

    def _segment_for_seqno(self, seqno: int) -> int:
        lo, hi = 0, len(self._segments)
        while lo < hi:  # the last segment whose first seqno is below `seqno`
            mid = (lo + hi) // 2
            seg = self._segments[mid]
            if seg.count and seg.seqnos[0] < seqno:
                lo = mid + 1
            else:
                hi = mid
        return max(0, lo - 1)

    def _missing(self, index: int) -> str:
        if index < self._first:
            return f"entry {index} was purged (first held is {self._first})"
        return f"entry {index} is beyond the log (last is {self._last})"


def _stable(e: Entry) -> bool:
    return e.kind is EntryKind.VIEW and e.config is not None and not e.config.joint


def _weight(e: Entry) -> int:
    return len(e.payload) + 64


def _write_mark(fd: int, data: bytes) -> None:
    """Overwrite the delivered mark in place: one small write (no rename, no fsync)."""
    if os.pwrite(fd, data, 0) != len(data):
        raise OSError(f"short write of the delivered mark ({len(data)} bytes)")


def _lock(path: Path) -> int:
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GCacheError(f"gcache {path} is open in another process (or object)") from None
    return fd
