"""Certification throughput and memory, on one core.

Fills a `CertificationIndex` with `--index-keys` row keys (write sets of `--keys` keys each,
sysbench-like tables), then certifies `--write-sets` more write sets of the same shape while
purging so that the index keeps holding about `--index-keys` keys (a steady load whose safe
point trails the head by a fixed window). Prints write sets per second and the memory the
index needs per key (tracemalloc, key objects included: the index keeps them alive), and
how fast such write sets go through the wire form (`wsrep.writeset` encode and decode).

    .venv/bin/python bench/cert_bench.py [--index-keys 1000000] [--write-sets 300000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Iterator

from certification.index import CertificationIndex, CertificationRequest
from certification.keys import KeyKind, row_key
from wsrep.writeset import WriteSet, decode, encode

TABLES = [f"sbtest{i}" for i in range(1, 17)]
ROWS_PER_TABLE = 10_000_000
MAX_LAG = 8  # how far last_seen trails the head: a few concurrent transactions


def write_sets(
    rng: random.Random, first_seqno: int, count: int, keys: int
) -> Iterator[CertificationRequest]:
    """Write sets touching random rows (one PRIMARY key each, 1 in 10 an FK parent), with
    keys as every node gets them: decoded from the write set's wire form."""
    for seqno in range(first_seqno, first_seqno + count):
        table = rng.choice(TABLES)
        ws_keys = tuple(
            row_key(
                "sbtest",
                table,
                "PRIMARY",
                (str(rng.randrange(ROWS_PER_TABLE)).encode(),),
                KeyKind.SHARED if i == 0 and seqno % 10 == 0 else KeyKind.EXCLUSIVE,
            )
            for i in range(keys)
        )
        last_seen = max(0, seqno - 1 - rng.randrange(MAX_LAG))
        delivered = decode(encode(WriteSet("node-1", seqno, last_seen, ws_keys, b"")))
        yield delivered.certification_request(seqno)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-keys", type=int, default=1_000_000)
    parser.add_argument("--write-sets", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=10, help="keys per write set")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    window = args.index_keys // args.keys  # write sets the index holds between purges

    index = CertificationIndex()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for ws in write_sets(rng, 1, window, args.keys):
        index.certify(ws)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    filled = index.stats
    print(
        f"filled: {filled.index_size:,} keys in {filled.log_length:,} write sets, "
        f"{held / filled.index_size:.0f} bytes per indexed key "
        f"({held / 2**20:.0f} MiB, key objects included)"
    )

    batch = list(write_sets(rng, window + 1, args.write_sets, args.keys))
    purge_every = 1_000
    start, start_cpu = time.perf_counter(), time.process_time()
    certify = index.certify
    for ws in batch:
        certify(ws)
        if ws.seqno % purge_every == 0:
            index.purge(ws.seqno - window)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - start_cpu  # what one core spent: robust on a busy machine
    stats = index.stats
    failed = stats.failed - filled.failed
    print(
        f"certified {len(batch):,} write sets of {args.keys} keys against ~{args.index_keys:,} "
        f"keys, purging every {purge_every}: {cpu:.2f} s CPU, {len(batch) / cpu:,.0f} write "
        f"sets/s per core ({len(batch) * args.keys / cpu:,.0f} keys/s); wall {elapsed:.2f} s "
        f"({len(batch) / elapsed:,.0f}/s)\n"
        f"{failed} failed; index now {stats.index_size:,} keys, purged to {stats.purged_to:,}"
    )

    wire_form(batch[: min(len(batch), 50_000)])


def wire_form(requests: list[CertificationRequest]) -> None:
    """Encode and decode the same write sets with a 300-byte row payload."""
    write_sets = [WriteSet("node-1", r.seqno, r.last_seen, r.keys, bytes(300)) for r in requests]
    start = time.process_time()
    encoded = [encode(ws) for ws in write_sets]
    mid = time.process_time()
    decoded = [decode(data) for data in encoded]
    end = time.process_time()
    assert decoded == write_sets
    size = sum(map(len, encoded)) / len(encoded)
    print(
        f"wire form ({size:.0f} bytes each): encode {len(encoded) / (mid - start):,.0f} "
        f"write sets/s, decode {len(encoded) / (end - mid):,.0f} write sets/s per core"
    )


if __name__ == "__main__":
    main()
