"""Bad input a member must survive: raw byte streams and handshakes by strangers."""

from __future__ import annotations

import os
import struct
import uuid

import trio

from wsrep.group.types import MemberInfo
from wsrep.transport.connection import ConnectionEvent, PeerConnection
from wsrep.transport.frames import MAGIC, FrameKind, encode_frame
from wsrep.transport.handshake import Role

# name -> (bytes sent then half-closed, what the member's log says about it)
attacks: dict[str, tuple[bytes, str]] = {
    "http request": (b"GET / HTTP/1.0\r\n\r\n", "bad frame magic"),
    "random bytes": (os.urandom(4096), "bad frame magic"),
    "frame claiming 2 GiB": (
        struct.pack(">HBBI", MAGIC, FrameKind.HELLO, 0, 2 << 30),
        "frame of 2147483648 bytes exceeds the limit",
    ),
    "truncated frame": (
        encode_frame(FrameKind.HELLO, b'{"proto": 1, "nonce": "00"}')[:-3],
        "stream ended inside a frame",
    ),
    "data before the handshake": (
        encode_frame(FrameKind.DATA, b"\0" * 40),
        "unexpected DATA frame during the handshake",
    ),
    "silence": (b"", "timed out"),
}


async def raw_exchange(address: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` (then half-close, unless empty), return what came back until closed."""
    host, port = address.split(":")
    received = b""
    with trio.fail_after(timeout):
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            if data:
                await stream.send_all(data)
                await stream.send_eof()
            while chunk := await stream.receive_some(65536):
                received += chunk
    return received


def stranger(
    secret: bytes, name: str = "stranger", cluster: uuid.UUID | None = None
) -> PeerConnection:
    return PeerConnection(Role.DIALER, secret, MemberInfo(name, "127.0.0.1:1"), cluster, 1000)


async def handshake_as(address: str, conn: PeerConnection) -> list[ConnectionEvent]:
    """Run a dialer handshake by hand; if let in, send a message. The events it got."""
    host, port = address.split(":")
    events: list[ConnectionEvent] = []
    with trio.fail_after(5):
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            while conn.failed is None and not conn.established:
                await stream.send_all(conn.data_to_send())
                events += conn.receive_data(await stream.receive_some(65536))
            if conn.established:
                conn.send(b"injected message")
                await stream.send_all(conn.data_to_send())
                events += conn.receive_data(await stream.receive_some(65536))
    return events
