"""The write set: what one transaction replicates, in a versioned, crc32c-checked encoding.

    offset  size
    0       4     magic b"WSET"
    4       1     version (1)
    5       1     flags (WriteSetFlags; unknown bits are refused)
    6       8     trx id, unsigned: unique per origin, so (origin, trx id) is unique
    14      8     last_seen, unsigned, < 2**63: origin's last committed seqno at snapshot
    22      ...   varint length + origin member id (utf-8)
            ...   varint count + certification keys (`certification.keys` wire form)
            ...   varint length + data (row images from the proxy; opaque here)
    end-4   4     crc32c of everything before it, big-endian

Varints are minimal, so every write set has exactly one encoding: decode(b) succeeding means
encode(decode(b)) == b. The seqno is not part of it: the group assigns it on delivery.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

import crc32c

from certification.index import CertificationRequest
from certification.keys import Key, KeyFormatError, decode_keys, decode_varint, encode_varint
from certification.limits import WriteSetLimits
from wsrep.group.types import MemberId

MAGIC = b"WSET"
VERSION = 1
MAX_ORIGIN_BYTES = 255
MAX_SIZE = 2**31 - 1  # Galera's wsrep_max_ws_size ceiling; decoders may pass less

_HEADER = struct.Struct(">4sBBQQ")
_CRC = struct.Struct(">I")
_MIN_SIZE = _HEADER.size + 3 + _CRC.size  # empty origin/keys/data would be 3 varint bytes


class WriteSetFlags(IntFlag):
    """Galera's write-set flags, with their values (TRX_COMMIT, TRX_ROLLBACK, ...)."""

    COMMIT = 0x01  # the transaction commits with this write set
    ROLLBACK = 0x02  # a rollback marker: releases the seqno, applies nothing
    ISOLATION = 0x04  # TOI: the data is a statement every node runs alone at this seqno
    PA_UNSAFE = 0x08  # must not apply in parallel with anything


_KNOWN_FLAGS = sum(flag.value for flag in WriteSetFlags)
_FLAGS = tuple(WriteSetFlags(bits) for bits in range(_KNOWN_FLAGS + 1))  # by value, no enum call
_COMMIT_AND_ROLLBACK = WriteSetFlags.COMMIT.value | WriteSetFlags.ROLLBACK.value


class WriteSetFormatError(ValueError):
    """Bytes that are not a write set this node can read."""


@dataclass(frozen=True, slots=True)
class WriteSet:
    origin: MemberId
    trx_id: int
    last_seen: int
    keys: tuple[Key, ...]
    data: bytes
    flags: WriteSetFlags = WriteSetFlags.COMMIT

    def __post_init__(self) -> None:
        if not 0 <= self.trx_id < 2**64:
            raise ValueError(f"trx id {self.trx_id} out of range")
        if not 0 <= self.last_seen < 2**63:
            raise ValueError(f"last_seen {self.last_seen} out of range")
        if not 0 < len(self.origin.encode("utf-8")) <= MAX_ORIGIN_BYTES:
            raise ValueError(f"origin id must be 1..{MAX_ORIGIN_BYTES} bytes of utf-8")
        _check_flags(int(self.flags), ValueError)

    def certification_request(self, seqno: int) -> CertificationRequest:
        """What the certification index needs, once the group has given it a seqno."""
        return CertificationRequest(seqno, self.last_seen, self.keys)

    def describe(self) -> str:
        """For log lines: who, which transaction, how big."""
        return (
            f"trx {self.trx_id} from {self.origin} (last_seen {self.last_seen}, "
            f"{len(self.keys)} keys, {len(self.data)} bytes, {flag_names(self.flags)})"
        )


def encode(ws: WriteSet, limits: WriteSetLimits | None = None) -> bytes:
    """The write set's bytes; with `limits`, refuse (WriteSetTooLarge) before replication."""
    origin = ws.origin.encode("utf-8")
    parts = [
        _HEADER.pack(MAGIC, VERSION, int(ws.flags), ws.trx_id, ws.last_seen),
        encode_varint(len(origin)),
        origin,
        encode_varint(len(ws.keys)),
        *(key.to_bytes() for key in ws.keys),
        encode_varint(len(ws.data)),
        ws.data,
    ]
    body = b"".join(parts)
    size = len(body) + _CRC.size
    if limits is not None:
        limits.check_bytes(size)
    if size > MAX_SIZE:
        raise WriteSetFormatError(f"write set of {size} bytes exceeds the format's {MAX_SIZE}")
    return body + _CRC.pack(crc32c.crc32c(body))


def decode(data: bytes | bytearray | memoryview, max_size: int = MAX_SIZE) -> WriteSet:
    """Parse and verify a write set; anything wrong raises WriteSetFormatError."""
    size = len(data)
    if size > max_size:
        raise WriteSetFormatError(f"write set of {size} bytes exceeds the limit of {max_size}")
    if size < _MIN_SIZE:
        raise WriteSetFormatError(f"truncated write set: {size} bytes")
    magic, version, flags, trx_id, last_seen = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise WriteSetFormatError(f"not a write set: magic {bytes(magic)!r}")
    if version != VERSION:
        raise WriteSetFormatError(f"unsupported write-set version {version}")
    body = bytes(data[: size - _CRC.size])  # keys are hashable slices of bytes
    (crc,) = _CRC.unpack_from(data, size - _CRC.size)
    if crc32c.crc32c(body) != crc:
        raise WriteSetFormatError("write-set checksum mismatch (corrupted)")
    _check_flags(flags, WriteSetFormatError)
    if last_seen >= 2**63:
        raise WriteSetFormatError(f"last_seen {last_seen} out of range")
    try:
        return _decode_body(body, flags, trx_id, last_seen)
    except KeyFormatError as err:  # varints and keys share the certification codec
        raise WriteSetFormatError(f"malformed write set: {err}") from None


def _decode_body(body: bytes, flags: int, trx_id: int, last_seen: int) -> WriteSet:
    pos, length = decode_varint(body, _HEADER.size)
    if not 0 < length <= MAX_ORIGIN_BYTES or pos + length > len(body):
        raise WriteSetFormatError(f"bad origin id length {length}")
    try:
        origin = body[pos : pos + length].decode("utf-8")
    except UnicodeDecodeError:
        raise WriteSetFormatError("origin id is not utf-8") from None
    pos, count = decode_varint(body, pos + length)
    if count > len(body) - pos:  # every key takes at least one byte
        raise WriteSetFormatError(f"key count {count} exceeds the write set's size")
    keys, pos = decode_keys(body, pos, count)
    pos, length = decode_varint(body, pos)
    if pos + length != len(body):
        raise WriteSetFormatError("data length does not match the write set's size")
    return WriteSet(origin, trx_id, last_seen, keys, body[pos:], _FLAGS[flags])


def flag_names(flags: WriteSetFlags) -> str:
    return "|".join(f.name or "" for f in WriteSetFlags if f in flags) or "no flags"


def _check_flags(flags: int, error: type[ValueError]) -> None:
    """`flags` as a plain int (IntFlag operators are Python calls)."""
    if flags & ~_KNOWN_FLAGS:
        raise error(f"unknown write-set flags {flags & ~_KNOWN_FLAGS:#x}")
    if flags & _COMMIT_AND_ROLLBACK == _COMMIT_AND_ROLLBACK:
        raise error("a write set cannot both commit and roll back")
