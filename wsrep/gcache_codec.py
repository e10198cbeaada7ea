"""What the gcache writes besides segment framing: entry bodies and the state file.

Entry bodies use the group protocol's own entry encoding (`wsrep.group.codec`), so a
record read for catch-up or IST is the very bytes an APPEND carries. The codec exposes
no stand-alone entry decoder, so bodies are decoded by wrapping them in an APPEND frame;
that also checks each entry's index.

The state file (`gcache.state`), replaced atomically on every change:

    magic "WSGCSTA\\0", version u16, reserved u16, cluster uuid (16 bytes, zero = none),
    term u64, delivered u64, voted_for (u16 length + utf-8, 0xFFFF = none),
    base and base view (each: u32 length, u64 index, one encoded entry; length 0 = none),
    crc32c u32 of everything before it

The delivered mark (`gcache.delivered`), rewritten in place after every delivery batch:

    magic "WSGD", delivered u64, crc32c u32 of the 12 bytes before it
"""

from __future__ import annotations

import struct
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace

import crc32c

from wsrep.group.codec import NIL_UUID, Append, CodecError, decode, encode_append, encode_entries
from wsrep.group.log import Entry, HardState

STATE_MAGIC = b"WSGCSTA\x00"
STATE_VERSION = 1
_STATE = struct.Struct("<8sHH16sQQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_BASE = struct.Struct("<IQ")
_NO_VOTE = 0xFFFF
DELIVERED_MAGIC = b"WSGD"
_DELIVERED = struct.Struct("<4sQ")
DELIVERED_SIZE = _DELIVERED.size + 4


class StateError(ValueError):
    """The state file is damaged or of an unknown version."""


def encode_body(e: Entry) -> bytes:
    return encode_entries((e,))


def decode_bodies(bodies: Sequence[bytes], first_index: int) -> list[Entry]:
    """Entries from consecutive bodies, the first of which is entry `first_index`."""
    if not bodies:
        return []
    header = Append(first_index - 1, 0, 0, (), False, False)
    frame = encode_append(NIL_UUID, 0, header, len(bodies), b"".join(bodies))
    # sizes were bounded when the entries were accepted; their crc matched
    msg = decode(frame, sys.maxsize)
    assert isinstance(msg.body, Append)
    return list(msg.body.entries)


def encode_state(state: HardState, base: Entry | None, base_view: Entry | None) -> bytes:
    out = [
        _STATE.pack(
            STATE_MAGIC, STATE_VERSION, 0, (state.cluster_uuid or NIL_UUID).bytes, state.term,
            state.delivered,
        )
    ]  # fmt: skip
    if state.voted_for is None:
        out.append(_U16.pack(_NO_VOTE))
    else:
        vote = state.voted_for.encode()
        out += [_U16.pack(len(vote)), vote]
    for e in (base, base_view):
        # the base only names a position: its payload is not kept
        body = b"" if e is None else encode_body(replace(e, payload=b""))
        out += [_BASE.pack(len(body), 0 if e is None else e.index), body]
    raw = b"".join(out)
    return raw + _U32.pack(crc32c.crc32c(raw))


def decode_state(data: bytes) -> tuple[HardState, Entry | None, Entry | None]:
    if len(data) < _STATE.size + 4 or data[:8] != STATE_MAGIC:
        raise StateError("not a gcache state file (bad magic or too short)")
    if _U32.unpack_from(data, len(data) - 4)[0] != crc32c.crc32c(data[:-4]):
        raise StateError("state file crc mismatch")
    _, version, _, raw_uuid, term, delivered = _STATE.unpack_from(data)
    if version != STATE_VERSION:
        raise StateError(f"state file version {version}, this code knows {STATE_VERSION}")
    pos = _STATE.size
    try:
        (n,) = _U16.unpack_from(data, pos)
        pos += 2
        voted_for = None
        if n != _NO_VOTE:
            voted_for = data[pos : pos + n].decode()
            pos += n
        entries: list[Entry | None] = []
        for _ in range(2):
            n, index = _BASE.unpack_from(data, pos)
            pos += _BASE.size
            body = data[pos : pos + n]
            pos += n
            entries.append(decode_bodies([body], index)[0] if body else None)
    except (struct.error, UnicodeDecodeError, CodecError) as e:
        raise StateError(f"state file damaged: {e}") from e
    if pos != len(data) - 4:
        raise StateError("state file damaged: wrong length")
    cluster_uuid = uuid.UUID(bytes=raw_uuid)
    state = HardState(
        term, voted_for, None if cluster_uuid == NIL_UUID else cluster_uuid, delivered
    )
    return state, entries[0], entries[1]


def encode_delivered(delivered: int) -> bytes:
    raw = _DELIVERED.pack(DELIVERED_MAGIC, delivered)
    return raw + _U32.pack(crc32c.crc32c(raw))


def decode_delivered(data: bytes) -> int | None:
    """The delivered index of a mark; None when it is missing, torn or damaged."""
    if len(data) != DELIVERED_SIZE or data[:4] != DELIVERED_MAGIC:
        return None
    if _U32.unpack_from(data, _DELIVERED.size)[0] != crc32c.crc32c(data[: _DELIVERED.size]):
        return None
    return int(_DELIVERED.unpack_from(data)[1])
