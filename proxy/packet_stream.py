"""A trio stream read as MySQL packets (connection phase, backend client) or as raw
chunks (the relay's hot path), sharing one buffer so nothing read is ever lost."""

from __future__ import annotations

import contextlib

import trio

from proxy.protocol.packet_reader import Packet, PacketReader

RECEIVE_SIZE = 256 * 1024


class PeerClosed(ConnectionError):
    """The other end closed the connection (or it broke)."""


class PacketStream:
    def __init__(self, stream: trio.abc.Stream, max_payload: int = 1 << 30) -> None:
        self.stream = stream
        self.reader = PacketReader(max_payload)

    async def read_packet(self) -> Packet:
        while True:
            packet = self.reader.next_packet()
            if packet is not None:
                return packet
            self.reader.feed(await self._receive())

    async def receive_some(self) -> bytes:
        """Buffered bytes first, then whatever the peer sends next."""
        if self.reader.buffered:
            return self.reader.take_buffered()
        return await self._receive()

    async def _receive(self) -> bytes:
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise PeerClosed(str(exc)) from exc
        if not data:
            raise PeerClosed("connection closed by peer")
        return data

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise PeerClosed(str(exc)) from exc

    async def linger_and_close(self, timeout: float = 1.0) -> None:
        """Close after an error reply: stop sending, then read and drop what the peer is
        still sending for a while, so that closing with unread input (which makes the
        kernel send a reset) cannot destroy the reply before the peer reads it."""
        with trio.move_on_after(timeout), contextlib.suppress(trio.BrokenResourceError, OSError):
            if isinstance(self.stream, trio.abc.HalfCloseableStream):
                await self.stream.send_eof()
            while await self.stream.receive_some(RECEIVE_SIZE):
                pass
        await self.aclose()

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
