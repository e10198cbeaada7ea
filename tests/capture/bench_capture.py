"""What capture and apply cost, on real MariaDB (not a test: prints numbers, asserts none).

    .venv/bin/python -m tests.capture.bench_capture [transactions]

One client runs oltp_write_only-shaped transactions (4 updates, 1 delete, 1 insert on a
10,000-row table), alternating between a plain table and the same table with capture
installed (statements, drain, encode), so both see the same machine load; a second server
applies the captured write sets. Besides wall time it prints the CPU the mariadbd process
used per transaction (its background threads, purge included): what capture costs the
server, whatever else runs on the machine.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from proxy.backend_client import BackendClient
from proxy.capture import (
    Catalog,
    Position,
    RowChange,
    apply_write_set,
    decode_changes,
    drain,
    install,
    prepare_applier_session,
)
from proxy.managed_mariadb import running_servers

ROWS = 10_000
SCHEMAS = ("plain", "bench")  # capture is installed on `bench` only
DDL = (
    "CREATE TABLE sbtest (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, "
    "pad CHAR(60) NOT NULL, KEY k (k)) ENGINE=InnoDB"
)
FILL = (
    f"INSERT INTO sbtest SELECT seq, seq % 997, REPEAT(CHAR(65 + seq % 26), 120), "
    f"REPEAT('p', 60) FROM seq_1_to_{ROWS}"
)
CLUSTER = "0be0c4a1-0000-4000-8000-000000000001"


def statements(rng: random.Random, schema: str) -> list[str]:
    ids = rng.sample(range(1, ROWS + 1), 5)
    table = f"{schema}.sbtest"
    return [
        f"UPDATE {table} SET k = k + 1 WHERE id = {ids[0]}",
        f"UPDATE {table} SET c = REPEAT('u', 120) WHERE id = {ids[1]}",
        f"UPDATE {table} SET k = k - 1 WHERE id = {ids[2]}",
        f"UPDATE {table} SET pad = UUID() WHERE id = {ids[3]}",
        f"DELETE FROM {table} WHERE id = {ids[4]}",
        f"INSERT INTO {table} VALUES ({ids[4]}, {rng.randint(1, 997)}, 'x', 'y')",
    ]


def server_cpu(pid: int) -> float:
    """CPU seconds the process used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timer:
    def __init__(self, server_pid: int) -> None:
        self.spent: dict[str, float] = {}
        self.server_pid = server_pid
        self.server_cpu = 0.0  # mariadbd CPU seconds during the timed steps

    async def run(self, what: str, step: Callable[[], Awaitable[object]]) -> object:
        start, cpu = time.perf_counter(), server_cpu(self.server_pid)
        result = await step()
        self.spent[what] = self.spent.get(what, 0.0) + time.perf_counter() - start
        self.server_cpu += server_cpu(self.server_pid) - cpu
        return result


async def transaction(
    conn: BackendClient, rng: random.Random, timer: Timer, catalog: Catalog | None
) -> bytes | None:
    """One transaction; with a catalog on the captured table, drained and encoded."""
    await timer.run("statements", lambda: conn.query("BEGIN"))
    for sql in statements(rng, "plain" if catalog is None else "bench"):
        await timer.run("statements", lambda sql=sql: conn.query(sql))
    payload = None
    if catalog is not None:
        captured = await timer.run("drain", lambda: drain(conn, catalog))
        start = time.perf_counter()
        payload = captured.payload()  # type: ignore[attr-defined]
        timer.spent["encode"] = timer.spent.get("encode", 0.0) + time.perf_counter() - start
    await timer.run("commit", lambda: conn.query("COMMIT"))
    return payload


def report(title: str, timer: Timer, count: int) -> float:
    total = sum(timer.spent.values())
    parts = ", ".join(f"{k} {1000 * v / count:.2f} ms" for k, v in timer.spent.items())
    print(
        f"{title:28} {count / total:8.0f} trx/s  {1000 * total / count:6.2f} ms/trx  "
        f"mariadbd {1000 * timer.server_cpu / count:5.2f} ms cpu/trx  ({parts})"
    )
    return total


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_servers(Path(tmp), 2) as (a, b):
        conns = [await BackendClient.connect(s.host, s.port, "root") for s in (a, b)]
        for conn in conns:
            for schema in SCHEMAS:
                await conn.query(f"CREATE DATABASE {schema}")
                await conn.query(f"USE {schema}")
                await conn.query(DDL)
                await conn.query(FILL)
        catalog = await install(conns[0], ["bench"])
        await install(conns[1], ["bench"])
        rng = random.Random(7)
        assert a.proc is not None and b.proc is not None
        plain, captured = Timer(a.proc.pid), Timer(a.proc.pid)
        payloads = []
        for _ in range(count):
            await transaction(conns[0], rng, plain, None)
            payloads.append(await transaction(conns[0], rng, captured, catalog))
        base = report("plain table", plain, count)
        with_capture = report("with capture + drain", captured, count)
        print(f"{'capture overhead':28} {with_capture / base:8.2f} x the plain transaction time")
        size = sum(map(len, payloads)) / len(payloads)  # type: ignore[arg-type]
        print(f"{'row-image payload':28} {size:8.0f} bytes/trx")
        await prepare_applier_session(conns[1])
        timer = Timer(b.proc.pid)
        decoded: list[list[RowChange]] = []
        start = time.perf_counter()
        decoded = [decode_changes(p) for p in payloads if p is not None]
        timer.spent["decode"] = time.perf_counter() - start
        for seqno, changes in enumerate(decoded, start=1):
            await timer.run(
                "apply+commit",
                lambda c=changes, s=seqno: apply_write_set(conns[1], c, Position(CLUSTER, s)),
            )
        report("applier (one connection)", timer, count)
        for conn in conns:
            await conn.aclose()


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
