"""Binlog row events applied with MariaDB's BINLOG statement (the spike's encoder).

Unit: the encoder writes the server's own Table_map bytes, packs values exactly or refuses
them. Real mariadbd: the events apply inside our transaction with the position, fire no
triggers, leave what today's SQL applier leaves, and the server's answers to duplicates,
missing rows and bad events are errors, never a crash.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import binlog_events as be
from proxy.backend_client import BackendClient, BackendError
from proxy.capture import Kind, Op, Position, RowChange, TableSpec, apply_write_set, read_position
from proxy.capture import mariadb_sql as sql
from proxy.capture.applier import prepare_applier_session
from proxy.capture.rowimage import ColumnSpec
from tests.capture.conftest import CLUSTER, PairFactory, connect

SBTEST = (
    "CREATE TABLE sbtest1 (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, "
    "pad CHAR(60) NOT NULL, KEY k (k)) ENGINE=InnoDB"
)
COLUMNS = (
    be.Column(be.FieldType.LONG),
    be.Column(be.FieldType.LONG),
    be.Column(be.FieldType.STRING, 480),  # CHAR(120) utf8mb4
    be.Column(be.FieldType.STRING, 240),
)
# MariaDB 10.11's own Table_map body for `sb`.`sbtest1` as table 18 (from its binlog)
SERVER_TABLE_MAP = bytes.fromhex("120000000000010002736200077362746573743100040303fefe04eee0fef000")


def sbtest(schema: str, table_id: int = 1) -> be.Table:
    return be.Table(schema, "sbtest1", COLUMNS, (0,), table_id)


def test_table_map_is_the_servers_own() -> None:
    assert sbtest("sb", 18).map_body == SERVER_TABLE_MAP


def test_write_rows_layout() -> None:
    event = be.rows_event(be.EventType.WRITE_ROWS, sbtest("sb", 18), [(2, 9, b"new", b"p")],
                          last=True)  # fmt: skip
    assert event[4] == be.EventType.WRITE_ROWS
    assert int.from_bytes(event[9:13], "little") == len(event)
    # table 18, flags (STMT_END, no FK checks), 4 columns, all
    # present, no NULLs, 2, 9, 'new' (2-byte length: 480 > 255), 'p' (1-byte length)
    assert event[19:] == bytes.fromhex("120000000000" "0300" "04" "0f" "00"
                                       "02000000" "09000000" "0300" "6e6577" "01" "70")  # fmt: skip


def test_rows_statement_maps_each_table_once_and_ends_on_the_last_event() -> None:
    one, two = sbtest("sb", 1), be.Table("sb", "t2", COLUMNS[:1], (0,), 2)
    statement = be.rows_statement(
        {
            (be.EventType.DELETE_ROWS, one): [(1,)],
            (be.EventType.DELETE_ROWS, two): [(2,)],
            (be.EventType.WRITE_ROWS, one): [(3, 3, b"c", b"p")],
        }
    )
    assert statement.startswith("BINLOG '") and statement.endswith("'")
    raw, events = base64.b64decode(statement[8:-1]), []
    while raw:
        size = int.from_bytes(raw[9:13], "little")
        events.append((raw[4], raw[19:25], int.from_bytes(raw[25:27], "little")))
        raw = raw[size:]
    tm, dl, wr = be.EventType.TABLE_MAP, be.EventType.DELETE_ROWS, be.EventType.WRITE_ROWS
    ids = [bytes((i,)) + bytes(5) for i in (1, 2, 1)]
    flags = [be.TM_BIT_LEN_EXACT_F, be.TM_BIT_LEN_EXACT_F]
    flags += [be.NO_FOREIGN_KEY_CHECKS_F] * 2 + [be.NO_FOREIGN_KEY_CHECKS_F | be.STMT_END_F]
    assert events == list(zip([tm, tm, dl, dl, wr], ids[:2] + ids, flags, strict=True))


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, "00"), (250, "fa"), (251, "fcfb00"), (65535, "fcffff"), (65536, "fd000001"),
     (1 << 24, "fe0000000100000000")],
)  # fmt: skip
def test_packed_int(n: int, encoded: str) -> None:
    assert be.lenenc_int(n).hex() == encoded


@given(st.integers(-(2**31), 2**31 - 1), st.binary(max_size=120))
def test_values_pack_at_their_width(k: int, c: bytes) -> None:
    out = bytearray()
    be.Column(be.FieldType.LONG).pack(out, k)
    be.Column(be.FieldType.STRING, 480).pack(out, c)
    kept = c.rstrip(b" ")  # CHAR's trailing pad is not stored; the reader pads again
    assert (
        bytes(out) == k.to_bytes(4, "little", signed=True) + len(kept).to_bytes(2, "little") + kept
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (be.Column(be.FieldType.LONG), 2**31),
        (be.Column(be.FieldType.LONG, unsigned=True), -1),
        (be.Column(be.FieldType.LONGLONG), 2**63),
        (be.Column(be.FieldType.LONG), "1"),
        (be.Column(be.FieldType.LONG), True),
        (be.Column(be.FieldType.STRING, 4), b"12345"),
        (be.Column(be.FieldType.VARCHAR, 3), "abc"),
    ],
)
def test_values_that_do_not_fit_are_refused(column: be.Column, value: object) -> None:
    with pytest.raises(be.BinlogEventError):
        column.pack(bytearray(), value)  # type: ignore[arg-type]


def test_bad_rows_and_tables_are_refused() -> None:
    table = sbtest("sb")
    for rows in ([(1, 2, b"c")], [(1, None, b"c", b"p")]):
        with pytest.raises(be.BinlogEventError):
            be.rows_event(be.EventType.WRITE_ROWS, table, rows, last=True)
    for key, table_id in (((), 1), ((7,), 1), ((0,), 0), ((0,), 1 << 48)):
        with pytest.raises(be.BinlogEventError):
            be.Table("sb", "t", COLUMNS, key, table_id)
    with pytest.raises(be.BinlogEventError):
        be.Table("sb", "t", (be.Column(be.FieldType.LONG, nullable=True),), (0,))
    with pytest.raises(be.BinlogEventError):
        be.Column(be.FieldType.STRING, 1024)


# --- on a real mariadbd ---------------------------------------------------------------

FDE = be.binlog_statement([be.format_description("10.11-test")])


@pytest.fixture
async def applier(pair_factory: PairFactory) -> AsyncIterator[tuple[str, BackendClient]]:
    """Server b's sbtest1 (capture installed) and an applier session that took the
    Format_description; slave_exec_mode is put back to STRICT (it is global)."""
    pair = await pair_factory(SBTEST, "INSERT INTO sbtest1 VALUES (1,1,'a','b'),(2,2,'c','d')")
    session = await connect(pair.servers[1])
    await prepare_applier_session(session)
    await session.query(FDE)
    try:
        yield pair.schema, session
    finally:
        await session.query("SET GLOBAL slave_exec_mode = 'STRICT'")
        await session.aclose()


async def rows(session: BackendClient, schema: str) -> list[tuple[bytes | None, ...]]:
    return (await session.query(f"SELECT * FROM `{schema}`.sbtest1 ORDER BY id")).rows


@pytest.mark.mariadb
async def test_rows_need_a_format_description_first(pair_factory: PairFactory) -> None:
    pair = await pair_factory(SBTEST)
    table = sbtest(pair.schema)
    write = be.rows_event(be.EventType.WRITE_ROWS, table, [(1, 1, b"x", b"y")], last=True)
    with pytest.raises(BackendError) as err:
        await pair.b.query(be.binlog_statement([be.table_map(table), write]))
    assert err.value.code == 1609  # "not preceded by a format description"


@pytest.mark.mariadb
async def test_events_apply_in_our_transaction_with_the_position(
    applier: tuple[str, BackendClient],
) -> None:
    schema, session = applier
    table = sbtest(schema, 7)
    events = [
        be.table_map(table),
        # a minimal before image (the key) finds the row
        be.rows_event(be.EventType.UPDATE_ROWS, table, [(1, 1, 5, b"upd", b"p  ")], last=False),
        be.rows_event(be.EventType.DELETE_ROWS, table, [(2,)], last=False),
        be.rows_event(be.EventType.WRITE_ROWS, table, [(3, 3, "é".encode(), b"q")], last=True),
    ]
    await session.query(f"{sql.BEGIN}; {be.binlog_statement(events)}")
    await session.query(f"{sql.update_position(CLUSTER, 9)}; {sql.COMMIT}")
    assert await rows(session, schema) == [
        (b"1", b"5", b"upd", b"p"),
        (b"3", b"3", "é".encode(), b"q"),
    ]
    assert await read_position(session) == Position(CLUSTER, 9)
    # no trigger fired (slave_run_triggers_for_rbr=NO): nothing captured
    assert (await session.query("SELECT COUNT(*) FROM wsrep.capture")).rows == [(b"0",)]
    # a rolled-back transaction leaves nothing
    write = be.rows_event(be.EventType.WRITE_ROWS, table, [(4, 4, b"r", b"r")], last=True)
    await session.query(f"{sql.BEGIN}; {be.binlog_statement([be.table_map(table), write])}")
    await session.query(sql.ROLLBACK)
    assert len(await rows(session, schema)) == 2


@pytest.mark.mariadb
async def test_duplicates_and_missing_rows(applier: tuple[str, BackendClient]) -> None:
    schema, session = applier
    table = sbtest(schema)
    dup = be.rows_event(be.EventType.WRITE_ROWS, table, [(1, 9, b"dup", b"d")], last=True)
    gone = be.rows_event(be.EventType.DELETE_ROWS, table, [(99,)], last=True)
    missing = be.rows_event(be.EventType.UPDATE_ROWS, table, [(98, 98, 1, b"u", b"u")],
                            last=True)  # fmt: skip
    for event, code in ((dup, 1062), (gone, 1032), (missing, 1032)):  # STRICT: errors
        with pytest.raises(BackendError) as err:
            await session.query(be.binlog_statement([be.table_map(table), event]))
        assert err.value.code == code
    await session.query("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'")
    for event in (dup, gone, missing):  # IDEMPOTENT: overwrite, skip, skip (no upsert!)
        await session.query(be.binlog_statement([be.table_map(table), event]))
    assert await rows(session, schema) == [(b"1", b"9", b"dup", b"d"), (b"2", b"2", b"c", b"d")]


@pytest.mark.mariadb
async def test_the_server_refuses_bad_events(applier: tuple[str, BackendClient]) -> None:
    schema, session = applier
    wrong_type = be.Table(schema, "sbtest1", (be.Column(be.FieldType.LONGLONG), *COLUMNS[1:]),
                          (0,))  # fmt: skip
    no_table = be.Table(schema, "nosuch", COLUMNS, (0,))
    for table in (wrong_type, no_table):
        write = be.rows_event(be.EventType.WRITE_ROWS, table, [(5, 1, b"t", b"t")], last=True)
        with pytest.raises(BackendError):
            await session.query(be.binlog_statement([be.table_map(table), write]))
    for garbage in ("BINLOG 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'", "BINLOG 'not base64!'"):
        with pytest.raises(BackendError):
            await session.query(garbage)
    assert len(await rows(session, schema)) == 2  # nothing applied, the session still works


@pytest.mark.mariadb
async def test_same_rows_as_the_sql_applier(pair_factory: PairFactory) -> None:
    """One write set applied with today's SQL applier on a and as row events on b."""
    pair = await pair_factory(SBTEST, "INSERT INTO sbtest1 VALUES (1,1,'a','b'),(2,2,'c','d')")
    spec = TableSpec(
        pair.schema,
        "sbtest1",
        (ColumnSpec("id", Kind.INT), ColumnSpec("k", Kind.INT),
         ColumnSpec("c", Kind.TEXT, "utf8mb4"), ColumnSpec("pad", Kind.TEXT, "utf8mb4")),
        (0,),
    )  # fmt: skip
    changes = [
        RowChange(spec, Op.DELETE, (2,)),
        RowChange(spec, Op.UPSERT, (1, -7, b"x" * 120, "ü".encode() * 60)),
        RowChange(spec, Op.UPSERT, (3, 2**31 - 1, b"", b"tail  ")),
    ]
    sql_applier = await connect(pair.servers[0])
    await prepare_applier_session(sql_applier)
    await apply_write_set(sql_applier, changes, Position(CLUSTER, 5))
    await sql_applier.aclose()
    table = sbtest(pair.schema)
    await pair.b.query(FDE)
    await pair.b.query("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'")  # Write_rows = upsert
    try:
        statement = be.rows_statement(
            {
                (be.EventType.DELETE_ROWS, table): [(2,)],
                (be.EventType.WRITE_ROWS, table): [c.values for c in changes[1:]],
            }
        )
        await pair.b.query(f"{sql.BEGIN}; {statement}")
        await pair.b.query(f"{sql.update_position(CLUSTER, 5)}; {sql.COMMIT}")
    finally:
        await pair.b.query("SET GLOBAL slave_exec_mode = 'STRICT'")
    await pair.assert_same()
