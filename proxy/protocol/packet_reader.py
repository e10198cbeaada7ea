"""Reassembles logical packets (possibly split in 0xffffff frames) from a byte stream."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.protocol.constants import HEADER_LEN, MAX_FRAME
from proxy.protocol.wire import ProtocolError


@dataclass(slots=True)
class Packet:
    """One logical packet: `raw` is the exact wire bytes (all frames), ready to forward."""

    seq: int  # sequence id of the first frame
    payload: bytes
    raw: bytes

    @property
    def last_seq(self) -> int:
        return (self.seq + len(self.raw) // (MAX_FRAME + HEADER_LEN)) & 0xFF


class PacketTooLarge(ProtocolError):
    pass


class PacketReader:
    """Feed bytes, take whole logical packets out.

    `max_payload` bounds a logical packet (like max_allowed_packet): a peer announcing a
    bigger one gets `PacketTooLarge` as soon as the header says so, before we buffer it.
    """

    def __init__(self, max_payload: int = 1 << 30) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()

    @property
    def buffer(self) -> bytearray:
        """The bytes fed and not taken yet, for parsers that consume whole packets in
        place (`text_result.TextResultReader`): they delete what they consumed."""
        return self._buf

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_packet(self) -> Packet | None:
        buf = self._buf
        avail = len(buf)
        if avail < HEADER_LEN:
            return None
        length = buf[0] | buf[1] << 8 | buf[2] << 16
        if length < MAX_FRAME:  # the common, single-frame case
            end = HEADER_LEN + length
            if avail < end:
                if length > self.max_payload:
                    raise PacketTooLarge(f"packet of {length} bytes exceeds {self.max_payload}")
                return None
            raw = bytes(buf[:end])
            del buf[:end]
            return Packet(raw[3], raw[HEADER_LEN:], raw)
        return self._next_split_packet()

    def _next_split_packet(self) -> Packet | None:
        buf = self._buf
        pos = 0
        chunks = []
        total = 0
        while True:
            if len(buf) < pos + HEADER_LEN:
                return None
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            total += length
            if total > self.max_payload:
                raise PacketTooLarge(
                    f"packet of more than {total} bytes exceeds {self.max_payload}"
                )
            end = pos + HEADER_LEN + length
            if len(buf) < end:
                return None
            chunks.append((pos + HEADER_LEN, end))
            pos = end
            if length < MAX_FRAME:
                break
        raw = bytes(buf[:pos])
        del buf[:pos]
        payload = b"".join(raw[a:b] for a, b in chunks)
        return Packet(raw[3], payload, raw)

    def take_buffered(self) -> bytes:
        """Whatever was fed but not taken as packets yet (for handing a stream over)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data
