"""Row images: the net row changes of one transaction, and their compact binary encoding.

This is what travels in a write set instead of statements (Galera ships binlog row events;
we ship this). It is backend-neutral: values are typed by `Kind`, and each backend maps its
column types to kinds and renders them back to SQL literals.

Encoding, version 1 (varint = unsigned LEB128, name = varint length + utf-8):

    magic b"WRI" version(1)
    varint n_tables, per table:
        name schema, name table, varint n_columns,
        per column: name, kind byte, name charset (empty unless TEXT)
        varint n_key, varint column index * n_key          (the identifying key)
    varint n_changes, per change:
        varint table index, op byte,
        UPSERT: null bitmap (1 bit per column), value per non-NULL column
        DELETE: value per key column (key columns are never NULL)

    INT/BITS/ENUM/SET  zigzag varint (INT) or varint
    FLOAT32/FLOAT64    4/8 bytes IEEE 754 little-endian, finite
    DECIMAL/TEMPORAL/TIMESTAMP  varint length + ASCII text, checked against a pattern
    TEXT/BYTES         varint length + bytes

The decoder checks every length, count and pattern and raises `RowImageError` with what it
found; since the applier renders these values into SQL, a value that gets past the decoder
is always a literal of its kind, never SQL text.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from certification.keys import encode_varint

MAGIC = b"WRI"
VERSION = 1

Value = int | float | str | bytes | None


class Kind(IntEnum):
    """What a column value is, independent of the backend's type names."""

    INT = 1  # any integer column, signed or unsigned (Python int)
    DECIMAL = 2  # exact decimal text, e.g. "-12.500"
    FLOAT32 = 3  # Python float that is exactly a binary32
    FLOAT64 = 4  # Python float
    BITS = 5  # BIT(n) as an unsigned int
    TEMPORAL = 6  # DATE, TIME, DATETIME, YEAR as the server's text
    TIMESTAMP = 7  # seconds since the epoch, UTC, text "s[.ffffff]" (time-zone free)
    TEXT = 8  # character string bytes in the column's charset
    BYTES = 9  # binary string bytes
    ENUM = 10  # 1-based member index (0 = the '' error value)
    SET = 11  # member bitmask


class Op(IntEnum):
    UPSERT = 1  # the row now has exactly this full image
    DELETE = 2  # the row with this key is gone


class RowImageError(ValueError):
    """Bytes or values that are not a valid row-image encoding."""


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    kind: Kind
    charset: str = ""  # only for TEXT: the column's character set, e.g. "utf8mb4"


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table as its row images describe it: the written columns and the identifying key."""

    schema: str
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[int, ...]  # indexes into `columns`

    @property
    def key_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(self.columns[i] for i in self.key)


@dataclass(frozen=True, slots=True)
class RowChange:
    table: TableSpec
    op: Op
    values: tuple[Value, ...]  # UPSERT: one per column; DELETE: one per key column


# Limits a decoder enforces; generous for real schemas, small enough to stop garbage early.
MAX_NAME_BYTES = 256
MAX_COLUMNS = 4096
MAX_TEXT_VALUE = 80  # bytes of a DECIMAL(65,30) or TEMPORAL/TIMESTAMP text
_PATTERNS = {
    Kind.DECIMAL: re.compile(rb"-?[0-9]{1,65}(\.[0-9]{1,38})?"),
    Kind.TEMPORAL: re.compile(rb"-?[0-9]{1,4}([-: .][0-9]{1,6}){0,6}"),
    Kind.TIMESTAMP: re.compile(rb"[0-9]{1,12}(\.[0-9]{1,6})?"),
}
_CHARSET = re.compile(r"[a-z0-9_]{1,32}")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def check_value(kind: Kind, value: Value) -> None:
    """Raise RowImageError unless `value` is a valid non-NULL value of `kind`."""
    if kind in (Kind.INT, Kind.BITS, Kind.ENUM, Kind.SET):
        low = _INT_MIN if kind is Kind.INT else 0
        if type(value) is not int or not low <= value <= _INT_MAX:
            raise RowImageError(f"{kind.name} value out of range or not an int: {value!r:.60}")
    elif kind in (Kind.FLOAT32, Kind.FLOAT64):
        if type(value) is not float or not math.isfinite(value):
            raise RowImageError(f"{kind.name} value must be a finite float: {value!r:.60}")
        if kind is Kind.FLOAT32 and struct.unpack("<f", struct.pack("<f", value))[0] != value:
            raise RowImageError(f"FLOAT32 value is not a binary32: {value!r}")
    elif kind in _PATTERNS:
        raw = value.encode("ascii", "replace") if isinstance(value, str) else b"\xff"
        if len(raw) > MAX_TEXT_VALUE or not _PATTERNS[kind].fullmatch(raw):
            raise RowImageError(f"malformed {kind.name} text: {value!r:.60}")
    elif not isinstance(value, bytes):
        raise RowImageError(f"{kind.name} value must be bytes: {type(value).__name__}")


# --- encoding -------------------------------------------------------------------------


def encode_changes(changes: Sequence[RowChange]) -> bytes:
    """Encode row changes (order kept); tables are listed once, in first-use order."""
    tables: dict[TableSpec, int] = {}
    body = bytearray()
    for change in changes:
        if change.table not in tables:
            _check_table(change.table)
            tables[change.table] = len(tables)
        body += encode_varint(tables[change.table])
        body.append(change.op)
        _encode_values(body, change)
    out = bytearray(MAGIC)
    out.append(VERSION)
    out += encode_varint(len(tables))
    for table in tables:
        _encode_table(out, table)
    out += encode_varint(len(changes))
    out += body
    return bytes(out)


def _encode_table(out: bytearray, table: TableSpec) -> None:
    _put_name(out, table.schema)
    _put_name(out, table.name)
    out += encode_varint(len(table.columns))
    for col in table.columns:
        _put_name(out, col.name)
        out.append(col.kind)
        _put_bytes(out, col.charset.encode("ascii"))
    out += encode_varint(len(table.key))
    for i in table.key:
        out += encode_varint(i)


def _encode_values(out: bytearray, change: RowChange) -> None:
    table = change.table
    if change.op is Op.DELETE:
        cols = table.key_columns
        if len(change.values) != len(cols) or None in change.values:
            raise RowImageError(f"DELETE on {table.name} needs {len(cols)} non-NULL key values")
    else:
        cols = table.columns
        if len(change.values) != len(cols):
            raise RowImageError(f"UPSERT on {table.name} needs {len(cols)} values")
        bitmap = bytearray((len(cols) + 7) // 8)
        for i, value in enumerate(change.values):
            if value is None:
                bitmap[i // 8] |= 1 << (i % 8)
        out += bitmap
    for col, value in zip(cols, change.values, strict=True):
        if value is not None:
            check_value(col.kind, value)
            _encode_value(out, col.kind, value)


def _encode_value(out: bytearray, kind: Kind, value: Value) -> None:
    if kind is Kind.INT:
        assert isinstance(value, int)
        out += encode_varint(value * 2 if value >= 0 else -value * 2 - 1)
    elif kind in (Kind.BITS, Kind.ENUM, Kind.SET):
        assert isinstance(value, int)
        out += encode_varint(value)
    elif kind is Kind.FLOAT32:
        out += struct.pack("<f", value)
    elif kind is Kind.FLOAT64:
        out += struct.pack("<d", value)
    elif isinstance(value, str):
        _put_bytes(out, value.encode("ascii"))
    else:
        assert isinstance(value, bytes)
        _put_bytes(out, value)


def _check_table(table: TableSpec) -> None:
    n = len(table.columns)
    if not 0 < n <= MAX_COLUMNS:
        raise RowImageError(f"table {table.name!r} has {n} columns")
    if not table.key or len(set(table.key)) != len(table.key):
        raise RowImageError(f"table {table.name!r} needs a key of distinct columns")
    if any(not 0 <= i < n for i in table.key):
        raise RowImageError(f"table {table.name!r} key refers to a missing column")
    for col in table.columns:
        if (col.kind is Kind.TEXT) != bool(_CHARSET.fullmatch(col.charset)):
            raise RowImageError(f"column {col.name!r}: a charset goes with TEXT, and only TEXT")


def _put_bytes(out: bytearray, raw: bytes) -> None:
    out += encode_varint(len(raw))
    out += raw


def _put_name(out: bytearray, name: str) -> None:
    raw = name.encode("utf-8")
    if not 0 < len(raw) <= MAX_NAME_BYTES:
        raise RowImageError(f"name of {len(raw)} bytes: {name!r:.60}")
    _put_bytes(out, raw)


# --- decoding -------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> RowImageError:
        return RowImageError(f"row image: {what} at byte {self.pos} of {len(self.data)}")

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self, limit: int = 2**64 - 1) -> int:
        value = shift = 0
        for _ in range(10):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value > limit:
                    raise self.fail(f"number {value} above its limit {limit}")
                return value
            shift += 7
        raise self.fail("overlong varint")

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.fail(f"length {n} runs past the end")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def blob(self, limit: int | None = None) -> bytes:
        return self.take(self.varint(len(self.data) if limit is None else limit))

    def name(self) -> str:
        raw = self.blob(MAX_NAME_BYTES)
        if not raw:
            raise self.fail("empty name")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("name is not utf-8") from None


def decode_changes(data: bytes) -> list[RowChange]:
    """Decode `encode_changes` output; raise RowImageError on anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RowImageError(f"row image must be bytes, not {type(data).__name__}")
    r = _Reader(bytes(data))
    if r.take(min(len(MAGIC), len(r.data))) != MAGIC:
        raise RowImageError("not a row image (bad magic)")
    version = r.byte()
    if version != VERSION:
        raise RowImageError(f"row image version {version} not supported (this is {VERSION})")
    tables = [_decode_table(r) for _ in range(r.varint(len(r.data)))]
    changes = [_decode_change(r, tables) for _ in range(r.varint(len(r.data)))]
    if r.pos != len(r.data):
        raise r.fail("trailing bytes")
    return changes


def _decode_table(r: _Reader) -> TableSpec:
    schema, name = r.name(), r.name()
    columns = []
    for _ in range(r.varint(MAX_COLUMNS)):
        col_name = r.name()
        try:
            kind = Kind(r.byte())
        except ValueError:
            raise r.fail("unknown column kind") from None
        charset = r.blob(32).decode("ascii", "replace")
        columns.append(ColumnSpec(col_name, kind, charset))
    key = tuple(r.varint(MAX_COLUMNS) for _ in range(r.varint(MAX_COLUMNS)))
    table = TableSpec(schema, name, tuple(columns), key)
    try:
        _check_table(table)
    except RowImageError as exc:
        raise r.fail(str(exc)) from None
    return table


def _decode_change(r: _Reader, tables: list[TableSpec]) -> RowChange:
    index = r.varint()
    if index >= len(tables):
        raise r.fail(f"table index {index} of {len(tables)}")
    table = tables[index]
    try:
        op = Op(r.byte())
    except ValueError:
        raise r.fail("unknown row operation") from None
    if op is Op.DELETE:
        values = tuple(_decode_value(r, col.kind) for col in table.key_columns)
        return RowChange(table, op, values)
    cols = table.columns
    bitmap = r.take((len(cols) + 7) // 8)
    if len(cols) % 8 and bitmap[-1] >> (len(cols) % 8):
        raise r.fail("null bitmap has bits past the last column")
    image = tuple(
        None if bitmap[i // 8] >> (i % 8) & 1 else _decode_value(r, col.kind)
        for i, col in enumerate(cols)
    )
    return RowChange(table, op, image)


def _decode_value(r: _Reader, kind: Kind) -> Value:
    value: Value
    if kind is Kind.INT:
        z = r.varint(2**65)  # zigzag of -2**63 .. 2**64-1
        value = z >> 1 if not z & 1 else -(z >> 1) - 1
    elif kind in (Kind.BITS, Kind.ENUM, Kind.SET):
        value = r.varint()
    elif kind is Kind.FLOAT32:
        value = struct.unpack("<f", r.take(4))[0]
    elif kind is Kind.FLOAT64:
        value = struct.unpack("<d", r.take(8))[0]
    elif kind in _PATTERNS:
        value = r.blob(MAX_TEXT_VALUE).decode("ascii", "replace")
    else:
        value = r.blob()
    try:
        check_value(kind, value)
    except RowImageError as exc:
        raise r.fail(str(exc)) from None
    return value
