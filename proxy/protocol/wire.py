"""Primitive encodings: length-encoded integers/strings and packet framing."""

from __future__ import annotations

from proxy.protocol.constants import MAX_FRAME


class ProtocolError(ValueError):
    """Bytes that do not follow the protocol; the peer that sent them is dropped."""


def lenenc_int(value: int) -> bytes:
    if value < 0xFB:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def lenenc_bytes(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


def read_lenenc_int(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """(value, next position). 0xfb (NULL in rows) is returned as -1."""
    try:
        first = buf[pos]
        if first < 0xFB:
            return first, pos + 1
        if first == 0xFB:
            return -1, pos + 1
        if first == 0xFC:
            end = pos + 3
        elif first == 0xFD:
            end = pos + 4
        elif first == 0xFE:
            end = pos + 9
        else:
            raise ProtocolError("0xff is not a length-encoded integer")
    except IndexError:
        raise ProtocolError("truncated length-encoded integer") from None
    if end > len(buf):
        raise ProtocolError("truncated length-encoded integer")
    return int.from_bytes(buf[pos + 1 : end], "little"), end


def read_lenenc_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    """(value or None for NULL, next position)."""
    length, pos = read_lenenc_int(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise ProtocolError("truncated length-encoded string")
    return buf[pos:end], end


def read_nul_str(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = buf.find(b"\x00", pos)
    if end < 0:
        raise ProtocolError("missing NUL terminator")
    return buf[pos:end], end + 1


def frame(payload: bytes, seq: int) -> bytes:
    """Wire bytes of one logical packet, split into 0xffffff frames when needed."""
    if len(payload) < MAX_FRAME:
        return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload
    parts = []
    pos = 0
    while True:
        chunk = payload[pos : pos + MAX_FRAME]
        parts.append(len(chunk).to_bytes(3, "little") + bytes((seq & 0xFF,)))
        parts.append(chunk)
        seq += 1
        pos += MAX_FRAME
        if len(chunk) < MAX_FRAME:
            return b"".join(parts)
