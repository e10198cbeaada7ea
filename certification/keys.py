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
    tid = table_ident(schema, table)
    parts = [tid, _name(index.lower()), encode_varint(len(values))]
    for value in values:
        if value is None:
            parts.append(b"\x00")
        elif isinstance(value, bytes):
            parts.append(encode_varint(len(value) + 1))
            parts.append(value)
        else:
            raise TypeError(f"key values are bytes or None, not {type(value).__name__}")
    return Key(kind, b"".join(parts), tid)


def decode_key(data: bytes, pos: int = 0) -> tuple[Key, int]:
    """Parse one key's wire form at `pos`; return it and the position after it."""
    keys, end = decode_keys(data, pos, 1)
    return keys[0], end


def decode_keys(data: bytes, pos: int, count: int) -> tuple[tuple[Key, ...], int]:
    """Parse `count` keys at `pos`; return them and the position after the last.

    Keys of one write set mostly share a few tables: each table prefix is validated once
    per call, and its keys share one bytes object for it.
    """
    tables: dict[bytes, bytes] = {}
    keys = []
    size = len(data)
    for _ in range(count):
        if pos >= size:
            raise KeyFormatError("truncated key: no kind byte")
        if data[pos] >= len(_KINDS):
            raise KeyFormatError(f"unknown key kind {data[pos]}")
        kind = _KINDS[data[pos]]
        pos, length = decode_varint(data, pos + 1)
        end = pos + length
        if end > size:
            raise KeyFormatError("truncated key ident")
        ident = data[pos:end]
        tpos = _name_span(ident, _name_span(ident, 0)[1])[1]
        prefix = ident[:tpos]
        table = tables.get(prefix)
        if table is None:
            _read_name(ident, _read_name(ident, 0)[0])  # utf-8 check, once per table
            table = tables[prefix] = prefix
        if kind is KeyKind.TABLE:
            if tpos != len(ident):
                raise KeyFormatError("trailing bytes in a TABLE key")
        elif not _read_values(ident, _read_name(ident, tpos)[0]):
            raise KeyFormatError("a row key needs at least one value")
        keys.append(Key(kind, table if kind is KeyKind.TABLE else ident, table))
        pos = end
    return tuple(keys), pos


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
