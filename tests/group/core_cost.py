"""CPU cost of the sans-I/O core per ordered payload: 3 members, messages passed in-process.

    .venv/bin/python -m tests.group.core_cost [payloads] [batch] [size]

Each round, every member submits `batch` payloads; then messages are passed until quiet.
Counts everything the three cores do (encode, decode, log, commit, deliver), no transport.
"""

from __future__ import annotations

import sys
import time
from collections import deque

from wsrep.group.log import InMemoryLogStorage
from wsrep.group.member import GroupMember
from wsrep.group.types import Deliver, GroupConfig, MemberInfo, Send


def run(payloads: int, batch: int, size: int) -> tuple[float, int]:
    """Order `payloads` payloads; returns (seconds, payloads delivered at every member)."""
    infos = [MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}") for i in range(3)]
    now = 0.0
    members = {
        m.id: GroupMember(GroupConfig(m, bootstrap=(i == 0)), InMemoryLogStorage(), now, i + 1)
        for i, m in enumerate(infos)
    }
    delivered = dict.fromkeys(members, 0)
    wire: deque[tuple[str, str, bytes]] = deque()

    def pump() -> None:
        for mid, m in members.items():
            for a in m.take_actions():
                if isinstance(a, Send):
                    wire.append((mid, a.to, a.data))
                elif isinstance(a, Deliver):
                    delivered[mid] += 1
        while wire:
            src, dst, data = wire.popleft()
            members[dst].receive(src, data, now)
            for a in members[dst].take_actions():
                if isinstance(a, Send):
                    wire.append((dst, a.to, a.data))
                elif isinstance(a, Deliver):
                    delivered[dst] += 1

    for i, m in enumerate(infos):
        for other in infos[:i]:
            members[m.id].peer_up(other, now)
            members[other.id].peer_up(m, now)
    for _ in range(100):  # joins are timer driven: tick until all three are in
        now += 0.5
        for m in members.values():
            m.tick(now)
        pump()
        if all(m.view and m.view.primary and len(m.view.members) == 3 for m in members.values()):
            break
    payload = b"x" * size
    start = time.process_time()
    sent = 0
    while sent < payloads:
        for m in members.values():
            for _ in range(batch):
                m.submit(payload, now)
            sent += batch
        pump()
    elapsed = time.process_time() - start
    return elapsed, min(delivered.values())


def main() -> None:
    defaults = [30000, 100, 1024]
    payloads, batch, size = [int(a) for a in sys.argv[1:4]] + defaults[len(sys.argv[1:4]) :]
    elapsed, done = run(payloads, batch, size)
    print(
        f"{done} payloads of {size} B ordered at 3 members, {batch} per member per round: "
        f"{elapsed:.2f} s, {elapsed / done * 1e6:.1f} us of core CPU per payload "
        f"(all three members together), {done / elapsed:.0f} payloads/s"
    )


if __name__ == "__main__":
    main()
