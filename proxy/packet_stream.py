"""A connection read as MySQL packets (connection phase, backend client) or as raw
chunks (the relay's hot path), sharing one buffer so nothing read is ever lost.

Plain TCP connections skip trio's stream layer on the hot path: a non-blocking read or
write is tried first and trio is only awaited (wait_readable/wait_writable) when the
socket is not ready. Relaying a query then costs two scheduler round trips (waiting for
the client's command and for the backend's response) instead of six. TLS connections go
through trio.SSLStream.
"""

from __future__ import annotations

import contextlib
import os

import trio

from proxy.protocol.packet_reader import Packet, PacketReader

# Below glibc's mmap threshold: a read buffer this size is a cheap heap allocation.
RECEIVE_SIZE = 64 * 1024
# Reads/writes that completed without waiting before we yield to other tasks anyway.
_FAIRNESS_BUDGET = 64


class PeerClosed(ConnectionError):
    """The other end closed the connection (or it broke)."""


class PacketStream:
    def __init__(self, stream: trio.abc.Stream, max_payload: int = 1 << 30) -> None:
        self.stream = stream
        self.reader = PacketReader(max_payload)
        # The socket's descriptor for direct non-blocking I/O; -1 for other streams.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._budget = _FAIRNESS_BUDGET

    async def read_packet(self) -> Packet:
        reader = self.reader
        packet = reader.next_packet()
        while packet is None:
            reader.feed(await self._receive())
            packet = reader.next_packet()
        return packet

    async def receive_more(self) -> None:
        """Waits for the peer's next bytes and buffers them in `reader`."""
        self.reader.feed(await self._receive())

    async def receive_some(self) -> bytes:
        """Buffered bytes first, then whatever the peer sends next."""
        if self.reader.buffered:
            return self.reader.take_buffered()
        return await self._receive()

    async def _receive(self) -> bytes:
        fd = self._fd
        if fd < 0:
            return await self._receive_stream()
        while True:
            try:
                data = os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                self._budget = _FAIRNESS_BUDGET
                await trio.lowlevel.wait_readable(fd)
                continue
            except OSError as exc:
                raise PeerClosed(str(exc)) from exc
            if not data:
                raise PeerClosed("connection closed by peer")
            self._budget -= 1
            if self._budget <= 0:
                await self._yield()
            return data

    async def receive_exactly(self, count: int) -> bytes:
        """Exactly `count` bytes from the connection itself, none read ahead (the
        buffer must be empty)."""
        assert not self.reader.buffered
        data = bytearray()
        while len(data) < count:
            data += await self._receive_stream(count - len(data))
        return bytes(data)

    async def _receive_stream(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        try:
            data = await self.stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise PeerClosed(str(exc)) from exc
        if not data:
            raise PeerClosed("connection closed by peer")
        return data

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._fd
        if fd < 0:
            await self._send_stream(data)
            return
        view = memoryview(data)
        total = len(view)
        sent = 0
        while sent < total:
            try:
                sent += os.write(fd, view[sent:] if sent else view)
            except BlockingIOError:
                self._budget = _FAIRNESS_BUDGET
                await trio.lowlevel.wait_writable(fd)
            except OSError as exc:
                raise PeerClosed(str(exc)) from exc
        self._budget -= 1
        if self._budget <= 0:
            await self._yield()

    async def _send_stream(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise PeerClosed(str(exc)) from exc

    async def _yield(self) -> None:
        """After many reads/writes that did not wait: a peer that never lets us wait (a
        flood of pipelined commands) still lets other sessions run, and cancellation in."""
        self._budget = _FAIRNESS_BUDGET
        await trio.lowlevel.checkpoint()

    async def linger_and_close(self, timeout: float = 1.0) -> None:
        """Close after an error reply: stop sending, then read and drop what the peer is
        still sending for a while, so that closing with unread input (which makes the
        kernel send a reset) cannot destroy the reply before the peer reads it."""
        with (
            trio.move_on_after(timeout),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError),
        ):
            if isinstance(self.stream, trio.abc.HalfCloseableStream):
                await self.stream.send_eof()
            while await self.stream.receive_some(RECEIVE_SIZE):
                pass
        await self.aclose()

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
