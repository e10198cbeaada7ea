"""GCache bench: append rate, hard-state saves, reads, and reopen time of a large cache.

    .venv/bin/python bench/gcache_bench.py [--dir /tmp/x] [--seconds 3] [--reopen-mib 1024]
        [--payload 1024] [--member-start]

Measured, each for `--seconds` of wall time (counts are never asserted anywhere):
- appends/s of `--payload`-byte entries, one entry per call and 64 per call, with sync on
  (fdatasync per call) and off;
- `save_hard_state` calls/s with sync on (temp file, fsync, rename, directory fsync);
- cold reads: 100-entry `entries()` ranges at random positions, and `index_of_seqno`;
- reopen (recovery scan, crc of every record) of a cache of about `--reopen-mib` MiB;
- with `--member-start`, how long `GroupMember` takes to start on that cache (the core
  reads the log from its first index on startup).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsrep.gcache import GCache
from wsrep.group.log import Configuration, Entry, EntryKind, HardState
from wsrep.group.member import GroupMember
from wsrep.group.types import GroupConfig, MemberInfo

ME = MemberInfo("bench", "127.0.0.1:4001")
_MiB = 1 << 20


def entries(start: int, count: int, payload: bytes) -> list[Entry]:
    if start == 1:  # a log starts with its first view, like a member's does
        view = Entry(1, 1, 0, 1, EntryKind.VIEW, config=Configuration((ME,)))
        return [view, *entries(2, count - 1, payload)]
    return [
        Entry(1, i, i - 1, 1, EntryKind.PAYLOAD, ME.id, 1, i, payload)
        for i in range(start, start + count)
    ]


def rate(label: str, count: int, seconds: float, unit: str = "/s") -> None:
    print(f"  {label:<44} {count / seconds:>12,.0f} {unit}  ({count} in {seconds:.2f} s)")


def appends(path: Path, payload: bytes, per_call: int, sync: bool, seconds: float) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with GCache(path, size=1 << 40, segment_size=64 * _MiB, sync=sync) as g:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            g.append(entries(n + 1, per_call, payload))
            g.flush()  # what the group driver's sync job does once per batch
            n += per_call
        elapsed = time.perf_counter() - started
    mode = "sync" if sync else "no sync"
    rate(f"append {per_call:>2} x {len(payload)} B per call, {mode}", n, elapsed, "entries/s")


def hard_state_saves(path: Path, seconds: float) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with GCache(path) as g:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            n += 1
            g.save_hard_state(HardState(n, ME.id, None, 0))
        rate("save_hard_state, a new term (synced)", n, time.perf_counter() - started,
             "saves/s  ")  # fmt: skip
        term, n, started = n, 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            n += 1
            g.save_hard_state(HardState(term, ME.id, None, n))
        rate("save_hard_state, delivered only (a mark)", n, time.perf_counter() - started,
             "saves/s  ")  # fmt: skip


def fill(path: Path, mib: int, payload: bytes) -> int:
    """A cache of about `mib` MiB, written without sync (then flushed once)."""
    shutil.rmtree(path, ignore_errors=True)
    count = mib * _MiB // (len(payload) + 80)
    started = time.perf_counter()
    with GCache(path, size=1 << 40, segment_size=64 * _MiB, sync=False) as g:
        for start in range(1, count + 1, 4096):
            g.append(entries(start, min(4096, count + 1 - start), payload))
        g.save_hard_state(HardState(1, ME.id, None, count))
    os.sync()
    print(f"  filled {count:,} entries in {time.perf_counter() - started:.1f} s")
    return count


def reads(path: Path, count: int, seconds: float) -> None:
    rng = random.Random(1)
    with GCache(path, size=1 << 40, segment_size=64 * _MiB, cache_bytes=0) as g:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            lo = rng.randint(1, count - 100)
            n += len(g.entries(lo, lo + 100))
        rate("cold entries(lo, lo + 100) at random lo", n, time.perf_counter() - started,
             "entries/s")  # fmt: skip
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            g.index_of_seqno(rng.randint(1, count - 1))
            n += 1
        rate("index_of_seqno", n, time.perf_counter() - started, "lookups/s")


def reopen(path: Path) -> None:
    for cold in (True, False):
        if cold:
            _drop_page_cache(path)
        started = time.perf_counter()
        with GCache(path, size=1 << 40, segment_size=64 * _MiB) as g:
            elapsed = time.perf_counter() - started
            held = g.disk_bytes / _MiB
        which = "page cache dropped" if cold else "warm page cache"
        print(f"  reopen {held:,.0f} MiB ({which}): {elapsed:.2f} s, {held / elapsed:,.0f} MiB/s")


def member_start(path: Path) -> None:
    with GCache(path, size=1 << 40, segment_size=64 * _MiB) as g:
        started = time.perf_counter()
        GroupMember(GroupConfig(ME), g, 0.0, 1)
        elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  GroupMember start on it: {elapsed:.2f} s (peak RSS {peak:,.0f} MiB)")


def _drop_page_cache(path: Path) -> None:
    """Evict the cache's files from the page cache (POSIX_FADV_DONTNEED, no root needed)."""
    for f in path.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--reopen-mib", type=int, default=1024)
    ap.add_argument("--payload", type=int, default=1024)
    ap.add_argument("--member-start", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gcache-bench-", dir=args.dir))
    payload = os.urandom(args.payload)
    print(f"gcache bench in {root} (load average {os.getloadavg()[0]:.1f})")
    try:
        for sync in (True, False):
            for per_call in (1, 64):
                appends(root / "appends", payload, per_call, sync, args.seconds)
        hard_state_saves(root / "state", args.seconds)
        count = fill(root / "big", args.reopen_mib, payload)
        reads(root / "big", count, args.seconds)
        reopen(root / "big")
        if args.member_start:
            member_start(root / "big")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
