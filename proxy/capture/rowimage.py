"""Row images: the net row changes of one transaction, and their compact binary encoding.

This is what travels in a write set instead of statements (Galera ships binlog row events;
we ship this). It is backend-neutral: values are typed by `Kind`, and each backend maps its
column types to kinds and renders them back to SQL literals.

Encoding, version 2 (varint = unsigned LEB128, name = varint length + utf-8):

    magic b"WRI" version(2)
    varint n_tables, per table: varint length + table header:
        name schema, name table, varint n_columns,
        per column: name, kind byte, name charset (empty unless TEXT)
        varint n_key, varint column index * n_key          (the identifying key)
    varint n_changes, per change:
        varint table index, op byte,
        UPSERT: null bitmap (1 bit per column), value per non-NULL column
        DELETE: value per key column (key columns are never NULL)

    INT/BITS/ENUM/SET  length byte n (1..9) + n bytes two's complement, little-endian
    FLOAT32/FLOAT64    4/8 bytes IEEE 754 little-endian, finite
    DECIMAL/TEMPORAL/TIMESTAMP  varint length + ASCII text, checked against a pattern
    TEXT/BYTES         varint length + bytes

Each table compiles once into a codec (a row encoder and decoder: one function per
column kind, no per-value dispatch), kept on its `TableSpec`; a decoder keeps the
`TableSpec` of each table header it has seen, so a write set costs a dict lookup per table
and a call per value.

The decoder checks every length, count and pattern and raises `RowImageError` with what it
found; since the applier renders these values into SQL, a value that gets past the decoder
is always a literal of its kind, never SQL text.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from certification.keys import encode_varint

MAGIC = b"WRI"
VERSION = 2

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
    # Specs are dict keys once per row in encoders and appliers: hash them once.
    _hash: int = field(init=False, repr=False, compare=False, default=0)
    _codec: _TableCodec | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.schema, self.name, self.columns, self.key)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def key_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(self.columns[i] for i in self.key)

    @property
    def codec(self) -> _TableCodec:
        """This table's compiled row codec (checks the spec on first use)."""
        codec = self._codec
        if codec is None:
            codec = _TableCodec(self)
            object.__setattr__(self, "_codec", codec)
        return codec


@dataclass(frozen=True, slots=True)
class RowChange:
    table: TableSpec
    op: Op
    values: tuple[Value, ...]  # UPSERT: one per column; DELETE: one per key column


# Limits a decoder enforces; generous for real schemas, small enough to stop garbage early.
MAX_NAME_BYTES = 256
MAX_COLUMNS = 4096
MAX_TEXT_VALUE = 80  # bytes of a DECIMAL(65,30) or TEMPORAL/TIMESTAMP text
MAX_HEADER_BYTES = 1 << 22  # a table header: names and kinds of at most MAX_COLUMNS columns
_PATTERNS = {
    Kind.DECIMAL: re.compile(rb"-?[0-9]{1,65}(\.[0-9]{1,38})?"),
    Kind.TEMPORAL: re.compile(rb"-?[0-9]{1,4}([-: .][0-9]{1,6}){0,6}"),
    Kind.TIMESTAMP: re.compile(rb"[0-9]{1,12}(\.[0-9]{1,6})?"),
}
_CHARSET = re.compile(r"[a-z0-9_]{1,32}")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_UNSIGNED = (Kind.BITS, Kind.ENUM, Kind.SET)
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


def check_value(kind: Kind, value: Value) -> None:
    """Raise RowImageError unless `value` is a valid non-NULL value of `kind`."""
    if kind is Kind.INT or kind in _UNSIGNED:
        low = _INT_MIN if kind is Kind.INT else 0
        if type(value) is not int or not low <= value <= _INT_MAX:
            raise RowImageError(f"{kind.name} value out of range or not an int: {value!r:.60}")
    elif kind in (Kind.FLOAT32, Kind.FLOAT64):
        if type(value) is not float or not math.isfinite(value):
            raise RowImageError(f"{kind.name} value must be a finite float: {value!r:.60}")
        if kind is Kind.FLOAT32 and not _is_binary32(value):
            raise RowImageError(f"FLOAT32 value is not a binary32: {value!r}")
    elif kind in _PATTERNS:
        raw = value.encode("ascii", "replace") if isinstance(value, str) else b"\xff"
        if len(raw) > MAX_TEXT_VALUE or not _PATTERNS[kind].fullmatch(raw):
            raise RowImageError(f"malformed {kind.name} text: {value!r:.60}")
    elif not isinstance(value, bytes):
        raise RowImageError(f"{kind.name} value must be bytes: {type(value).__name__}")


def _is_binary32(value: float) -> bool:
    try:
        return bool(_F32.unpack(_F32.pack(value))[0] == value)
    except OverflowError:  # beyond binary32's range
        return False


# --- value codecs: one encoder and one decoder per kind ---------------------------------

Encoder = Callable[[bytearray, Value], None]  # check the value and append it
Decoder = Callable[[bytes, int], tuple[Value, int]]  # (value, position after it); checked


def _error(data: bytes, pos: int, what: str) -> RowImageError:
    return RowImageError(f"row image: {what} at byte {pos} of {len(data)}")


def _varint(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    """Unsigned LEB128 at `pos` (IndexError past the end); (value, position after it)."""
    value = shift = 0
    for i in range(pos, pos + 10):
        b = data[i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if value > limit:
                raise _error(data, pos, f"number {value} above its limit {limit}")
            return value, i + 1
        shift += 7
    raise _error(data, pos, "overlong varint")


def _encoder(kind: Kind) -> Encoder:
    low = _INT_MIN if kind is Kind.INT else 0

    def integer(out: bytearray, value: Value) -> None:
        if type(value) is not int or not low <= value <= _INT_MAX:
            check_value(kind, value)  # raises, with the message
        raw = value.to_bytes((value.bit_length() + 8) >> 3, "little", signed=True)  # type: ignore[union-attr]
        out.append(len(raw))
        out += raw

    def real(out: bytearray, value: Value) -> None:
        if type(value) is not float or not math.isfinite(value):
            check_value(kind, value)
        out += _F64.pack(value)  # type: ignore[arg-type]

    def real32(out: bytearray, value: Value) -> None:
        check_value(kind, value)
        out += _F32.pack(value)  # type: ignore[arg-type]

    def text(out: bytearray, value: Value) -> None:
        check_value(kind, value)
        raw = value.encode("ascii")  # type: ignore[union-attr]
        out.append(len(raw))  # at most MAX_TEXT_VALUE: one varint byte
        out += raw

    def blob(out: bytearray, value: Value) -> None:
        if not isinstance(value, bytes):
            check_value(kind, value)
        n = len(value)  # type: ignore[arg-type]
        out += encode_varint(n)
        out += value  # type: ignore[operator]

    if kind is Kind.INT or kind in _UNSIGNED:
        return integer
    if kind is Kind.FLOAT64:
        return real
    if kind is Kind.FLOAT32:
        return real32
    return text if kind in _PATTERNS else blob


def _decoder(kind: Kind) -> Decoder:
    low = _INT_MIN if kind is Kind.INT else 0
    pattern = _PATTERNS.get(kind)
    fmt = _F32 if kind is Kind.FLOAT32 else _F64

    def integer(data: bytes, pos: int) -> tuple[Value, int]:
        n = data[pos]
        end = pos + 1 + n
        if not 0 < n <= 9 or end > len(data):
            raise _error(data, pos, f"integer of {n} bytes")
        value = int.from_bytes(data[pos + 1 : end], "little", signed=True)
        if not low <= value <= _INT_MAX:
            raise _error(data, pos, f"{kind.name} value {value} out of range")
        return value, end

    def real(data: bytes, pos: int) -> tuple[Value, int]:
        end = pos + fmt.size
        if end > len(data):
            raise _error(data, pos, "truncated")
        (value,) = fmt.unpack_from(data, pos)
        if not math.isfinite(value):
            raise _error(data, pos, f"{kind.name} value must be a finite float: {value!r}")
        return value, end

    def text(data: bytes, pos: int) -> tuple[Value, int]:
        raw, end = blob(data, pos)
        assert pattern is not None and isinstance(raw, bytes)
        if len(raw) > MAX_TEXT_VALUE or not pattern.fullmatch(raw):
            raise _error(data, pos, f"malformed {kind.name} text: {raw!r:.60}")
        return raw.decode("ascii"), end

    def blob(data: bytes, pos: int) -> tuple[Value, int]:
        n = data[pos]
        if n < 0x80:
            pos += 1
        else:
            n, pos = _varint(data, pos, len(data))
        end = pos + n
        if end > len(data):
            raise _error(data, pos, f"length {n} runs past the end")
        return data[pos:end], end

    if kind is Kind.INT or kind in _UNSIGNED:
        return integer
    if kind in (Kind.FLOAT32, Kind.FLOAT64):
        return real
    return text if pattern is not None else blob


_ENCODERS = {kind: _encoder(kind) for kind in Kind}
_DECODERS = {kind: _decoder(kind) for kind in Kind}


class _TableCodec:
    """One table's header bytes and per-column value codecs, built once per `TableSpec`."""

    __slots__ = ("bitmap", "decoders", "encoders", "header", "key_decoders", "key_encoders",
                 "width")  # fmt: skip

    def __init__(self, table: TableSpec) -> None:
        _check_table(table)
        self.header = _table_header(table)
        self.width = len(table.columns)
        self.bitmap = (self.width + 7) // 8
        self.encoders = tuple(_ENCODERS[c.kind] for c in table.columns)
        self.decoders = tuple(_DECODERS[c.kind] for c in table.columns)
        self.key_encoders = tuple(self.encoders[i] for i in table.key)
        self.key_decoders = tuple(self.decoders[i] for i in table.key)

    def encode(self, out: bytearray, change: RowChange) -> None:
        values = change.values
        if change.op is Op.DELETE:
            if len(values) != len(self.key_encoders) or None in values:
                raise RowImageError(
                    f"DELETE on {change.table.name} needs {len(self.key_encoders)} "
                    "non-NULL key values"
                )
            for encode, value in zip(self.key_encoders, values, strict=True):
                encode(out, value)
            return
        if len(values) != self.width:
            raise RowImageError(f"UPSERT on {change.table.name} needs {self.width} values")
        if None not in values:
            out += bytes(self.bitmap)
            for encode, value in zip(self.encoders, values, strict=True):
                encode(out, value)
            return
        nulls = 0
        for i, value in enumerate(values):
            if value is None:
                nulls |= 1 << i
        out += nulls.to_bytes(self.bitmap, "little")
        for encode, value in zip(self.encoders, values, strict=True):
            if value is not None:
                encode(out, value)

    def decode(self, data: bytes, pos: int, op: Op) -> tuple[tuple[Value, ...], int]:
        values: list[Value] = []
        if op is Op.DELETE:
            for decode in self.key_decoders:
                value, pos = decode(data, pos)
                values.append(value)
            return tuple(values), pos
        end = pos + self.bitmap
        if end > len(data):
            raise _error(data, pos, "truncated null bitmap")
        nulls = int.from_bytes(data[pos:end], "little")
        pos = end
        if nulls >> self.width:
            raise _error(data, pos, "null bitmap has bits past the last column")
        if not nulls:
            for decode in self.decoders:
                value, pos = decode(data, pos)
                values.append(value)
        else:
            for i, decode in enumerate(self.decoders):
                if nulls >> i & 1:
                    values.append(None)
                else:
                    value, pos = decode(data, pos)
                    values.append(value)
        return tuple(values), pos


# --- encoding -------------------------------------------------------------------------


def encode_changes(changes: Sequence[RowChange]) -> bytes:
    """Encode row changes (order kept); tables are listed once, in first-use order."""
    tables: dict[TableSpec, int] = {}
    body = bytearray()
    for change in changes:
        table = change.table
        index = tables.get(table)
        if index is None:
            index = tables[table] = len(tables)
        body += encode_varint(index)
        body.append(change.op)
        table.codec.encode(body, change)
    out = bytearray(MAGIC)
    out.append(VERSION)
    out += encode_varint(len(tables))
    for table in tables:
        header = table.codec.header
        out += encode_varint(len(header))
        out += header
    out += encode_varint(len(changes))
    out += body
    return bytes(out)


def _table_header(table: TableSpec) -> bytes:
    out = bytearray()
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
    return bytes(out)


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
    """Reads a table header (once per distinct header: see `_TABLES`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> RowImageError:
        return _error(self.data, self.pos, what)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self, limit: int) -> int:
        try:
            value, self.pos = _varint(self.data, self.pos, limit)
        except IndexError:
            raise self.fail("truncated") from None
        return value

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.fail(f"length {n} runs past the end")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def name(self) -> str:
        raw = self.take(self.varint(MAX_NAME_BYTES))
        if not raw:
            raise self.fail("empty name")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("name is not utf-8") from None


# Table headers seen, and their specs (whose codecs are compiled on first use). Bounded:
# a node sees as many as there are replicated table versions, cleared if ever that many.
_TABLES: dict[bytes, TableSpec] = {}
_MAX_TABLES = 4096


def decode_changes(data: bytes) -> list[RowChange]:
    """Decode `encode_changes` output; raise RowImageError on anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RowImageError(f"row image must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if data[: len(MAGIC)] != MAGIC:
        raise RowImageError("not a row image (bad magic)")
    if len(data) == len(MAGIC) or data[len(MAGIC)] != VERSION:
        version = data[len(MAGIC)] if len(data) > len(MAGIC) else "(none)"
        raise RowImageError(f"row image version {version} not supported (this is {VERSION})")
    try:
        return _decode_body(data, len(MAGIC) + 1)
    except IndexError:  # a byte read past the end: every other overrun is checked
        raise RowImageError(f"row image: truncated ({len(data)} bytes)") from None


def _decode_body(data: bytes, pos: int) -> list[RowChange]:
    size = len(data)
    count, pos = _varint(data, pos, size)
    tables = []
    for _ in range(count):
        length, pos = _varint(data, pos, MAX_HEADER_BYTES)
        end = pos + length
        if end > size:
            raise _error(data, pos, f"table header of {length} bytes runs past the end")
        tables.append(_table(data[pos:end], pos))
        pos = end
    count, pos = _varint(data, pos, size)
    changes = []
    for _ in range(count):
        index = data[pos]
        if index < 0x80:
            pos += 1
        else:
            index, pos = _varint(data, pos, size)
        if index >= len(tables):
            raise _error(data, pos, f"table index {index} of {len(tables)}")
        table = tables[index]
        op = data[pos]
        if op == Op.UPSERT:
            values, pos = table.codec.decode(data, pos + 1, Op.UPSERT)
            changes.append(RowChange(table, Op.UPSERT, values))
        elif op == Op.DELETE:
            values, pos = table.codec.decode(data, pos + 1, Op.DELETE)
            changes.append(RowChange(table, Op.DELETE, values))
        else:
            raise _error(data, pos, "unknown row operation")
    if pos != size:
        raise _error(data, pos, "trailing bytes")
    return changes


def _table(header: bytes, offset: int) -> TableSpec:
    table = _TABLES.get(header)
    if table is None:
        try:
            table = _decode_table(_Reader(header))
        except RowImageError as exc:
            raise RowImageError(f"table header at byte {offset}: {exc}") from None
        if len(_TABLES) >= _MAX_TABLES:
            _TABLES.clear()
        _TABLES[header] = table
    return table


def _decode_table(r: _Reader) -> TableSpec:
    schema, name = r.name(), r.name()
    columns = []
    for _ in range(r.varint(MAX_COLUMNS)):
        col_name = r.name()
        try:
            kind = Kind(r.byte())
        except ValueError:
            raise r.fail("unknown column kind") from None
        charset = r.take(r.varint(32)).decode("ascii", "replace")
        columns.append(ColumnSpec(col_name, kind, charset))
    key = tuple(r.varint(MAX_COLUMNS) for _ in range(r.varint(MAX_COLUMNS)))
    if r.pos != len(r.data):
        raise r.fail("trailing bytes in the table header")
    table = TableSpec(schema, name, tuple(columns), key)
    try:
        table.codec  # noqa: B018 - checks the spec (and compiles it for the rows to come)
    except RowImageError as exc:
        raise r.fail(str(exc)) from None
    return table
