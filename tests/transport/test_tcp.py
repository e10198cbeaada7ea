"""The trio TCP transport between real sockets on loopback."""

from __future__ import annotations

import logging
import struct
import uuid

import pytest
import trio

from tests.transport.conftest import free_address, running_transport, wait_until
from wsrep.group.types import MemberInfo
from wsrep.transport.connection import PeerConnection
from wsrep.transport.frames import MAGIC, FrameKind, encode_frame
from wsrep.transport.handshake import Role


async def test_members_dialing_each_other_keep_one_connection_and_exchange_messages() -> None:
    a_addr, b_addr = free_address(), free_address()
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "a", a_addr, seeds=(a_addr, b_addr)) as a,
        running_transport(nursery, "b", b_addr, seeds=(a_addr, b_addr)) as b,
    ):
        await wait_until(lambda: a.transport.connected == {"b"} and b.transport.connected == {"a"})
        await trio.sleep(0.3)  # let duplicate dials settle
        assert a.recorder.up == ["b"] and b.recorder.up == ["a"]
        assert a.recorder.down == [] and b.recorder.down == []
        for i in range(100):
            assert a.transport.send("b", b"a%d" % i)
            assert b.transport.send("a", b"b%d" % i)
        await wait_until(lambda: len(a.recorder.messages) == len(b.recorder.messages) == 100)
        assert b.recorder.messages == [("a", b"a%d" % i) for i in range(100)]
        assert a.recorder.messages == [("b", b"b%d" % i) for i in range(100)]
        assert not a.transport.send("nobody", b"x")


async def test_a_restarted_peer_is_reconnected() -> None:
    a_addr, b_addr = free_address(), free_address()
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "a", a_addr, seeds=(b_addr,)) as a,
    ):
        async with running_transport(nursery, "b", b_addr) as b:
            await wait_until(lambda: a.transport.connected == {"b"})
            b.scope.cancel()
        await wait_until(lambda: a.recorder.down == ["b"])
        async with running_transport(nursery, "b", b_addr) as b2:
            await wait_until(lambda: a.transport.connected == {"b"})
            assert a.transport.send("b", b"again")
            await wait_until(lambda: b2.recorder.messages == [("a", b"again")])
        assert a.recorder.up == ["b", "b"]


async def test_view_addresses_are_dialed_and_our_own_seed_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wsrep.transport")
    addrs = [free_address() for _ in range(3)]
    own_alias = "localhost:" + addrs[0].split(":")[1]
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "m0", addrs[0], seeds=(own_alias,)) as m0,
        running_transport(nursery, "m1", addrs[1], seeds=(addrs[0],)) as m1,
        running_transport(nursery, "m2", addrs[2], seeds=(addrs[0],)) as m2,
    ):
        await wait_until(lambda: m0.transport.connected == {"m1", "m2"})
        m1.transport.set_view_addresses(frozenset(addrs))
        await wait_until(lambda: m2.transport.connected == {"m0", "m1"})
        assert m1.transport.connected == {"m0", "m2"}
        assert "m0" not in m0.recorder.up
        await wait_until(lambda: f"{own_alias} is our own address" in caplog.text)


async def raw_exchange(address: str, data: bytes, timeout: float = 3.0) -> bytes:
    """Send `data` as a stranger, return what came back until the member closed."""
    host, port = address.split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    received = b""
    with trio.fail_after(timeout):
        async with stream:
            if data:
                await stream.send_all(data)
                await stream.send_eof()
            while chunk := await stream.receive_some(65536):
                received += chunk
    return received


def hello(
    secret: bytes, name: str = "stranger", cluster: uuid.UUID | None = None
) -> PeerConnection:
    return PeerConnection(Role.DIALER, secret, MemberInfo(name, "127.0.0.1:1"), cluster, 1000)


async def handshake_as(address: str, conn: PeerConnection) -> list[object]:
    """Run a dialer handshake by hand over a raw socket; the events it got."""
    host, port = address.split(":")
    events: list[object] = []
    with trio.fail_after(3):
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            while conn.failed is None and not conn.established:
                await stream.send_all(conn.data_to_send())
                events += conn.receive_data(await stream.receive_some(65536))
            if conn.established:
                await stream.send_all(conn.data_to_send())
                conn.send(b"injected message")
                await stream.send_all(conn.data_to_send())
                events += conn.receive_data(await stream.receive_some(65536))
    return events


async def test_bad_input_is_refused_and_the_member_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wsrep.transport")
    cluster = uuid.uuid4()
    a_addr, b_addr = free_address(), free_address()
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "a", a_addr, seeds=(b_addr,), cluster=cluster) as a,
        running_transport(nursery, "b", b_addr, cluster=cluster, handshake_timeout=0.5) as b,
    ):
        await wait_until(lambda: a.transport.connected == {"b"})
        attacks = [
            b"GET / HTTP/1.0\r\n\r\n",
            bytes(range(256)) * 10,
            struct.pack(">HBBI", MAGIC, FrameKind.HELLO, 0, 2 << 30),  # claims 2 GiB
            encode_frame(FrameKind.HELLO, b'{"proto": 1, "nonce": "00"}')[:-3],  # truncated
            encode_frame(FrameKind.DATA, b"\0" * 40),  # data before any handshake
            b"",  # says nothing: the handshake times out
        ]
        for attack in attacks:
            await raw_exchange(b_addr, attack)
        from_stranger = await handshake_as(b_addr, hello(b"wrong secret"))
        assert "does not know the cluster secret" in str(from_stranger)
        from_other_cluster = await handshake_as(
            b_addr, hello(b"test cluster secret", "x", uuid.uuid4())
        )
        assert "belongs to cluster" in str(from_other_cluster)
        assert b.recorder.up == ["a"] and b.recorder.messages == []
        assert b.transport.stats.connections_refused == len(attacks) + 2
        assert a.transport.send("b", b"still here")
        await wait_until(lambda: b.recorder.messages == [("a", b"still here")])
    refusals = [r.getMessage() for r in caplog.records if "closing connection" in r.getMessage()]
    assert any("exceeds the limit" in m for m in refusals)
    assert any("bad frame magic" in m for m in refusals)
    assert any("stream ended inside a frame" in m for m in refusals)
    assert any("timed out" in r.getMessage() for r in caplog.records)


async def test_a_peer_that_does_not_read_is_dropped_not_buffered_without_bound() -> None:
    a_addr, b_addr = free_address(), free_address()
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "a", a_addr, seeds=(b_addr,), send_buffer_limit=1 << 20) as a,
        running_transport(nursery, "b", b_addr) as b,
    ):
        await wait_until(lambda: a.transport.connected == {"b"})
        for _ in range(2000):  # 2000 x 64 KiB, far beyond what the socket buffers hold
            a.transport.send("b", b"x" * (64 << 10))
        await wait_until(lambda: a.recorder.down == ["b"])
        assert len(b.recorder.messages) < 2000
