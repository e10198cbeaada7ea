"""Appends to a gcache and prints each acknowledged index; the SIGKILL test kills it.

    python -m tests.gcache.crash_writer <dir> <max batches>

The log is a pure function of the index (see `expected`), so after any kill the test knows
what every recovered entry must be.
"""

from __future__ import annotations

import sys

from wsrep.gcache import GCache
from wsrep.group.log import Entry, EntryKind, HardState

SIZE = 256 << 10
SEGMENT = 32 << 10


def expected(index: int) -> Entry:
    """Entry `index` of the writer's log: 1 KiB payloads, the first entry a payload too."""
    return Entry(1, index, index, 1, EntryKind.PAYLOAD, "w", 1, index, bytes([index % 256]) * 1024)


def open_cache(path: str) -> GCache:
    return GCache(path, size=SIZE, segment_size=SEGMENT)


def main() -> None:
    path, batches = sys.argv[1], int(sys.argv[2])
    g = open_cache(path)
    for n in range(batches):
        start = g.last_index() + 1
        g.append([expected(i) for i in range(start, start + 1 + n % 4)])
        # deliver everything appended: the cache purges as it goes
        g.save_hard_state(HardState(1, "w", None, g.last_index()))
        print(g.last_index(), flush=True)


if __name__ == "__main__":
    main()
