"""The write stall of a rolling restart's worst step: the group leader's node gets SIGTERM.

A real 3-node cluster (tests/cluster fixtures); a client on another node commits small
autocommit UPDATEs in a loop; the leader node is stopped; the stall is the longest gap
between two acknowledged commits around the stop. Refused statements (1047 while the
node has no primary view and its `not_ready_hold` ran out) are counted and retried at once.

    PYTHONPATH=. .venv/bin/python -m bench.leader_stall [runs]
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

from proxy.managed_mariadb import process_alive
from tests.cluster.conftest import INIT_SQL, Cluster, running_cluster

CLIENT_SECONDS = 20.0  # the whole client run, bounded
STOP_AFTER = 3.0  # seconds of steady writes before the leader is stopped


def client(
    cluster: Cluster, node: int, acks: list[float], refused: list[int], stop: threading.Event
) -> None:
    deadline = time.monotonic() + CLIENT_SECONDS
    conn = None
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if conn is None:
                conn = cluster.proxy(node, connect_timeout=5, read_timeout=10)
            with conn.cursor() as cur:
                cur.execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
            acks.append(time.monotonic())
        except pymysql.err.OperationalError as e:
            if e.args[0] in (2003, 2006, 2013):  # the connection went: reconnect
                conn = None
            elif e.args[0] == 1047:
                refused.append(1047)
            time.sleep(0.001)
    if conn is not None:
        conn.close()


def one_run() -> tuple[float, float, float, int]:
    """(max gap around the stop, median gap before it, seconds from SIGTERM to exit,
    statements refused with 1047)."""
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), INIT_SQL) as cluster:
        leader = cluster.leader()
        writer = (leader + 1) % 3
        acks: list[float] = []
        refused: list[int] = []
        stop = threading.Event()
        t = threading.Thread(
            target=client, args=(cluster, writer, acks, refused, stop), daemon=True
        )
        t.start()
        time.sleep(STOP_AFTER)
        pid = cluster.node_pid(leader)
        stopped_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while process_alive(pid) and time.monotonic() < stopped_at + 30:
            time.sleep(0.01)
        exited = time.monotonic() - stopped_at
        time.sleep(max(0.0, 8.0 - (time.monotonic() - stopped_at)))
        stop.set()
        t.join(CLIENT_SECONDS + 15)
        before = [b - a for a, b in itertools.pairwise(acks) if b < stopped_at]
        around = [0.0] + [b - a for a, b in itertools.pairwise(acks) if b >= stopped_at - 0.5]
        after = [a for a in acks if a > stopped_at]
        assert after, "no commit acknowledged after the leader stopped"
        # a stall that never ended shows up as the time from the stop to the end of the run
        gap = max(max(around), after[0] - stopped_at)
        before.sort()
        return gap, before[len(before) // 2] if before else 0.0, exited, len(refused)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    for n in range(runs):
        gap, median, exited, refused = one_run()
        print(
            f"run {n + 1}: max gap between acknowledged commits {gap * 1000:.0f} ms "
            f"(median before the stop {median * 1000:.1f} ms); leader exited "
            f"{exited * 1000:.0f} ms after SIGTERM; {refused} statements refused (1047)",
            flush=True,
        )


if __name__ == "__main__":
    main()
