"""Every MariaDB column type through every node's proxy, in both protocols: seeded random
rows (plus rows of extremes) inserted, updated, re-keyed and deleted on node 1, 2 and 3 with
the text protocol (PyMySQL) and server-side prepared statements (mysql-connector's binary
protocol), in a non-UTC session time zone with DST gaps; afterwards CHECKSUM TABLE and every
row's exact value are the same on all three backends, and every backend has exactly the
rows the clients were told were committed."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import random
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import mysql.connector
import pymysql
import pytest

from tests.cluster.conftest import NODES, Cluster, run_clients, running_cluster

SEED = int(os.environ.get("WSREP_TYPES_SEED", "20261125"))  # another seed: other rows
ZONE = "Europe/Berlin"
# Not strict: a local time in the DST gap is then moved to the gap's end (with a
# warning), not refused; zero dates are allowed.
SESSION = f"SET time_zone = '{ZONE}', sql_mode = 'NO_ENGINE_SUBSTITUTION'"
ENUM = ("a", "b", "ç", "😀")
SET = ("x", "y", "z")
ALPHABET = "aZ 09'\"\\\n\t%_ç€😀𝄞中\u0000"

Value = Any
Gen = Callable[[random.Random], Value]


@dataclass(frozen=True)
class Column:
    name: str
    ddl: str
    kind: str  # how it is written as a literal and read back exactly (see below)
    gen: Gen
    edges: tuple[Value, ...]  # min, max and other extremes


def _ints(bits: int, unsigned: bool) -> tuple[Gen, tuple[int, ...]]:
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return (lambda r: r.choice([low, high, 0, r.randint(low, high)])), (low, high)


def _text(r: random.Random, n: int) -> str:
    return "".join(r.choice(ALPHABET) for _ in range(r.randint(0, n)))


def _finite(r: random.Random, fmt: str, edges: tuple[float, ...]) -> float:
    """A random bit pattern's value (NaN and infinities excluded), or an extreme."""
    while True:
        value: float = struct.unpack(fmt, r.randbytes(struct.calcsize(fmt)))[0]
        if math.isfinite(value):
            return r.choice([value, value, *edges])


def _decimal(r: random.Random) -> Decimal:
    whole = "".join(r.choice("0123456789") for _ in range(r.randint(1, 35)))
    frac = "".join(r.choice("0123456789") for _ in range(r.randint(0, 30)))
    return Decimal(r.choice(["", "-"]) + whole + ("." + frac if frac else ""))


def _date(r: random.Random) -> dt.date | str:
    if r.random() < 0.1:
        return "0000-00-00"
    return dt.date(r.randint(1000, 9999), r.randint(1, 12), r.randint(1, 28))


def _time(r: random.Random) -> dt.timedelta:
    micros = r.choice([0, r.randint(0, 999_999)])
    value = dt.timedelta(seconds=r.randint(0, 838 * 3600 + 59 * 60 + 59), microseconds=micros)
    return -value if r.random() < 0.3 else value


def _datetime(r: random.Random) -> dt.datetime | str:
    if r.random() < 0.1:
        return "0000-00-00 00:00:00"
    return dt.datetime(
        r.randint(1000, 9999), r.randint(1, 12), r.randint(1, 28),
        r.randint(0, 23), r.randint(0, 59), r.randint(0, 59), r.choice([0, r.randint(0, 999_999)]),
    )  # fmt: skip


# Local times in ZONE: the spring-forward gap (02:xx does not exist) and the fall-back hour
# (02:xx happens twice), where a local time maps to a UTC instant by the server's rules.
DST_TIMES = (
    dt.datetime(2025, 3, 30, 2, 30, 0, 500_000),
    dt.datetime(2025, 3, 30, 2, 59, 59, 999_999),
    dt.datetime(2025, 10, 26, 2, 30, 0, 250_000),
    dt.datetime(2025, 10, 26, 2, 0, 0),
)


def _timestamp(r: random.Random) -> dt.datetime | str:
    if r.random() < 0.05:
        return "0000-00-00 00:00:00"
    if r.random() < 0.3:
        return r.choice(DST_TIMES)
    moment = dt.datetime(1970, 1, 2) + dt.timedelta(seconds=r.randint(0, 2**31 - 3 * 86400))
    return moment.replace(microsecond=r.choice([0, r.randint(0, 999_999)]))


def _json(r: random.Random) -> str:
    doc = {
        _text(r, 5): r.choice([None, True, r.randint(-(10**18), 10**18), _text(r, 20), [1.5]])
        for _ in range(r.randint(0, 4))
    }
    return json.dumps(doc, ensure_ascii=r.random() < 0.5)


def _set(r: random.Random) -> str:
    return ",".join(m for m in SET if r.random() < 0.5)


def _blob(r: random.Random, limit: int) -> bytes:
    data = bytes(range(256)) * r.randint(0, 2) + r.randbytes(r.randint(0, 99))
    return data[:limit]


FLOAT_EDGES = (-0.0, 3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45)
DOUBLE_EDGES = (-0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1)
MIN_DEC = Decimal("-" + "9" * 35 + "." + "9" * 30)


def _columns() -> tuple[Column, ...]:
    ints = [
        (name, ddl, *_ints(bits, "UNSIGNED" in ddl))
        for name, ddl, bits in (
            ("ti", "TINYINT", 8), ("tu", "TINYINT UNSIGNED", 8),
            ("si", "SMALLINT", 16), ("su", "SMALLINT UNSIGNED", 16),
            ("mi", "MEDIUMINT", 24), ("mu", "MEDIUMINT UNSIGNED", 24),
            ("i", "INT", 32), ("iu", "INT UNSIGNED", 32),
            ("bi", "BIGINT", 64), ("bu", "BIGINT UNSIGNED", 64),
        )
    ]  # fmt: skip
    return (
        *(Column(name, ddl, "int", gen, edges) for name, ddl, gen, edges in ints),
        Column("d65", "DECIMAL(65,30)", "dec", _decimal, (MIN_DEC, -MIN_DEC, Decimal(0))),
        Column(
            "d5",
            "DECIMAL(5,2) UNSIGNED",
            "dec",
            lambda r: Decimal(f"{r.randint(0, 999)}.{r.randint(0, 99):02}"),
            (Decimal("0.00"), Decimal("999.99")),
        ),
        Column("f", "FLOAT", "float", lambda r: _finite(r, "<f", FLOAT_EDGES), FLOAT_EDGES),
        Column("d", "DOUBLE", "float", lambda r: _finite(r, "<d", DOUBLE_EDGES), DOUBLE_EDGES),
        Column("b1", "BIT(1)", "bit", lambda r: r.randint(0, 1), (0, 1)),
        Column("b64", "BIT(64)", "bit", lambda r: r.getrandbits(64), (0, 2**64 - 1)),
        Column("dt", "DATE", "temporal", _date, ("0000-00-00", dt.date(9999, 12, 31))),
        Column(
            "tm",
            "TIME(6)",
            "temporal",
            _time,
            (
                dt.timedelta(hours=-838, minutes=-59, seconds=-59, microseconds=-999_999),
                dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=999_999),
            ),
        ),
        Column(
            "dtm",
            "DATETIME(6)",
            "temporal",
            _datetime,
            ("0000-00-00 00:00:00", dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)),
        ),
        Column(
            "ts",
            "TIMESTAMP(6) NULL DEFAULT NULL",
            "timestamp",
            _timestamp,
            ("0000-00-00 00:00:00", *DST_TIMES[:1]),
        ),
        Column("yr", "YEAR", "int", lambda r: r.choice([0, r.randint(1901, 2155)]), (1901, 2155)),
        Column("c", "CHAR(10)", "text", lambda r: _text(r, 10).replace("\0", ""), ("", "😀" * 10)),
        Column("vc", "VARCHAR(300)", "text", lambda r: _text(r, 300), ("", "𝄞" * 300)),
        Column("tt", "TINYTEXT", "text", lambda r: _text(r, 63), ("", "😀" * 63)),
        Column("tx", "TEXT", "text", lambda r: _text(r, 2000), ("", "中" * 21845)),
        Column("mt", "MEDIUMTEXT", "text", lambda r: _text(r, 5000), ("", "😀" * 30000)),
        Column("lt", "LONGTEXT", "text", lambda r: _text(r, 9000), ("", "𝄞" * 70000)),
        Column(
            "bn", "BINARY(8)", "bin", lambda r: r.randbytes(r.randint(0, 8)), (b"", b"\xff" * 8)
        ),
        Column("vb", "VARBINARY(300)", "bin", lambda r: _blob(r, 300), (b"", bytes(range(256)))),
        Column("tb", "TINYBLOB", "bin", lambda r: _blob(r, 255), (b"", bytes(range(255)))),
        Column("bl", "BLOB", "bin", lambda r: _blob(r, 65535), (b"", bytes(range(256)) * 255)),
        Column("mb", "MEDIUMBLOB", "bin", lambda r: _blob(r, 1000), (b"\0", bytes(range(256)))),
        Column("lb", "LONGBLOB", "bin", lambda r: _blob(r, 1000), (b"\0", bytes(range(256)) * 300)),
        Column(
            "en", "ENUM('a','b','ç','😀')", "enum", lambda r: r.choice(ENUM), ENUM[:1] + ENUM[-1:]
        ),
        Column("st", "SET('x','y','z')", "enum", _set, ("", "x,y,z")),
        Column("js", "JSON", "text", _json, ("{}", json.dumps({"k": "😀" * 100}))),
    )


COLUMNS = _columns()
ID = Column("id", "INT UNSIGNED NOT NULL PRIMARY KEY", "int", lambda r: 0, ())
NAMES = [c.name for c in COLUMNS]
TABLE = "types.every"
CREATE_TABLE = (
    f"CREATE TABLE {TABLE} (\n  "
    + ",\n  ".join(f"{c.name} {c.ddl}" for c in (ID, *COLUMNS))
    + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
)


def _time_literal(value: dt.timedelta) -> str:
    sign, value = ("-", -value) if value < dt.timedelta(0) else ("", value)
    hours, rest = divmod(value.days * 86400 + value.seconds, 3600)
    return f"'{sign}{hours}:{rest // 60:02}:{rest % 60:02}.{value.microseconds:06}'"


def literal(column: Column, value: Value) -> str:
    """The text protocol's SQL literal for `value` (exact: doubles as double literals,
    strings as hex in their character set)."""
    if value is None:
        return "NULL"
    if column.kind == "float":
        shown = repr(value)
        return shown if "e" in shown else shown + "e0"
    if column.kind in ("text", "enum"):
        return f"_utf8mb4 X'{value.encode().hex()}'"
    if column.kind == "bin":
        return f"X'{value.hex()}'"
    if isinstance(value, dt.timedelta):
        return _time_literal(value)
    if isinstance(value, (dt.date, str)):
        return f"'{value}'"
    return str(value)


LONG_DATA = 4096  # binary parameters from this size go as COM_STMT_SEND_LONG_DATA


def parameter(value: Value) -> Value:
    """The binary protocol's parameter for `value`: typed (DOUBLE, DECIMAL, DATE,
    DATETIME, TIME, integers, strings, bytes); big bytes as a stream (mysql-connector
    sends those with COM_STMT_SEND_LONG_DATA); a negative TIME as text, since
    mysql-connector encodes a negative timedelta's days and seconds wrongly."""
    if isinstance(value, dt.timedelta) and value < dt.timedelta(0):
        return _time_literal(value).strip("'")
    if isinstance(value, bytes) and len(value) >= LONG_DATA:
        return io.BytesIO(value)
    return value


def read_expr(column: Column) -> str:
    """An expression whose text is the exact stored value, whatever the session."""
    name = column.name
    return {
        "float": f"CAST(CAST({name} AS DOUBLE) AS CHAR)",  # keeps -0
        "bit": f"{name} + 0",
        "enum": f"{name} + 0",
        "temporal": f"CAST({name} AS CHAR)",  # zero dates too
        "timestamp": f"UNIX_TIMESTAMP({name})",  # time zone free
        "text": f"HEX({name})",
        "bin": f"HEX({name})",
    }.get(column.kind, name)


SELECT_EXACT = f"SELECT id, {', '.join(map(read_expr, COLUMNS))} FROM {TABLE} ORDER BY id"


class Writer:
    """One client of one node's proxy, in one protocol."""

    def __init__(self, cluster: Cluster, node: int, binary: bool) -> None:
        self.binary = binary
        if binary:
            self.conn: Any = mysql.connector.connect(
                host="127.0.0.1", port=cluster.base_port + node, user="root", password="",
                autocommit=True, charset="utf8mb4", collation="utf8mb4_general_ci",
                use_pure=True,
            )  # fmt: skip
            self.cur = self.conn.cursor(prepared=True)
        else:
            self.conn = cluster.proxy(node)
            self.cur = self.conn.cursor()
        self.cur.execute(SESSION)

    def run(self, template: str, columns: list[Column], values: list[Value]) -> None:
        """`template` with one `{}` per value: placeholders (binary) or literals (text)."""
        if self.binary:
            self.cur.execute(template.format(*["%s"] * len(values)), [parameter(v) for v in values])
        else:
            self.cur.execute(template.format(*map(literal, columns, values)))

    def begin(self) -> None:
        self.conn.start_transaction() if self.binary else self.conn.begin()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.cur.close()
        self.conn.close()


class Workload:
    """Seeded random inserts, updates (some moving the primary key) and deletes; keeps
    the ids every committed write left in the table."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids: set[int] = set()
        self.next_id = 1

    def row(self) -> list[Value]:
        r = self.rng
        return [None if r.random() < 0.15 else c.gen(r) for c in COLUMNS]

    def insert(self, w: Writer, values: list[Value]) -> None:
        row_id = self.next_id
        self.next_id += 1
        marks = ", ".join(["{}"] * (len(COLUMNS) + 1))
        insert = f"INSERT INTO {TABLE} (id, {', '.join(NAMES)}) VALUES ({marks})"
        w.run(insert, [ID, *COLUMNS], [row_id, *values])
        self.ids.add(row_id)

    def update(self, w: Writer, move_keys: bool = True) -> None:
        r = self.rng
        row_id = r.choice(sorted(self.ids))
        columns = r.sample(COLUMNS, r.randint(1, 6))
        values = [None if r.random() < 0.1 else c.gen(r) for c in columns]
        sets = ", ".join(f"{c.name} = {{}}" for c in columns)
        if move_keys and r.random() < 0.2:  # a primary-key change too
            new_id = self.next_id
            self.next_id += 1
            w.run(f"UPDATE {TABLE} SET {sets}, id = {new_id} WHERE id = {row_id}", columns, values)
            self.ids.discard(row_id)
            self.ids.add(new_id)
        else:
            w.run(f"UPDATE {TABLE} SET {sets} WHERE id = {row_id}", columns, values)

    def delete(self, w: Writer) -> None:
        row_id = self.rng.choice(sorted(self.ids))
        w.run(f"DELETE FROM {TABLE} WHERE id = {row_id}", [], [])
        self.ids.discard(row_id)

    def extremes(self, w: Writer) -> None:
        """A row of every column's first extreme, one of its last, one of NULLs."""
        self.insert(w, [c.edges[0] for c in COLUMNS])
        self.insert(w, [c.edges[-1] for c in COLUMNS])
        self.insert(w, [None] * len(COLUMNS))

    def batch(self, w: Writer, inserts: int, updates: int, deletes: int) -> None:
        """Autocommit statements, then the same mix again in one explicit transaction."""
        for in_transaction in (False, True):
            if in_transaction:
                w.begin()
            for _ in range(inserts):
                self.insert(w, self.row())
            for _ in range(updates):
                self.update(w)
            for _ in range(deletes):
                self.delete(w)
            if in_transaction:
                w.commit()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Every backend gets ZONE's time zone data at start (node-local, like Galera's
    `mysql.time_zone*`); the table is created through node 2 (total order isolation)."""
    zone = subprocess.run(
        ["mariadb-tzinfo-to-sql", f"/usr/share/zoneinfo/{ZONE}", ZONE],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    with running_cluster(tmp_path_factory.mktemp("types"), f"USE mysql;\n{zone}") as running:
        with running.proxy(1) as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE types")
            cur.execute(CREATE_TABLE)
        running.wait_same_position()
        yield running


def _exact_rows(cluster: Cluster, i: int) -> tuple[tuple[Any, ...], ...]:
    with cluster.backend(i) as conn, conn.cursor() as cur:
        cur.execute(SELECT_EXACT)
        return tuple(cur.fetchall())


def test_every_column_type_through_every_node_in_both_protocols(cluster: Cluster) -> None:
    work = Workload(SEED)
    for rounds in range(2):
        for node in range(NODES):
            for binary in (False, True):
                w = Writer(cluster, node, binary)
                try:
                    if rounds == 0:
                        work.extremes(w)
                    work.batch(w, inserts=8, updates=6, deletes=2)
                finally:
                    w.close()
    assert len(set(cluster.checksums(TABLE))) == 1
    rows = [_exact_rows(cluster, i) for i in range(NODES)]
    assert {row[0] for row in rows[0]} == work.ids
    for i in range(1, NODES):
        for mine, theirs in zip(rows[0], rows[i], strict=True):
            assert mine == theirs, f"node1 and node{i + 1} differ"


def _errno(exc: BaseException) -> int:
    code = getattr(exc, "errno", None) or (exc.args[0] if exc.args else None)
    return code if isinstance(code, int) else -1


CONCURRENT_OPS = 40  # transactions per writer


def test_conflicting_writers_on_every_node_in_both_protocols(cluster: Cluster) -> None:
    """One writer per node and protocol updates random columns of the same few rows at
    once (some in explicit transactions): conflicts get 1213 and nothing else; the
    nodes end identical, value by value."""
    seed = Workload(SEED + 1)
    seed.next_id = 50_000  # past the other tests' rows
    w = Writer(cluster, 0, binary=False)
    try:
        for _ in range(5):
            seed.insert(w, seed.row())
    finally:
        w.close()
    rows = set(seed.ids)
    commits: list[int] = []

    def writer(slot: int) -> None:
        work = Workload(SEED + 2 + slot)
        work.ids = set(rows)
        w = Writer(cluster, slot % NODES, binary=slot >= NODES)
        done = 0
        try:
            for op in range(CONCURRENT_OPS):
                explicit = op % 2 == 1
                try:
                    if explicit:
                        w.begin()
                    for _ in range(1 + explicit):
                        work.update(w, move_keys=False)
                    if explicit:
                        w.commit()
                    done += 1
                except (pymysql.err.MySQLError, mysql.connector.Error) as exc:
                    if _errno(exc) != 1213:
                        raise
                    w.rollback()
        finally:
            commits.append(done)
            w.close()

    run_clients(writer, 2 * NODES, timeout=180)
    print(f"committed {sum(commits)} of {2 * NODES * CONCURRENT_OPS}")  # the rest: 1213
    assert len(commits) == 2 * NODES and sum(commits) > 0, commits
    assert len(set(cluster.checksums(TABLE))) == 1
    exact = [_exact_rows(cluster, i) for i in range(NODES)]
    assert exact[0] == exact[1] == exact[2]


def test_every_type_after_the_table_changes_shape(cluster: Cluster) -> None:
    """ALTER TABLE through node 3 (TOI) adds columns, fills them from others in one
    write set of every row, then every node and protocol writes again: capture follows
    the new shape everywhere."""
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute(SESSION)
        cur.execute(
            f"ALTER TABLE {TABLE} ADD COLUMN late_ts TIMESTAMP(6) NULL DEFAULT NULL, "
            "ADD COLUMN late_js JSON, ADD COLUMN late_b VARBINARY(300) NOT NULL DEFAULT ''"
        )
        cur.execute(f"UPDATE {TABLE} SET late_ts = ts, late_js = js, late_b = COALESCE(vb, '')")
    work = Workload(SEED + 100)
    work.next_id = 60_000
    for node in range(NODES):
        for binary in (False, True):
            w = Writer(cluster, node, binary)
            try:
                work.batch(w, inserts=3, updates=3, deletes=1)
            finally:
                w.close()
    assert len(set(cluster.checksums(TABLE))) == 1
    exact = [_exact_rows(cluster, i) for i in range(NODES)]
    assert exact[0] == exact[1] == exact[2]


def test_negative_zero_and_dst_gap_times_store_alike_everywhere(cluster: Cluster) -> None:
    """-0.0 (MariaDB stores +0; ATAN2 tells the sign apart where text cannot) and a local
    time in the DST gap, from every node in both protocols: every backend holds the same
    value as every other, and the gap time is one instant whoever wrote it."""
    for node in range(NODES):
        for binary in (False, True):
            w = Writer(cluster, node, binary)
            try:
                w.run(
                    f"INSERT INTO {TABLE} (id, f, d, ts) VALUES ({{}}, {{}}, {{}}, {{}})",
                    [ID, *(COLUMNS[NAMES.index(n)] for n in ("f", "d", "ts"))],
                    [10_000 + 2 * node + binary, -0.0, -0.0, DST_TIMES[0]],
                )
            finally:
                w.close()
    cluster.wait_same_position()
    stored = set()
    for i in range(NODES):
        with cluster.backend(i) as conn, conn.cursor() as cur:
            cur.execute(
                f"SELECT id, ATAN2(f, -1), ATAN2(d, -1), UNIX_TIMESTAMP(ts) FROM {TABLE} "
                "WHERE id BETWEEN 10000 AND 10099 ORDER BY id"
            )
            stored.add(cur.fetchall())
    assert len(stored) == 1, stored
    (rows,) = stored
    assert len(rows) == 2 * NODES and len({row[1:] for row in rows}) == 1, rows
    assert len(set(cluster.checksums(TABLE))) == 1


def test_a_value_the_column_cannot_hold_is_a_clear_error(cluster: Cluster) -> None:
    """Strict mode refuses it on the origin; nothing replicates, the session goes on."""
    seqno = cluster.wait_same_position()
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError) as refused:
            cur.execute(f"INSERT INTO {TABLE} (id, tu) VALUES (20000, 256)")
        assert refused.value.args[0] == 1264  # out of range
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (0,)
    assert cluster.wait_same_position() == seqno
