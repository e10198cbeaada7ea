"""Binlog row events for MariaDB's `BINLOG '<base64>'` statement (a measured spike).

Galera's appliers apply binlog row events, below SQL: no parsing, no optimizer, no
triggers. A client can do the same through the `BINLOG` statement (what `mysqlbinlog`
output uses): a Format_description event once per connection, then per statement
Table_map events and Write/Update/Delete_rows (v1) events, the last one flagged
STMT_END_F. See docs/design/capture.md, "Row events below SQL: measured".

Only what the spike needs is encoded: INT/BIGINT (signed or not), CHAR and VARCHAR. The
layouts follow MariaDB's `log_event.h` (v4 common header, no checksums):

    header     when u32, type u8, server_id u32, event_size u32, log_pos u32, flags u16
    Table_map  table_id u48, flags u16, db (len u8 + bytes + NUL), table (same),
               packed n_columns, type u8 * n, packed metadata length + metadata,
               null bitmap (a bit per nullable column)
    *_rows v1  table_id u48, flags u16, packed n_columns, columns-present bitmap
               (Update_rows: a second one for the after image), then per row image:
               null bitmap over the present columns + each non-NULL present value

Pure: bytes in, bytes out; every value is checked against its column before it is packed,
so a value that does not fit raises `BinlogEventError` instead of storing something else.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from proxy.protocol.wire import lenenc_int


class BinlogEventError(ValueError):
    """A table or value the encoder cannot represent exactly."""


class FieldType(IntEnum):
    """MySQL/MariaDB column types as Table_map names them (enum_field_types)."""

    LONG = 3  # INT
    LONGLONG = 8  # BIGINT
    VARCHAR = 15
    STRING = 254  # CHAR


class EventType(IntEnum):
    FORMAT_DESCRIPTION = 15
    TABLE_MAP = 19
    WRITE_ROWS = 23  # v1, what MariaDB writes
    UPDATE_ROWS = 24
    DELETE_ROWS = 25


# Rows-event flags: the last event of a statement closes its table maps; no FK checks, as
# today's applier (the write set holds every row a cascade changed, in any order). Not
# RELAXED_UNIQUE_CHECKS_F (Galera's default, wsrep_slave_UK_checks=OFF): InnoDB may then
# miss a duplicate in a secondary unique index, which an upsert must find and replace.
STMT_END_F = 0x0001
NO_FOREIGN_KEY_CHECKS_F = 0x0002
TM_BIT_LEN_EXACT_F = 0x0001

BINLOG_VERSION = 4
HEADER = struct.Struct("<IBIIIH")
HEADER_LEN = HEADER.size  # 19
# Post-header length per event type in MariaDB 10.11's Format_description (log_event.h);
# types not listed have none. A reader takes these lengths from our event, so they must
# be the server's own.
POST_HEADER_LEN = {
    1: 56, 2: 13, 4: 8, 6: 18, 8: 4, 9: 4, 10: 4, 11: 4, 12: 18, 15: 228, 17: 4, 18: 26,
    19: 8, 23: 8, 24: 8, 25: 8, 26: 2, 30: 10, 31: 10, 32: 10, 39: 10, 40: 10, 41: 10,
    161: 4, 162: 19, 163: 4, 165: 13, 166: 8, 167: 8, 168: 8, 169: 10, 170: 10, 171: 10,
}  # fmt: skip
N_EVENT_TYPES = 171
CHECKSUM_ALG_OFF = 0
MAX_TABLE_ID = (1 << 48) - 2  # all ones is the "dummy" id
_INT_RANGE = {
    (FieldType.LONG, False): (-(2**31), 2**31 - 1),
    (FieldType.LONG, True): (0, 2**32 - 1),
    (FieldType.LONGLONG, False): (-(2**63), 2**63 - 1),
    (FieldType.LONGLONG, True): (0, 2**64 - 1),
}

Value = int | bytes | None
Packer = Callable[[bytearray, Value], None]  # check a non-NULL value and append it


@dataclass(frozen=True, slots=True)
class Column:
    """One column as the applier's table has it (row events address columns by position,
    so the encoder needs every column of the table, in order)."""

    type: FieldType
    max_bytes: int = 0  # CHAR/VARCHAR: the column's length in bytes (chars * mbmaxlen)
    nullable: bool = False
    unsigned: bool = False
    pack: Packer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type in (FieldType.STRING, FieldType.VARCHAR):
            top = 1023 if self.type is FieldType.STRING else 65535
            if not 0 <= self.max_bytes <= top:
                raise BinlogEventError(f"{self.type.name} of {self.max_bytes} bytes")
        object.__setattr__(self, "pack", _packer(self))

    @property
    def metadata(self) -> bytes:
        if self.type is FieldType.STRING:  # real type and length, length bits 8-9 folded in
            n = self.max_bytes
            return bytes(((FieldType.STRING ^ ((n & 0x300) >> 4)), n & 0xFF))
        if self.type is FieldType.VARCHAR:
            return self.max_bytes.to_bytes(2, "little")
        return b""


_INT_STRUCTS = {
    (FieldType.LONG, False): struct.Struct("<i"),
    (FieldType.LONG, True): struct.Struct("<I"),
    (FieldType.LONGLONG, False): struct.Struct("<q"),
    (FieldType.LONGLONG, True): struct.Struct("<Q"),
}


def _packer(column: Column) -> Packer:
    """The column's value in row-event form (what the server's Field::pack writes)."""
    if column.type in (FieldType.LONG, FieldType.LONGLONG):
        low, high = _INT_RANGE[(column.type, column.unsigned)]
        pack = _INT_STRUCTS[(column.type, column.unsigned)].pack

        def integer(out: bytearray, value: Value) -> None:
            if type(value) is not int or not low <= value <= high:
                raise BinlogEventError(f"{column.type.name} value out of range: {value!r:.40}")
            out += pack(value)

        return integer
    limit, wide = column.max_bytes, column.max_bytes > 255
    pad = column.type is FieldType.STRING  # CHAR drops trailing pad; the reader pads again

    def string(out: bytearray, value: Value) -> None:
        if type(value) is not bytes or len(value) > limit:
            raise BinlogEventError(
                f"{column.type.name}({limit} bytes) value too long or not bytes: {value!r:.40}"
            )
        if pad:
            value = value.rstrip(b" ")
        n = len(value)
        out += n.to_bytes(2, "little") if wide else bytes((n,))
        out += value

    return string


@dataclass(frozen=True, slots=True)
class Table:
    """A table as its row events address it; what its events repeat is built once."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[int, ...]  # the primary key's column indexes (a before image's columns)
    table_id: int = 1  # session-local; one per table in a statement
    map_body: bytes = field(init=False, repr=False, compare=False, default=b"")
    # per rows-event kind: the body after the flags up to the rows, the before image's columns
    rows_head: dict[EventType, tuple[bytes, tuple[Column, ...]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        where = f"{self.schema}.{self.name}"
        if not self.columns or not self.key or not 0 < self.table_id <= MAX_TABLE_ID:
            raise BinlogEventError(f"{where}: needs columns, a key and a table id")
        if any(not 0 <= i < len(self.columns) or self.columns[i].nullable for i in self.key):
            raise BinlogEventError(f"{where}: the key must be NOT NULL columns of the table")
        object.__setattr__(self, "_hash", hash((self.schema, self.name, self.table_id)))
        out = bytearray(self.table_id.to_bytes(6, "little"))
        out += TM_BIT_LEN_EXACT_F.to_bytes(2, "little")
        for name in (self.schema, self.name):
            raw = name.encode()
            if not 0 < len(raw) <= 64:
                raise BinlogEventError(f"{where}: bad name {name!r:.70}")
            out += bytes((len(raw),)) + raw + b"\0"
        n = len(self.columns)
        out += lenenc_int(n) + bytes(c.type for c in self.columns)
        metadata = b"".join(c.metadata for c in self.columns)
        out += lenenc_int(len(metadata)) + metadata
        out += bitmap(n, (i for i, c in enumerate(self.columns) if c.nullable))
        object.__setattr__(self, "map_body", bytes(out))
        everything, key = bitmap(n, range(n)), bitmap(n, self.key)
        key_columns = tuple(self.columns[i] for i in self.key)
        self.rows_head.update(
            {
                EventType.WRITE_ROWS: (lenenc_int(n) + everything, self.columns),
                EventType.DELETE_ROWS: (lenenc_int(n) + key, key_columns),
                EventType.UPDATE_ROWS: (lenenc_int(n) + key + everything, key_columns),
            }
        )

    def __hash__(self) -> int:  # a dict key per row in an encoder
        return self._hash


def bitmap(width: int, bits: Iterable[int]) -> bytes:
    """`width` bits, least significant bit of the first byte first."""
    out = bytearray((width + 7) >> 3)
    for i in bits:
        out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def event(kind: EventType, body: bytes, when: int, server_id: int) -> bytes:
    """One event: the v4 common header, then `body` (no checksum)."""
    return HEADER.pack(when, kind, server_id, HEADER_LEN + len(body), 0, 0) + body


def format_description(server_version: str, when: int = 0, server_id: int = 1) -> bytes:
    """The event a session must apply before any other (`BINLOG` refuses rows events
    until it has one); it says events carry no checksum."""
    version = server_version.encode()[:49].ljust(50, b"\0")
    lengths = bytes(POST_HEADER_LEN.get(t, 0) for t in range(1, N_EVENT_TYPES + 1))
    body = (
        BINLOG_VERSION.to_bytes(2, "little")
        + version
        + when.to_bytes(4, "little")
        + bytes((HEADER_LEN,))
        + lengths
        + bytes((CHECKSUM_ALG_OFF,))
        + bytes(4)  # room for the checksum a Format_description always has
    )
    return event(EventType.FORMAT_DESCRIPTION, body, when, server_id)


def _image(out: bytearray, columns: Sequence[Column], values: Sequence[Value]) -> None:
    """One row image: the NULL bitmap over `columns`, then each non-NULL value."""
    if len(values) != len(columns):
        raise BinlogEventError(f"{len(values)} values for {len(columns)} columns")
    if None not in values:  # the common row: no bitmap to compute
        out += bytes((len(columns) + 7) >> 3)
        for column, value in zip(columns, values):  # noqa: B905 (lengths checked)
            column.pack(out, value)
        return
    out += bitmap(len(columns), (i for i, v in enumerate(values) if v is None))
    for column, value in zip(columns, values):  # noqa: B905
        if value is not None:
            column.pack(out, value)
        elif not column.nullable:
            raise BinlogEventError("NULL in a NOT NULL column")


def rows_event(
    kind: EventType,
    table: Table,
    rows: Sequence[Sequence[Value]],
    *,
    last: bool,
    when: int = 0,
    server_id: int = 1,
) -> bytes:
    """Write_rows: full rows. Delete_rows: primary-key values (a minimal before image).
    Update_rows: rows of key values followed by the full row (before, after)."""
    head, before = table.rows_head[kind]
    flags = NO_FOREIGN_KEY_CHECKS_F | (STMT_END_F if last else 0)
    out = bytearray(table.map_body[:6])  # the table id
    out += flags.to_bytes(2, "little") + head
    if kind is EventType.UPDATE_ROWS:
        split = len(before)
        for row in rows:
            _image(out, before, row[:split])
            _image(out, table.columns, row[split:])
    else:
        for row in rows:
            _image(out, before, row)
    return event(kind, bytes(out), when, server_id)


def table_map(table: Table, when: int = 0, server_id: int = 1) -> bytes:
    return event(EventType.TABLE_MAP, table.map_body, when, server_id)


Row = Sequence[Value]


def rows_statement(batches: Mapping[tuple[EventType, Table], Sequence[Row]]) -> str:
    """One BINLOG statement for rows grouped by (event type, table), in the mapping's
    order: a Table_map per table, then a rows event per batch; the last ends the
    statement (and its table maps)."""
    events = [table_map(t) for t in dict.fromkeys(t for _, t in batches)]
    last = len(batches) - 1
    for n, ((kind, table), rows) in enumerate(batches.items()):
        events.append(rows_event(kind, table, rows, last=n == last))
    return binlog_statement(events)


def binlog_statement(events: Iterable[bytes]) -> str:
    """The SQL statement that applies `events` (one transaction's part, or a
    Format_description alone)."""
    return "BINLOG '" + base64.b64encode(b"".join(events)).decode("ascii") + "'"
