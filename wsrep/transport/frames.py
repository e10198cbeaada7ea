"""Length-prefixed, crc32c-checked frames between group members (sans-I/O).

Wire layout of one frame (big-endian):

    magic u16 "WS" | kind u8 | flags u8 (0) | body length u32 | body | crc32c u32

The crc covers header and body. The decoder checks magic, kind and the claimed length as
soon as the 8-byte header is in, so a frame claiming 2 GiB is refused before any of its
body is buffered. Any error poisons the decoder: a byte stream that went wrong once cannot
be trusted to be re-synchronised, the connection is closed instead.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from crc32c import crc32c

MAGIC = 0x5753  # "WS"
_HEADER = struct.Struct(">HBBI")
_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + _CRC.size


class FrameKind(enum.IntEnum):
    HELLO = 1  # dialer -> listener: protocol version and a fresh nonce
    CHALLENGE = 2  # listener -> dialer: the listener's nonce
    AUTH = 3  # dialer proves the secret, tells who it is
    WELCOME = 4  # listener proves the secret, tells who it is
    REFUSE = 5  # either side: why the handshake was refused (for the log only)
    DATA = 16  # one authenticated protocol message


class FrameError(ValueError):
    """The byte stream of one connection is broken; close that connection."""


@dataclass(frozen=True)
class Frame:
    kind: FrameKind
    body: bytes


def encode_frame(kind: FrameKind, body: bytes) -> bytes:
    return b"".join(encode_frame_parts(kind, body))


def encode_frame_parts(kind: FrameKind, *body: bytes) -> tuple[bytes, ...]:
    """One frame whose body is the concatenation of `body`, as pieces to write in order."""
    header = _HEADER.pack(MAGIC, kind, 0, sum(len(b) for b in body))
    crc = crc32c(header)
    for piece in body:
        crc = crc32c(piece, crc)
    return (header, *body, _CRC.pack(crc))


class FrameDecoder:
    """Fed arbitrary chunks of a byte stream, hands out the complete frames one by one.

    Pull-style (`next_frame`), so the caller can raise `max_body` between two frames that
    arrived in the same chunk (the handshake is small, authenticated traffic is not).
    """

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._buf = bytearray()
        self._pos = 0  # start of the first frame not handed out yet
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, None when more bytes are needed; FrameError if broken."""
        if self._error is not None:
            raise self._error
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            return None
        magic, kind, flags, length = _HEADER.unpack_from(buf, pos)
        try:
            self._check_header(magic, kind, flags, length)
            end = pos + HEADER_SIZE + length
            if len(buf) < end + _CRC.size:
                return None
            (crc,) = _CRC.unpack_from(buf, end)
            with memoryview(buf) as view:
                if crc32c(view[pos:end]) != crc:
                    raise FrameError(
                        f"crc32c mismatch on a {FrameKind(kind).name} frame of {length} bytes"
                    )
                frame = Frame(FrameKind(kind), bytes(view[pos + HEADER_SIZE : end]))
        except FrameError as exc:
            self._error = exc
            self._buf, self._pos = bytearray(), 0
            raise
        self._pos = end + _CRC.size
        return frame

    def check_eof(self) -> None:
        """The stream ended: complain when it ended in the middle of a frame."""
        if self.buffered and self._error is None:
            raise FrameError(f"stream ended inside a frame ({self.buffered} bytes pending)")

    def _check_header(self, magic: int, kind: int, flags: int, length: int) -> None:
        if magic != MAGIC:
            raise FrameError(f"bad frame magic 0x{magic:04x} (not a wsrep group member?)")
        if kind not in _KINDS:
            raise FrameError(f"unknown frame kind {kind}")
        if flags:
            raise FrameError(f"unknown frame flags 0x{flags:02x}")
        if length > self.max_body:
            raise FrameError(f"frame of {length} bytes exceeds the limit of {self.max_body}")


_KINDS = frozenset(int(k) for k in FrameKind)
