"""What the Python side of capture and apply costs per row, without a database.

    .venv/bin/python bench/rowimage_bench.py [--rounds 2000]

Two row shapes: sysbench's `sbtest` (INT id, INT k, CHAR(120) c, CHAR(60) pad) in
oltp_write_only-like transactions (3 upserts and 1 delete), and a table with one column of
every kind (with a NULL). Per step, CPU time (`time.process_time`) in µs per row change:

- parse:  the drain turning the server's text-protocol row into typed values
- keys:   the drain's certification keys of the row (PRIMARY of the final image)
- encode: `encode_changes` of the transaction's changes
- wsdec:  a write set carrying them decoded, keys included (`wsrep.writeset.decode`)
- decode: `decode_changes` on another node
- render: the applier's SQL (`apply_statements`)
- select: the drain's read of final images (`select_rows`), per key read
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from certification.keys import Key
from proxy.capture import certkeys
from proxy.capture import mariadb_sql as sql
from proxy.capture.applier import apply_statements
from proxy.capture.rowimage import Op, RowChange, decode_changes, encode_changes
from proxy.capture.shape import Column, TableShape, UniqueKey
from wsrep.writeset import WriteSet, decode, encode


def _column(name: str, data_type: str, nullable: bool = False) -> Column:
    charset = "utf8mb4" if data_type in ("char", "varchar", "text") else None
    collation = "utf8mb4_general_ci" if charset else None
    kind = sql.column_kind(data_type, charset)
    return Column(name, data_type, kind, charset, collation, nullable, False)


def _shape(name: str, columns: list[Column], table_id: int) -> TableShape:
    shape = TableShape(
        "sbtest", name, table_id, "InnoDB", tuple(columns),
        (UniqueKey("PRIMARY", ("id",), (None,)),), (),
    )  # fmt: skip
    shape.check_replicable()
    return shape


SBTEST = _shape(
    "sbtest1",
    [_column("id", "int"), _column("k", "int"), _column("c", "char"), _column("pad", "char")],
    1,
)
EVERY_KIND = _shape(
    "every_kind",
    [
        _column("id", "bigint"),
        _column("d", "decimal"),
        _column("f", "float"),
        _column("g", "double"),
        _column("b", "bit"),
        _column("t", "datetime"),
        _column("ts", "timestamp"),
        _column("s", "varchar"),
        _column("bin", "varbinary"),
        _column("e", "enum"),
        _column("set", "set"),
        _column("n", "int", nullable=True),
    ],
    2,
)


def _text_row(shape: TableShape, i: int) -> list[bytes | None]:
    """A row as the drain's SELECT returns it (text protocol), key columns first."""
    if shape is SBTEST:
        return [str(i).encode(), str(i * 7 % 100_000).encode(), b"c" * 120, b"p" * 60]
    return [
        str(2**40 + i).encode(), b"-12345.678900", b"0.5", b"3.141592653589793", b"5",
        b"2024-02-29 12:34:56.000001", b"1700000000.123456", b"some text " * 3,
        bytes(range(16)), b"2", b"5", None,
    ]  # fmt: skip


def _parse(shape: TableShape, raw: list[bytes | None]) -> tuple:
    return sql.parse_row(shape.spec, raw)


def _keys(shape: TableShape, row: tuple) -> list[Key]:
    return list(certkeys.unique_keys(shape, [(str(row[0]).encode(),)]))


def _transaction(shape: TableShape, first: int) -> tuple[list[RowChange], list[Key]]:
    spec = shape.spec
    changes: list[RowChange] = [RowChange(spec, Op.DELETE, (first + 3,))]
    keys: list[Key] = []
    for i in range(first, first + 3):
        row = _parse(shape, _text_row(shape, i))
        changes.append(RowChange(spec, Op.UPSERT, row))
        keys.extend(_keys(shape, row))
    return changes, keys


def _cpu_us(step: Callable[[], object], rounds: int, rows: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        step()
    return (time.process_time() - start) * 1e6 / rounds / rows


def measure(shape: TableShape, rounds: int) -> dict[str, float]:
    changes, keys = _transaction(shape, 1000)
    payload = encode_changes(changes)
    ws = encode(WriteSet("node1", 1, 0, tuple(certkeys.merge(keys)), payload))
    raw = _text_row(shape, 1000)
    row = _parse(shape, raw)
    select_keys = [(1000 + i,) for i in range(4)]
    n = len(changes)
    return {
        "parse": _cpu_us(lambda: _parse(shape, raw), rounds * n, 1),
        "keys": _cpu_us(lambda: _keys(shape, row), rounds * n, 1),
        "encode": _cpu_us(lambda: encode_changes(changes), rounds, n),
        "wsdec": _cpu_us(lambda: decode(ws), rounds, n),
        "decode": _cpu_us(lambda: decode_changes(payload), rounds, n),
        "render": _cpu_us(lambda: apply_statements(changes), rounds, n),
        "select": _cpu_us(lambda: sql.select_rows(shape, select_keys), rounds, len(select_keys)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    for title, shape in (("sbtest", SBTEST), ("every kind", EVERY_KIND)):
        result = measure(shape, args.rounds)
        total = sum(result.values())
        shown = "  ".join(f"{k} {v:5.2f}" for k, v in result.items())
        print(f"{title:10}  µs/row: {shown}  total {total:6.2f}")


if __name__ == "__main__":
    main()
