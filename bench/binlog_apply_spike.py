"""Spike: what applying write sets as binlog row events (`BINLOG '<base64>'`) costs
mariadbd, against today's SQL scripts; and what XA PREPARE costs at the origin.

    PYTHONPATH=. .venv/bin/python bench/binlog_apply_spike.py [--writesets 400] [--rounds 3]

Apply part: one managed mariadbd (no binlog, as the cluster runs them) with four sysbench
`sbtest` tables (10,000 rows each) and our capture triggers installed. Each write set is
sysbench-shaped: 3 row updates, 1 delete, 1 insert, each on a random one of the 4 tables,
as `RowChange`s like the drain produces. Every write set is applied once, by one of:

- sql:            today's applier (`apply_statements`: DELETE + REPLACE; then position +
                  COMMIT), two round trips
- binlog-write:   one BINLOG statement (Table_map per table, Delete_rows, Write_rows for
                  every upsert) under `slave_exec_mode=IDEMPOTENT` (Write_rows replaces an
                  existing row); same two round trips, same position update
- binlog-update:  Update_rows (primary-key before image) for the updated rows, Write_rows
                  for the insert, `slave_exec_mode=STRICT`

with 1 and with 8 applier connections (8: each connection owns the ids `id % 8 == i`, so
they never conflict). Methods alternate round by round, so all see the same machine load.
Printed per method: mariadbd CPU per write set (utime + stime of the process from /proc,
background threads included), the Python CPU to build the statements (process_time), wall
write sets/s. At the end every table is compared with the generator's model (both paths
must leave the same rows).

Origin part (`--xa`): 5-statement sbtest transactions committed with COMMIT on a server
without binlog, COMMIT with `log_bin`, and XA START ... XA END; XA PREPARE / XA COMMIT with
`log_bin` (the origin-side way to get row events: 10.5+ binlogs an XA transaction's events
at PREPARE), 1 and 8 clients.

This machine is shared (2 cores, other engineers' clusters): compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from bench import binlog_events as be
from proxy.backend_client import BackendClient
from proxy.capture import Catalog, Op, RowChange, TableSpec, drain, install
from proxy.capture import mariadb_sql as sql
from proxy.capture.applier import MAX_SCRIPT_BYTES, apply_statements, prepare_applier_session
from proxy.managed_mariadb import MariaDBServer
from proxy.protocol.constants import Command
from proxy.protocol.wire import frame

ROWS = 10_000  # per table; ids ROWS+1 .. ROWS+SPARE start absent (the inserts' pool)
SPARE = 2_000
TABLES = 4
SCHEMA = "sbtest"
CLUSTER = "5b1e0000-0000-4000-8000-0000000000b1"
METHODS = ("sql", "binlog-write", "binlog-update")
BINLOG_TYPES = {"int": be.FieldType.LONG, "bigint": be.FieldType.LONGLONG,
                "char": be.FieldType.STRING, "varchar": be.FieldType.VARCHAR}  # fmt: skip


def server_cpu(pid: int) -> float:
    """CPU seconds the process used so far (user + system), all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WriteSet:
    changes: list[RowChange]
    updated: set[int]  # indexes into changes of the upserts whose row existed before


@dataclass
class Model:
    """The rows every table must hold; generates write sets that are valid against it."""

    specs: list[TableSpec]
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    rows: list[dict[int, tuple[int, int, bytes, bytes]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = [{i: self.initial(i) for i in range(1, ROWS + 1)} for _ in self.specs]

    @staticmethod
    def initial(i: int) -> tuple[int, int, bytes, bytes]:
        return (i, i % 997, bytes((65 + i % 26,)) * 120, b"p" * 60)

    def _text(self, size: int) -> bytes:
        return bytes(self.rng.choices(b"0123456789-abcdefghij", k=size))

    def _pick(self, table: int, part: int, parts: int, present: bool, taken: set) -> int:
        for _ in range(10_000):
            i = self.rng.randrange(1, ROWS + SPARE + 1)
            if i % parts == part and (i in self.rows[table]) == present and i not in taken:
                taken.add(i)
                return i
        raise RuntimeError("no row to pick")

    def write_set(self, part: int, parts: int) -> WriteSet:
        """3 updates, 1 delete, 1 insert of rows `id % parts == part`, random tables."""
        taken: list[set[int]] = [set() for _ in self.specs]
        changes: list[RowChange] = []
        updated: set[int] = set()
        for what in ("update", "update", "update", "delete", "insert"):
            t = self.rng.randrange(len(self.specs))
            spec, rows = self.specs[t], self.rows[t]
            i = self._pick(t, part, parts, what != "insert", taken[t])
            if what == "delete":
                del rows[i]
                changes.append(RowChange(spec, Op.DELETE, (i,)))
                continue
            rows[i] = (i, self.rng.randrange(1, 100_000), self._text(120), self._text(60))
            if what == "update":
                updated.add(len(changes))
            changes.append(RowChange(spec, Op.UPSERT, rows[i]))
        return WriteSet(changes, updated)


def binlog_script(tables: dict[TableSpec, be.Table], ws: WriteSet, use_update: bool) -> str:
    """One BINLOG statement: per table its deletes, then its updates and writes."""
    batches: dict[tuple[be.EventType, be.Table], list[be.Row]] = {}
    for n, change in enumerate(ws.changes):
        table = tables[change.table]
        if change.op is Op.DELETE:
            kind, row = be.EventType.DELETE_ROWS, change.values
        elif use_update and n in ws.updated:
            key = tuple(change.values[i] for i in table.key)
            kind, row = be.EventType.UPDATE_ROWS, key + change.values
        else:
            kind, row = be.EventType.WRITE_ROWS, change.values
        batches.setdefault((kind, table), []).append(row)  # type: ignore[arg-type]
    deletes_first = sorted(batches, key=lambda b: b[0] != be.EventType.DELETE_ROWS)
    return be.rows_statement({b: batches[b] for b in deletes_first})


def build(method: str, tables: dict[TableSpec, be.Table], ws: WriteSet, seqno: int) -> list[str]:
    """The scripts that apply one write set: the rows, then position + COMMIT."""
    if method == "sql":
        rows = sql.scripts([sql.BEGIN, *apply_statements(ws.changes)], MAX_SCRIPT_BYTES)
    else:
        rows = [f"{sql.BEGIN}; {binlog_script(tables, ws, method == 'binlog-update')}"]
    return [*rows, f"{sql.update_position(CLUSTER, seqno)}; {sql.COMMIT}"]


async def binlog_tables(conn: BackendClient, catalog: Catalog) -> dict[TableSpec, be.Table]:
    """The row-event layout of each captured table, from the applier's own dictionary."""
    out = {}
    for shape in catalog.shapes.values():
        rows = (
            await conn.query(
                "SELECT DATA_TYPE, IFNULL(CHARACTER_OCTET_LENGTH, 0), IS_NULLABLE, COLUMN_TYPE "
                f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{shape.schema}' "
                f"AND TABLE_NAME = '{shape.name}' ORDER BY ORDINAL_POSITION"
            )
        ).rows
        columns = tuple(
            be.Column(
                BINLOG_TYPES[(r[0] or b"").decode()],
                int(r[1] or 0),
                r[2] == b"YES",
                b"unsigned" in (r[3] or b""),
            )
            for r in rows
        )
        spec = shape.spec
        out[spec] = be.Table(shape.schema, shape.name, columns, spec.key, shape.table_id)
    return out


@dataclass
class Tally:
    count: int = 0
    wall: float = 0.0
    server: float = 0.0
    python: float = 0.0

    def line(self, title: str, unit: str = "ws") -> str:
        n = max(self.count, 1)
        build = f"  python build {1e6 * self.python / n:5.1f} us/{unit}" if self.python else ""
        return (
            f"{title:28} {self.count:6d} {unit}  {self.count / max(self.wall, 1e-9):6.0f} "
            f"{unit}/s  mariadbd {1000 * self.server / n:5.3f} ms cpu/{unit}{build}"
        )


Step = str | Callable[[BackendClient], Awaitable[object]]  # SQL, or a call like the drain


async def run_scripts(
    conns: Sequence[BackendClient], work: Sequence[Sequence[Sequence[Step]]], pid: int
) -> tuple[float, float]:
    """Each connection runs its transactions' steps in order, all connections at once.
    Returns (wall seconds, mariadbd CPU seconds)."""

    async def worker(conn: BackendClient, items: Sequence[Sequence[Step]]) -> None:
        for steps in items:
            for step in steps:
                await (conn.query(step) if isinstance(step, str) else step(conn))

    start, cpu = time.perf_counter(), server_cpu(pid)
    async with trio.open_nursery() as nursery:
        for conn, items in zip(conns, work, strict=True):
            nursery.start_soon(worker, conn, items)
    return time.perf_counter() - start, server_cpu(pid) - cpu


async def apply_part(base: Path, count: int, rounds: int) -> None:
    srv = MariaDBServer(base / "applier", name="applier")
    srv.start()
    try:
        admin = await BackendClient.connect(srv.host, srv.port, "root")
        await admin.query(f"CREATE DATABASE {SCHEMA}")
        await admin.query(f"USE {SCHEMA}")
        for t in range(1, TABLES + 1):
            await admin.query(
                f"CREATE TABLE {SCHEMA}.sbtest{t} (id INT NOT NULL PRIMARY KEY, "
                "k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', "
                "pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB"
            )
            await admin.query(
                f"INSERT INTO {SCHEMA}.sbtest{t} SELECT seq, seq % 997, "
                f"REPEAT(CHAR(65 + seq % 26), 120), REPEAT('p', 60) FROM seq_1_to_{ROWS}"
            )
        catalog = await install(admin, [SCHEMA])
        tables = await binlog_tables(admin, catalog)
        specs = sorted(tables, key=lambda s: s.name)
        model = Model(specs)
        fde = be.binlog_statement([be.format_description("10.11-wsrep-spike", int(time.time()))])
        conns = [await BackendClient.connect(srv.host, srv.port, "root") for _ in range(8)]
        for conn in conns:
            await prepare_applier_session(conn)
            await conn.query(fde)
        tallies = {(m, n): Tally() for n in (1, 8) for m in METHODS}
        seqnos = iter(range(1, 10**9))
        assert srv.proc is not None
        for _ in range(rounds):
            for parts in (1, 8):
                for method in METHODS:
                    mode = "IDEMPOTENT" if method == "binlog-write" else "STRICT"
                    await admin.query(f"SET GLOBAL slave_exec_mode = '{mode}'")
                    work: list[list[list[str]]] = [[] for _ in range(parts)]
                    tally = tallies[method, parts]
                    for _ in range(count):
                        for part in range(parts):
                            ws = model.write_set(part, parts)
                            cpu = time.process_time()
                            work[part].append(build(method, tables, ws, next(seqnos)))
                            tally.python += time.process_time() - cpu
                    wall, server = await run_scripts(conns[:parts], work, srv.proc.pid)
                    tally.count += count * parts
                    tally.wall += wall
                    tally.server += server
        await admin.query("SET GLOBAL slave_exec_mode = 'STRICT'")
        for (method, parts), tally in tallies.items():
            print(tally.line(f"{method} x{parts}"))
        await check(admin, model)
        left = (await admin.query("SELECT COUNT(*) FROM wsrep.capture")).rows[0][0]
        print(f"capture rows written by appliers (triggers fired?): {left!r}")
        for conn in (admin, *conns):
            await conn.aclose()
    finally:
        srv.destroy()


async def check(conn: BackendClient, model: Model) -> None:
    for spec, rows in zip(model.specs, model.rows, strict=True):
        got = (
            await conn.query(
                f"SELECT id, k, CAST(c AS BINARY), CAST(pad AS BINARY) "
                f"FROM {SCHEMA}.{spec.name} ORDER BY id"
            )
        ).rows
        want = [
            (str(r[0]).encode(), str(r[1]).encode(), r[2].rstrip(b" "), r[3].rstrip(b" "))
            for _, r in sorted(rows.items())
        ]
        assert got == want, f"{spec.name}: rows differ from the model"
    print("all tables equal the model: both paths applied the same rows")


@dataclass(frozen=True)
class OriginCase:
    title: str
    server: MariaDBServer
    schema: str
    xa: bool = False  # XA START ... XA PREPARE / XA COMMIT instead of BEGIN ... COMMIT
    catalog: Catalog | None = None  # capture installed: drain before COMMIT
    dump: bool = False  # a binlog dump reader attached

    def transaction(self, rng: random.Random, part: int, parts: int, xid: str) -> list[Step]:
        """A client's round trips for one sysbench-shaped transaction at the origin."""
        ids: list[int] = []
        while len(ids) < 4:
            i = rng.randrange(1, ROWS + 1)
            if i % parts == part and i not in ids:
                ids.append(i)
        t = f"{self.schema}.sbtest1"
        body: list[Step] = [
            f"UPDATE {t} SET k = k + 1 WHERE id = {ids[0]}",
            f"UPDATE {t} SET c = '{rng.random()}' WHERE id = {ids[1]}",
            f"UPDATE {t} SET k = k - 1 WHERE id = {ids[2]}",
            f"DELETE FROM {t} WHERE id = {ids[3]}",
            f"INSERT INTO {t} VALUES ({ids[3]}, {rng.randrange(997)}, 'x', 'y')",
        ]
        if self.xa:
            return [f"XA START '{xid}'", *body, f"XA END '{xid}'; XA PREPARE '{xid}'",
                    f"XA COMMIT '{xid}'"]  # fmt: skip
        catalog = self.catalog
        if catalog is not None:
            body.append(lambda conn: drain(conn, catalog))
        return ["BEGIN", *body, "COMMIT"]


class DumpReader:
    """A replica's binlog stream (COM_BINLOG_DUMP from the current end of the binlog):
    what reading the origin's row events back would cost. Counts events and bytes."""

    def __init__(self, conn: BackendClient) -> None:
        self.conn = conn
        self.events = self.bytes = 0

    @classmethod
    async def start(cls, srv: MariaDBServer, nursery: trio.Nursery) -> DumpReader:
        conn = await BackendClient.connect(srv.host, srv.port, "root")
        name, pos = (await conn.query("SHOW MASTER STATUS")).rows[0][:2]
        await conn.query(
            "SET @master_binlog_checksum = @@global.binlog_checksum, "
            "@mariadb_slave_capability = 4"  # MARIA_SLAVE_CAPABILITY_GTID
        )
        # command, position u32, flags u16 (0: block at the end), replica server_id u32, file
        command = struct.pack("<BIHI", Command.BINLOG_DUMP, int(pos or 0), 0, 99) + (name or b"")
        await conn.stream.send(frame(command, 0))
        reader = cls(conn)
        nursery.start_soon(reader.run)
        return reader

    async def run(self) -> None:
        while True:
            payload = (await self.conn.stream.read_packet()).payload
            if payload[:1] != b"\0":
                raise RuntimeError(f"binlog dump ended: {payload[:80]!r}")
            self.events += 1
            self.bytes += len(payload) - 1


async def xa_part(base: Path, count: int, rounds: int) -> None:
    binlog = {"skip-log-bin": False, "log-bin": "bin", "server-id": "1"}
    plain = MariaDBServer(base / "nobinlog", name="nobinlog")
    with_binlog = MariaDBServer(base / "binlog", name="binlog", options=binlog)
    try:
        for srv in (plain, with_binlog):
            srv.start()
            conn = await BackendClient.connect(srv.host, srv.port, "root")
            for schema in (SCHEMA, "captured"):
                await conn.query(f"CREATE DATABASE {schema}")
                await conn.query(f"USE {schema}")
                await conn.query(
                    "CREATE TABLE sbtest1 (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, "
                    "c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY k_1 (k)) ENGINE=InnoDB"
                )
                await conn.query(
                    "INSERT INTO sbtest1 SELECT seq, seq % 997, REPEAT('c', 120), "
                    f"REPEAT('p', 60) FROM seq_1_to_{ROWS}"
                )
            if srv is plain:
                catalog = await install(conn, ["captured"])
            await conn.aclose()
        cases = [
            OriginCase("COMMIT, no binlog", plain, SCHEMA),
            OriginCase("capture+drain, COMMIT", plain, "captured", catalog=catalog),
            OriginCase("COMMIT, log_bin", with_binlog, SCHEMA),
            OriginCase("XA PREPARE/COMMIT, log_bin", with_binlog, SCHEMA, xa=True),
            OriginCase("XA, log_bin, binlog dump", with_binlog, SCHEMA, xa=True, dump=True),
        ]
        tallies = {(c.title, n): Tally() for c in cases for n in (1, 8)}
        streamed = [0, 0, 0]  # transactions, events, bytes read from the dump
        rng = random.Random(3)
        xids = iter(range(10**9))
        for _ in range(rounds):
            for parts in (1, 8):
                for case in cases:
                    srv = case.server
                    conns = [
                        await BackendClient.connect(srv.host, srv.port, "root")
                        for _ in range(parts)
                    ]
                    work = [
                        [case.transaction(rng, p, parts, f"x{next(xids)}") for _ in range(count)]
                        for p in range(parts)
                    ]
                    assert srv.proc is not None
                    async with trio.open_nursery() as nursery:
                        reader = await DumpReader.start(srv, nursery) if case.dump else None
                        wall, server = await run_scripts(conns, work, srv.proc.pid)
                        if reader is not None:
                            await trio.sleep(0.5)  # the stream catches up (not timed)
                            streamed[0] += count * parts
                            streamed[1] += reader.events
                            streamed[2] += reader.bytes
                            nursery.cancel_scope.cancel()
                    if reader is not None:
                        await reader.conn.stream.aclose()
                    tally = tallies[case.title, parts]
                    tally.count += count * parts
                    tally.wall += wall
                    tally.server += server
                    for conn in conns:
                        await conn.aclose()
        for (title, parts), tally in tallies.items():
            print(tally.line(f"{title} x{parts}", "trx"))
        n = max(streamed[0], 1)
        print(
            f"binlog dump: {streamed[1] / n:.1f} events, {streamed[2] / n:.0f} bytes per "
            "XA transaction (PREPARE and COMMIT groups)"
        )
    finally:
        for srv in (plain, with_binlog):
            srv.destroy()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="binlog-spike-") as tmp:
        if not args.xa_only:
            await apply_part(Path(tmp), args.writesets, args.rounds)
        if args.xa or args.xa_only:
            await xa_part(Path(tmp), args.writesets, args.rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writesets", type=int, default=400, help="per connection per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--xa", action="store_true", help="also the origin-side XA part")
    parser.add_argument("--xa-only", action="store_true")
    trio.run(main, parser.parse_args())
