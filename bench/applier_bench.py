"""What applying a write set costs: the node's appliers (`proxy.replication.Appliers`) on one
managed mariadbd, fed sysbench-shaped write sets, without a group or other nodes.

    PYTHONPATH=. .venv/bin/python bench/applier_bench.py [--variants 0 never never:replace]
        [--blocks 10] [--block 300] [--rate 0] [--appliers 8]

`sbtest1` (10,000 rows, capture triggers installed as on a node) gets write sets of three
row upserts each (oltp_write_only's update of `k`, update of `c`, delete + insert of one
id), with `depends_seqno` from the rows they share. A variant is `COMMIT_WITH_APPLY_WITHIN`
(or `never` one round trip, `always` wait for the turn), and `:replace` upserts
with REPLACE (no in-place upserts). The variants take turns, a block of write sets each
(`--rate` per second, 0: all at once), so the machine's other load falls on all alike.
Prints per variant, per applied write set, the bench process's CPU (the appliers' Python,
trio included) and mariadbd's CPU, from /proc: the sum over its blocks and the median
block.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from proxy import replication
from proxy.backend_client import BackendClient
from proxy.capture import Catalog, Kind, Op, RowChange, TableSpec, encode_changes, install
from proxy.capture.rowimage import ColumnSpec
from proxy.managed_mariadb import MariaDBServer, running_servers
from wsrep.ordering import OrderingGate
from wsrep.writeset import WriteSet

ROWS = 10_000
SBTEST = TableSpec(
    "sbtest",
    "sbtest1",
    (
        ColumnSpec("id", Kind.INT),
        ColumnSpec("k", Kind.INT),
        ColumnSpec("c", Kind.TEXT, "utf8mb4"),
        ColumnSpec("pad", Kind.TEXT, "utf8mb4"),
    ),
    (0,),
)
DDL = (
    "CREATE DATABASE sbtest",
    "CREATE TABLE sbtest.sbtest1 (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0, "
    "c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) "
    "ENGINE=InnoDB",
)


@dataclass
class _Stats:
    local_bf_aborts: int = 0


@dataclass
class BenchProvider:
    """What `Appliers` asks of its provider, for a node whose group is this bench."""

    gate: OrderingGate = field(default_factory=lambda: OrderingGate(0))
    node_name: str = "bench"
    view: None = None
    stats: _Stats = field(default_factory=_Stats)

    def dequeued(self, seqno: int) -> None:
        pass

    def commit(self, seqno: int) -> None:
        self.gate.commit(seqno)


def _text(rng: random.Random, size: int) -> bytes:
    return "-".join(f"{rng.randrange(10**11):011d}" for _ in range(size // 12)).encode()


def write_sets(count: int, seed: int = 5) -> list[tuple[WriteSet, int]]:
    """`count` write sets and their depends_seqno (seqnos from 1), as oltp_write_only's
    transactions leave them: `k + 1` on one row, a new `c` on another, a third deleted and
    inserted again with new values (every value kept, so the images are what the table
    would hold)."""
    rng = random.Random(seed)
    rows = {i: (i, i, b"", b"") for i in range(1, ROWS + 1)}
    last_touch: dict[int, int] = {}
    out = []
    for seqno in range(1, count + 1):
        a, b, c = rng.sample(range(1, ROWS + 1), 3)
        rows[a] = (a, rows[a][1] + 1, *rows[a][2:])
        rows[b] = (b, rows[b][1], _text(rng, 120), rows[b][3])
        rows[c] = (c, rng.randrange(ROWS), _text(rng, 120), _text(rng, 60))
        changes = [RowChange(SBTEST, Op.UPSERT, rows[i]) for i in (a, b, c)]
        depends = max(last_touch.get(i, 0) for i in (a, b, c))
        for i in (a, b, c):
            last_touch[i] = seqno
        out.append((WriteSet("origin", seqno, 0, (), encode_changes(changes)), depends))
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of process `pid` so far (the scheduler's, in ns: /proc's
    stat counts 10 ms ticks, too coarse for a block)."""
    return (
        sum(
            int(stat.read_text().split()[0])
            for stat in Path(f"/proc/{pid}/task").glob("*/schedstat")
        )
        / 1e9
    )


_WITHIN = {"never": -1, "always": 1 << 30}


@dataclass
class Variant:
    name: str
    within: int
    replace: bool
    blocks: list[tuple[float, float, float]] = field(default_factory=list)  # py, db, wall

    @classmethod
    def parse(cls, text: str) -> Variant:
        within, _, how = text.partition(":")
        return cls(text, _WITHIN.get(within) or int(within), how == "replace")

    def report(self, per_block: int) -> str:
        def us(values: list[float]) -> str:
            total = sum(values) / (per_block * len(values)) * 1e6
            return f"{total:4.0f} (median block {statistics.median(values) / per_block * 1e6:.0f})"

        py, db, wall = (list(column) for column in zip(*self.blocks, strict=True))
        rate = per_block * len(wall) / sum(wall)
        return (
            f"{self.name:>12}: {rate:5.0f} write sets/s, cpu µs per write set: "
            f"python {us(py)}  mariadbd {us(db)}"
        )


async def run(srv: MariaDBServer, args: argparse.Namespace) -> None:
    async def connect() -> BackendClient:
        return await BackendClient.connect(srv.host, srv.port, "root")

    admin = await connect()
    for statement in DDL:
        await admin.query(statement)
    values = ", ".join(f"({i}, {i}, '', '')" for i in range(1, ROWS + 1))
    await admin.query(f"INSERT INTO sbtest.sbtest1 VALUES {values}")
    catalog: Catalog = await install(admin, ["sbtest"])
    variants = [Variant.parse(v) for v in args.variants]
    jobs = write_sets(args.block * args.blocks * len(variants))
    provider = BenchProvider()
    appliers = replication.Appliers(connect, args.appliers)
    appliers.attach(provider)  # type: ignore[arg-type]
    assert srv.pid is not None
    seqno = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(appliers.run)
        for _ in range(args.blocks):
            for variant in variants:
                in_place = frozenset() if variant.replace else catalog.single_unique_key
                appliers.in_place = lambda in_place=in_place: in_place
                replication.COMMIT_WITH_APPLY_WITHIN = variant.within
                py0, db0, t0 = time.process_time(), cpu_seconds(srv.pid), trio.current_time()
                for n in range(1, args.block + 1):
                    seqno += 1
                    ws, depends = jobs[seqno - 1]
                    appliers.enqueue(seqno, ws, depends)
                    if args.rate:
                        await trio.sleep_until(t0 + n / args.rate)
                await provider.gate.wait_committed(seqno)
                py1, db1, t1 = time.process_time(), cpu_seconds(srv.pid), trio.current_time()
                variant.blocks.append((py1 - py0, db1 - db0, t1 - t0))
        nursery.cancel_scope.cancel()
    await admin.aclose()
    for variant in variants:
        print(variant.report(args.block))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["0", "never", "never:replace"])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--appliers", type=int, default=8)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="applier-bench-") as tmp,
        running_servers(Path(tmp), 1) as (srv,),
    ):
        trio.run(run, srv, args)


if __name__ == "__main__":
    main()
