"""CPU per ordered write set through the whole group path, in one process.

Three `GroupNode`s (real core, real TCP on loopback, a gcache each with `sync` on) and
closed-loop submitters on every node, as the cluster bench loads them (3 x 8 clients):
each submitter orders a payload, waits for its seqno, "thinks" (the rest of a transaction:
the default makes ~300 write sets/s, the cluster's rate, so batches stay as small as
there), repeats; `--think 0` saturates instead. Counts the process CPU
(every node, the transport, the sync threads) per payload delivered at all three nodes,
and with `--profile` the Python function calls per payload and the top functions.

    .venv/bin/python bench/group_cost.py [--payloads 3000] [--clients 8] [--think 0.08]
        [--size 600] [--sync on|off] [--consumer handler|task] [--profile]

Numbers only (the machine is shared: compare runs taken back to back).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import socket
import tempfile
import time
from pathlib import Path

import trio

from wsrep.gcache import GCache
from wsrep.group.types import Deliver, GroupConfig, MemberInfo
from wsrep.group_node import GroupEvent, GroupNode, open_group_node

SECRET = b"group cost bench"


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def run(args: argparse.Namespace, root: Path) -> tuple[float, float, int]:
    """(cpu seconds, wall seconds, payloads delivered everywhere) of the measured part."""
    addrs = [free_address() for _ in range(3)]
    nodes: list[GroupNode] = []
    delivered = [0, 0, 0]
    target = args.payloads

    async def member(i: int, task_status: trio.TaskStatus[None]) -> None:
        cfg = GroupConfig(
            MemberInfo(f"g{i + 1}", addrs[i]),
            seeds=tuple(addrs[:i]),
            bootstrap=i == 0,
            heartbeat_interval=0.2,
            suspect_timeout=2.0,
            inactive_timeout=10.0,
            election_timeout=1.0,
        )
        with GCache(root / cfg.member.id, sync=args.sync == "on") as gcache:
            async with open_group_node(cfg, gcache, SECRET) as node:
                nodes.append(node)
                task_status.started()
                if args.consumer == "handler":  # as the provider takes them

                    def count(events: list[GroupEvent]) -> None:
                        delivered[i] += sum(isinstance(e, Deliver) for e in events)

                    node.handle_events(count)
                    await trio.sleep_forever()
                while True:
                    for e in await node.next_events():
                        delivered[i] += isinstance(e, Deliver)

    async def client(node: GroupNode, payload: bytes, stop: list[bool]) -> None:
        while not stop[0]:
            await node.submit(payload)
            await trio.sleep(args.think)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            await nursery.start(member, i)
            while not (nodes[-1].view and nodes[-1].view.primary):
                await trio.sleep(0.05)
        while not all(n.view and len(n.view.members) == 3 for n in nodes):
            await trio.sleep(0.05)
        stop = [False]
        payload = b"w" * args.size
        for node in nodes:
            for _ in range(args.clients):
                nursery.start_soon(client, node, payload, stop)
        await trio.sleep(1.0)  # warm up
        start = list(delivered)
        profile = cProfile.Profile(time.process_time) if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        while min(d - s for d, s in zip(delivered, start, strict=True)) < target:
            await trio.sleep(0.01)
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        count = min(d - s for d, s in zip(delivered, start, strict=True))
        stop[0] = True
        nursery.cancel_scope.cancel()
    if profile:
        stats = pstats.Stats(profile)
        print(f"function calls per payload: {stats.total_calls / count:,.0f}")  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(25)
    return cpu, wall, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--payloads", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=8, help="closed-loop submitters per node")
    ap.add_argument("--think", type=float, default=0.08, help="seconds between submissions")
    ap.add_argument("--size", type=int, default=600, help="payload bytes")
    ap.add_argument("--sync", choices=("on", "off"), default="on")
    ap.add_argument(
        "--consumer",
        choices=("handler", "task"),
        default="handler",
        help="events taken in the core task (as the provider does) or by a task of their own",
    )
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="group-cost-") as tmp:
        cpu, wall, count = trio.run(run, args, Path(tmp))
    print(
        f"{count} payloads delivered at 3 nodes in {wall:.2f} s ({count / wall:,.0f}/s): "
        f"CPU {cpu:.2f} s = {1e6 * cpu / count:,.0f} us per payload (all 3 nodes)"
    )


if __name__ == "__main__":
    main()
