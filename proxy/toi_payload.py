"""The data of TOI write sets, pure: the statement with its session context, and the
origin's report of how it came out.

    statement:  b"T" version  varint n  (name, value)*n  opt schema  opt definer  bytes
    outcome:    b"R" version  varint seqno  varint error code (0: success)  text origin

    name     = varint length + ascii `[a-z_]+` (a session system variable)
    value    = opt text (the variable's value as SELECT @@name shows it; absent = NULL)
    opt text = 0 for none, else varint(length + 1) + utf-8
    text     = varint length + utf-8
    bytes    = varint length + the statement exactly as the client sent it (in its
               character_set_client, which travels among the variables)

Varints are minimal (the certification codec's), the write set around it carries the
crc32c, and decoding checks that every byte is used: garbage is refused, never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from certification.keys import KeyFormatError, decode_varint, encode_varint

VERSION = 1
_STATEMENT = b"T"
_OUTCOME = b"R"
MAX_VARIABLES = 64
_VARIABLE = re.compile(r"[a-z_]{1,64}")


class PayloadError(ValueError):
    """Bytes that are not a TOI payload this node can run."""


@dataclass(frozen=True, slots=True)
class IsolatedStatement:
    """A statement to run at its seqno on every node, as its origin session ran it."""

    text: bytes
    schema: str | None  # the session's current database
    definer: str | None  # 'user'@'host' literal of the origin session's CURRENT_USER()
    variables: tuple[tuple[str, str | None], ...] = ()  # session variables to set first

    def __post_init__(self) -> None:
        if len(self.variables) > MAX_VARIABLES:
            raise ValueError(f"more than {MAX_VARIABLES} session variables")
        for name, _ in self.variables:
            if not _VARIABLE.fullmatch(name):
                raise ValueError(f"bad session variable name {name!r}")


@dataclass(frozen=True, slots=True)
class IsolationOutcome:
    """How the TOI statement at `seqno` (sent by `origin`) came out on the node that
    reports it: 0 or the error code."""

    seqno: int
    error: int
    origin: str

    def __post_init__(self) -> None:
        if not 0 < self.seqno < 2**63 or not 0 <= self.error < 2**16:
            raise ValueError(f"bad outcome {self.seqno}/{self.error}")


def encode(payload: IsolatedStatement | IsolationOutcome) -> bytes:
    if isinstance(payload, IsolationOutcome):
        parts = [_OUTCOME, bytes((VERSION,)), encode_varint(payload.seqno)]
        return b"".join([*parts, encode_varint(payload.error), _text(payload.origin)])
    parts = [_STATEMENT, bytes((VERSION,)), encode_varint(len(payload.variables))]
    for name, value in payload.variables:
        parts += [_text(name), _optional(value)]
    parts += [_optional(payload.schema), _optional(payload.definer)]
    parts += [encode_varint(len(payload.text)), payload.text]
    return b"".join(parts)


def decode(data: bytes) -> IsolatedStatement | IsolationOutcome:
    """Parse a TOI payload; anything malformed raises PayloadError."""
    if len(data) < 2 or data[:1] not in (_STATEMENT, _OUTCOME):
        raise PayloadError("not a TOI payload")
    if data[1] != VERSION:
        raise PayloadError(f"unsupported TOI payload version {data[1]}")
    try:
        if data[:1] == _OUTCOME:
            pos, seqno = decode_varint(data, 2)
            pos, error = decode_varint(data, pos)
            pos, origin = _read_text(data, pos)
            _end(data, pos)
            return IsolationOutcome(seqno, error, origin)
        pos, count = decode_varint(data, 2)
        if count > MAX_VARIABLES:
            raise PayloadError(f"{count} session variables")
        variables = []
        for _ in range(count):
            pos, name = _read_text(data, pos)
            pos, value = _read_optional(data, pos)
            variables.append((name, value))
        pos, schema = _read_optional(data, pos)
        pos, definer = _read_optional(data, pos)
        pos, length = decode_varint(data, pos)
        _end(data, pos + length)
        return IsolatedStatement(data[pos:], schema, definer, tuple(variables))
    except (KeyFormatError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"malformed TOI payload: {exc}") from None


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return encode_varint(len(raw)) + raw


def _optional(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    raw = value.encode("utf-8")
    return encode_varint(len(raw) + 1) + raw


def _read_text(data: bytes, pos: int) -> tuple[int, str]:
    pos, length = decode_varint(data, pos)
    if pos + length > len(data):
        raise PayloadError("truncated TOI payload")
    return pos + length, data[pos : pos + length].decode("utf-8")


def _read_optional(data: bytes, pos: int) -> tuple[int, str | None]:
    pos, tag = decode_varint(data, pos)
    if tag == 0:
        return pos, None
    end = pos + tag - 1
    if end > len(data):
        raise PayloadError("truncated TOI payload")
    return end, data[pos:end].decode("utf-8")


def _end(data: bytes, pos: int) -> None:
    if pos != len(data):
        raise PayloadError("trailing bytes in a TOI payload")
