"""Causal reads on a running local cluster: latency next to plain reads, and how many
markers concurrent causal readers cost.

    wsrepctl cluster up --nodes 3 --dir D --base-port P --init-sql F --detach   # F has app.t
    .venv/bin/python tests/status/bench_causal_reads.py D P

Reads a row of `app.t` by primary key through node 3's proxy. Markers are counted as the
advance of node 3's `last_committed` (status.json) while nothing else writes.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from pathlib import Path

import pymysql

READ = "SELECT v FROM app.t WHERE id = 1"


def main(state_dir: Path, base_port: int, node: int = 2) -> None:
    def connect(causal: bool) -> pymysql.connections.Connection:
        conn = pymysql.connect(
            host="127.0.0.1", port=base_port + node, user="root", autocommit=True
        )
        if causal:
            conn.cursor().execute("SET SESSION wsrep_sync_wait = 1")
        return conn

    def last_committed() -> int:
        time.sleep(0.6)  # status.json is rewritten twice a second
        status = json.loads((state_dir / f"node{node + 1}" / "status.json").read_text())
        return int(status["last_committed"])

    for causal in (False, True):
        with connect(causal) as conn, conn.cursor() as cur:
            times = []
            for _ in range(300):
                start = time.perf_counter()
                cur.execute(READ)
                cur.fetchall()
                times.append(time.perf_counter() - start)
        times.sort()
        print(
            f"{'causal' if causal else 'plain '} read  median {statistics.median(times) * 1e3:.2f}"
            f" ms  p95 {times[int(len(times) * 0.95)] * 1e3:.2f} ms"
        )
    for readers in (1, 8):
        before = last_committed()

        def reader() -> None:
            with connect(True) as conn, conn.cursor() as cur:
                for _ in range(100):
                    cur.execute(READ)
                    cur.fetchall()

        threads = [threading.Thread(target=reader) for _ in range(readers)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.perf_counter() - start
        markers = last_committed() - before
        reads = 100 * readers
        print(
            f"{readers} causal reader(s): {reads / elapsed:.0f} reads/s,"
            f" {markers / reads:.2f} marker per read"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
