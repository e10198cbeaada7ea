"""The applier: one transaction with the position, idempotent, any order, bad input."""

from __future__ import annotations

import pytest

from proxy.backend_client import BackendClient, BackendError
from proxy.capture import (
    Kind,
    Op,
    Position,
    RowChange,
    RowImageError,
    TableSpec,
    apply_write_set,
    decode_changes,
    encode_changes,
    load_catalog,
    read_position,
)
from proxy.capture.rowimage import ColumnSpec
from tests.capture.conftest import CLUSTER, PairFactory

pytestmark = pytest.mark.mariadb

FK_DDL = (
    "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL UNIQUE) ENGINE=InnoDB",
    "CREATE TABLE child (id INT PRIMARY KEY, pid INT NOT NULL, "
    "FOREIGN KEY (pid) REFERENCES parent (id)) ENGINE=InnoDB",
)


def specs(schema: str) -> tuple[TableSpec, TableSpec]:
    parent = TableSpec(
        schema,
        "parent",
        (ColumnSpec("id", Kind.INT), ColumnSpec("name", Kind.TEXT, "utf8mb4")),
        (0,),
    )
    child = TableSpec(
        schema, "child", (ColumnSpec("id", Kind.INT), ColumnSpec("pid", Kind.INT)), (0,)
    )
    return parent, child


async def test_apply_in_any_order_idempotently_with_position(pair_factory: PairFactory) -> None:
    pair = await pair_factory(*FK_DDL)
    parent, child = specs(pair.schema)
    changes = [
        RowChange(child, Op.UPSERT, (1, 7)),  # child before its parent: no FK check fires
        RowChange(parent, Op.UPSERT, (7, b"seven")),
        RowChange(parent, Op.DELETE, (99,)),  # not there: nothing happens
    ]
    for seqno in (41, 42):  # the same write set twice leaves the same rows
        await apply_write_set(
            pair.b, decode_changes(encode_changes(changes)), Position(CLUSTER, seqno)
        )
    assert await read_position(pair.b) == Position(CLUSTER, 42)
    assert (await pair.b.query(f"SELECT * FROM `{pair.schema}`.child")).rows == [(b"1", b"7")]
    # a parent and its child deleted, listed parent first
    gone = [RowChange(parent, Op.DELETE, (7,)), RowChange(child, Op.DELETE, (1,))]
    await apply_write_set(pair.b, gone, Position(CLUSTER, 43))
    assert (await pair.b.query(f"SELECT COUNT(*) FROM `{pair.schema}`.child")).rows == [(b"0",)]
    left = (await pair.b.query("SELECT COUNT(*) FROM wsrep.capture")).rows
    assert left == [(b"0",)]  # the applier's writes were not captured


async def test_unique_key_collision_is_resolved_by_later_rows(pair_factory: PairFactory) -> None:
    pair = await pair_factory(*FK_DDL)
    parent, _ = specs(pair.schema)
    in_place = (await load_catalog(pair.b, [pair.schema])).single_unique_key
    start = [RowChange(parent, Op.UPSERT, (1, b"a")), RowChange(parent, Op.UPSERT, (2, b"b"))]
    await apply_write_set(pair.b, start, Position(CLUSTER, 1), in_place)
    swap = [RowChange(parent, Op.UPSERT, (1, b"b")), RowChange(parent, Op.UPSERT, (2, b"a"))]
    await apply_write_set(pair.b, swap, Position(CLUSTER, 2), in_place)
    rows = (await pair.b.query(f"SELECT * FROM `{pair.schema}`.parent ORDER BY id")).rows
    assert rows == [(b"1", b"b"), (b"2", b"a")]
    # Why REPLACE there: upserted in place, the swap's first row collides on `name`.
    with pytest.raises(BackendError, match="Duplicate entry"):
        await apply_write_set(pair.b, start, Position(CLUSTER, 3), {(pair.schema, "parent")})


async def _handler_counts(conn: BackendClient) -> dict[str, int]:
    rows = (await conn.query("SHOW SESSION STATUS LIKE 'Handler_%'")).rows
    return {bytes(r[0] or b"").decode(): int(r[1] or 0) for r in rows}


async def test_single_unique_key_tables_are_upserted_in_place(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        *FK_DDL, "CREATE TABLE pairs (a INT, b INT, PRIMARY KEY (a, b)) ENGINE=InnoDB"
    )
    _, child = specs(pair.schema)
    pairs = TableSpec(
        pair.schema, "pairs", (ColumnSpec("a", Kind.INT), ColumnSpec("b", Kind.INT)), (0, 1)
    )
    catalog = await load_catalog(pair.b, [pair.schema])
    in_place = catalog.single_unique_key
    assert in_place == {(pair.schema, "child"), (pair.schema, "pairs")}  # parent: 2 unique keys
    first = [
        RowChange(child, Op.UPSERT, (1, 7)),
        RowChange(child, Op.UPSERT, (2, 7)),
        RowChange(pairs, Op.UPSERT, (1, 2)),
    ]
    await apply_write_set(pair.b, first, Position(CLUSTER, 1), in_place)
    before = await _handler_counts(pair.b)
    again = [
        RowChange(child, Op.UPSERT, (1, 8)),
        RowChange(child, Op.UPSERT, (3, 9)),
        RowChange(pairs, Op.UPSERT, (1, 2)),  # key columns only: still a no-op update
    ]
    await apply_write_set(pair.b, again, Position(CLUSTER, 2), in_place)
    after = await _handler_counts(pair.b)
    # REPLACE on a table with triggers deletes and re-inserts; in place it is an update
    assert after["Handler_delete"] == before["Handler_delete"]
    assert after["Handler_update"] > before["Handler_update"]
    rows = (await pair.b.query(f"SELECT * FROM `{pair.schema}`.child ORDER BY id")).rows
    assert rows == [(b"1", b"8"), (b"2", b"7"), (b"3", b"9")]
    assert (await pair.b.query(f"SELECT * FROM `{pair.schema}`.pairs")).rows == [(b"1", b"2")]
    assert await read_position(pair.b) == Position(CLUSTER, 2)


async def test_failed_apply_leaves_data_and_position_untouched(pair_factory: PairFactory) -> None:
    pair = await pair_factory(*FK_DDL)
    parent, _ = specs(pair.schema)
    await apply_write_set(pair.b, [RowChange(parent, Op.UPSERT, (1, b"a"))], Position(CLUSTER, 5))
    missing = TableSpec(pair.schema, "nope", (ColumnSpec("id", Kind.INT),), (0,))
    broken = [RowChange(parent, Op.UPSERT, (2, b"b")), RowChange(missing, Op.UPSERT, (1,))]
    with pytest.raises(BackendError, match="doesn't exist"):
        await apply_write_set(pair.b, broken, Position(CLUSTER, 6))
    assert await read_position(pair.b) == Position(CLUSTER, 5)
    assert (await pair.b.query(f"SELECT id FROM `{pair.schema}`.parent")).rows == [(b"1",)]
    # the session is still usable
    await apply_write_set(pair.b, broken[:1], Position(CLUSTER, 6))
    assert await read_position(pair.b) == Position(CLUSTER, 6)


async def test_garbage_payload_is_refused_before_anything_runs(pair_factory: PairFactory) -> None:
    pair = await pair_factory(*FK_DDL)
    parent, _ = specs(pair.schema)
    payload = encode_changes([RowChange(parent, Op.UPSERT, (1, b"a"))])
    for bad in (
        payload[:-1],
        payload + b"\x00",
        b"\x00" * 40,
        payload.replace(b"parent", b"par`nt"),
    ):
        try:
            changes = decode_changes(bad)
        except RowImageError:
            continue
        # a renamed table still decodes; quoting keeps it a name, and it does not exist
        with pytest.raises(BackendError, match="doesn't exist"):
            await apply_write_set(pair.b, changes, Position(CLUSTER, 9))
    assert (await pair.b.query(f"SELECT COUNT(*) FROM `{pair.schema}`.parent")).rows == [(b"0",)]
