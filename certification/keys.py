"""Certification keys: which rows (or whole tables) a write set touches.

A key is identified by compact, prefix-free bytes (its `ident`) so the index can use plain
dict lookups on hash-cached `bytes`:

    table ident = varint(len schema) schema  varint(len table) table          (utf-8)
    row ident   = table ident  varint(len index) index  varint(n)  value*n
    value       = 0 for NULL, else varint(len + 1) bytes

Every row ident starts with its table's ident, so a key carries its table (`Key.table`) for
whole-table conflicts without a second lookup structure in the key itself.

Name rules follow MariaDB's default on Linux (`lower_case_table_names=0`): schema and table
names are case-sensitive and kept exactly as the backend resolves them; index names are
case-insensitive in MariaDB, so they are lower-cased. Column values are opaque bytes: the
producer must give them in the canonical form of the column's collation (e.g. the
`WEIGHT_STRING()` for a `_ci` column), since certification compares bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum


class KeyKind(IntEnum):
    """How a write set touches what the key names (its wire value is the enum value)."""

    EXCLUSIVE = 0  # a row written (inserted, updated, deleted): Galera's WSREP_KEY_EXCLUSIVE
    SHARED = 1  # a row referenced, e.g. a foreign-key parent: Galera's WSREP_KEY_SHARED
    TABLE = 2  # a whole table (TOI/DDL, statements that can't be keyed per row)


class KeyFormatError(ValueError):
    """Bytes that are not a well-formed certification key."""


@dataclass(frozen=True, slots=True)
class Key:
    kind: KeyKind
    ident: bytes  # row ident, or the table ident for TABLE keys
    table: bytes  # the table ident (a prefix of `ident`)

    def conflicts_with(self, other: Key) -> bool:
        """The type rule, stated once (the index implements it with dict lookups)."""
        if self.kind is KeyKind.TABLE or other.kind is KeyKind.TABLE:
            return self.table == other.table
        if self.kind is KeyKind.SHARED and other.kind is KeyKind.SHARED:
            return False
        return self.ident == other.ident

    def to_bytes(self) -> bytes:
        """Wire form: kind byte, varint length, ident."""
        return bytes((self.kind,)) + encode_varint(len(self.ident)) + self.ident

    def describe(self) -> str:
        """Human-readable form for logs, e.g. "EXCLUSIVE `shop`.`orders` primary(0x31)"."""
        pos, schema = _read_name(self.ident, 0)
        pos, table = _read_name(self.ident, pos)
        name = f"`{schema}`.`{table}`"
        if self.kind is KeyKind.TABLE:
            return f"TABLE {name}"
        pos, index = _read_name(self.ident, pos)
        values = _read_values(self.ident, pos)
        shown = ", ".join("NULL" if v is None else "0x" + v.hex() for v in values)
        return f"{self.kind.name} {name} {index}({shown})"


@functools.lru_cache(maxsize=4096)  # one shared bytes object per hot table
def table_ident(schema: str, table: str) -> bytes:
    return _name(schema) + _name(table)


def table_key(schema: str, table: str) -> Key:
    """Whole-table key: conflicts with every row key of the table and with its TABLE keys."""
    ident = table_ident(schema, table)
    return Key(KeyKind.TABLE, ident, ident)


def row_key(
    schema: str,
    table: str,
    index: str,
    values: Sequence[bytes | None],
    kind: KeyKind = KeyKind.EXCLUSIVE,
) -> Key:
    """Key of one row through one index (PRIMARY or a unique key); `None` is SQL NULL."""
    if kind is KeyKind.TABLE:
        raise ValueError("a row key is EXCLUSIVE or SHARED; use table_key() for TABLE")
    if not values:
        raise ValueError("a row key needs at least one column value")
    tid, head = _index_head(schema, table, index)
    parts = [head, encode_varint(len(values))]
    for value in values:
        if value is None:
            parts.append(b"\x00")
        elif isinstance(value, bytes):
            parts.append(encode_varint(len(value) + 1))
            parts.append(value)
        else:
            raise TypeError(f"key values are bytes or None, not {type(value).__name__}")
    return Key(kind, b"".join(parts), tid)


@functools.lru_cache(maxsize=4096)
def _index_head(schema: str, table: str, index: str) -> tuple[bytes, bytes]:
    """(table ident, row ident up to its values) of a table's index."""
    tid = table_ident(schema, table)
    return tid, tid + _name(index.lower())


def decode_key(data: bytes, pos: int = 0) -> tuple[Key, int]:
    """Parse one key's wire form at `pos`; return it and the position after it."""
    keys, end = decode_keys(data, pos, 1)
    return keys[0], end


def decode_keys(data: bytes, pos: int, count: int) -> tuple[tuple[Key, ...], int]:
    """Parse `count` keys at `pos`; return them and the position after the last.

    Keys mostly share a few tables and indexes: each distinct head (the names before the
    values) is validated once per process (`_HEADS`), and its keys share one bytes object
    for their table.
    """
    keys = []
    size = len(data)
    for _ in range(count):
        if pos >= size:
            raise KeyFormatError("truncated key: no kind byte")
        if data[pos] >= len(_KINDS):
            raise KeyFormatError(f"unknown key kind {data[pos]}")
        kind = _KINDS[data[pos]]
        if pos + 1 < size and data[pos + 1] < 0x80:  # an ident under 128 bytes
            length = data[pos + 1]
            pos += 2
        else:
            pos, length = decode_varint(data, pos + 1)
        end = pos + length
        if end > size:
            raise KeyFormatError("truncated key ident")
        ident = data[pos:end]
        if kind is KeyKind.TABLE:
            table = _table_of(ident, len(ident))
            keys.append(Key(kind, table, table))
        else:
            vpos = _values_pos(ident)
            table = _HEADS.get(ident[:vpos])
            if table is None:
                table = _check_head(ident, vpos)
            _check_values(ident, vpos)
            keys.append(Key(kind, ident, table))
        pos = end
    return tuple(keys), pos


# Validated row-key heads (table ident + index name) -> their table ident; bounded.
_HEADS: dict[bytes, bytes] = {}
_MAX_HEADS = 4096


def _values_pos(ident: bytes) -> int:
    """Where the values of a row ident start (after three names; checked by the caller)."""
    pos = 0
    for _ in range(3):
        if pos < len(ident) and ident[pos] < 0x80:
            pos += 1 + ident[pos]  # a name shorter than 128 bytes: no varint loop
        else:
            pos = _name_span(ident, pos)[1]
    return pos


def _check_head(ident: bytes, vpos: int) -> bytes:
    tpos = _name_span(ident, _name_span(ident, 0)[1])[1]
    table = _table_of(ident, tpos)
    end, _ = _read_name(ident, tpos)
    if end != vpos:
        raise KeyFormatError("malformed index name in key")
    if len(_HEADS) >= _MAX_HEADS:
        _HEADS.clear()
    _HEADS[ident[:vpos]] = table
    return table


def _table_of(ident: bytes, end: int) -> bytes:
    """The table ident `ident[:end]`, checked (two utf-8 names, nothing else)."""
    table = ident[:end]
    if table not in _TABLES:
        pos, _ = _read_name(table, 0)
        if _read_name(table, pos)[0] != end:
            raise KeyFormatError("trailing bytes in a TABLE key")
        if len(_TABLES) >= _MAX_HEADS:
            _TABLES.clear()
        _TABLES[table] = table
    return _TABLES[table]


_TABLES: dict[bytes, bytes] = {}  # validated table idents, one shared object each


def _check_values(ident: bytes, start: int) -> None:
    """A row ident's values: at least one, each NULL (0) or varint(len + 1) bytes, to the end."""
    size = len(ident)
    if start < size and 0 < ident[start] < 0x80:  # the common case: short values, no varints
        pos = start + 1
        for _ in range(ident[start]):
            if pos >= size or ident[pos] >= 0x80:
                break
            pos += ident[pos] or 1  # tag t: NULL (one byte) or t - 1 bytes after the tag
        else:
            if pos == size:
                return
    if not _read_values(ident, start):  # the general parse, with its exact error
        raise KeyFormatError("a row key needs at least one value")


_KINDS = tuple(KeyKind)
_ONE_BYTE_VARINTS = tuple(bytes((n,)) for n in range(0x80))


def encode_varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if 0 <= n < 0x80:
        return _ONE_BYTE_VARINTS[n]  # names, lengths and counts: almost always one byte
    if n < 0:
        raise ValueError("varint must be >= 0")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_MAX_VARINT_BYTES = 10  # enough for 64 bits


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Parse an unsigned LEB128 at `pos`; return (position after it, value)."""
    if pos < len(data) and data[pos] < 0x80:
        return pos + 1, data[pos]  # the common case, without the loop
    value = shift = 0
    for i in range(pos, min(pos + _MAX_VARINT_BYTES, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > pos:
                raise KeyFormatError("non-minimal varint")  # keeps encodings unique
            return i + 1, value
        shift += 7
    raise KeyFormatError("truncated or overlong varint")


def _name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if not raw:
        raise ValueError("schema, table and index names must not be empty")
    return encode_varint(len(raw)) + raw


def _name_span(ident: bytes, pos: int) -> tuple[int, int]:
    start, length = decode_varint(ident, pos)
    end = start + length
    if length == 0 or end > len(ident):
        raise KeyFormatError("empty or truncated name in key")
    return start, end


def _read_name(ident: bytes, pos: int) -> tuple[int, str]:
    start, end = _name_span(ident, pos)
    try:
        return end, ident[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError("name in key is not utf-8") from None


def _read_values(ident: bytes, pos: int) -> list[bytes | None]:
    pos, count = decode_varint(ident, pos)
    if count > len(ident) - pos:
        raise KeyFormatError("key value count exceeds its bytes")
    values: list[bytes | None] = []
    for _ in range(count):
        pos, tag = decode_varint(ident, pos)
        if tag == 0:
            values.append(None)
            continue
        end = pos + tag - 1
        if end > len(ident):
            raise KeyFormatError("truncated value in key")
        values.append(ident[pos:end])
        pos = end
    if pos != len(ident):
        raise KeyFormatError("trailing bytes in a row key")
    return values
