"""PacketStream's direct socket I/O: nothing lost between packet and chunk reads, and a
peer flooding pipelined data cannot starve other tasks."""

from __future__ import annotations

import trio

from proxy.packet_stream import PacketStream, PeerClosed
from proxy.protocol.wire import frame


async def _socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    return client, server


async def test_packets_then_chunks_then_eof() -> None:
    left, right = await _socket_pair()
    stream = PacketStream(right)
    await left.send_all(frame(b"one", 0) + frame(b"two", 1) + b"raw-tail")
    assert (await stream.read_packet()).payload == b"one"
    assert (await stream.read_packet()).payload == b"two"
    assert await stream.receive_some() == b"raw-tail"  # buffered bytes come out first
    received = 0

    async def drain() -> None:
        nonlocal received
        while received < 3_000_000:
            received += len(await left.receive_some(1 << 20))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await stream.send(b"x" * 3_000_000)  # more than the socket buffers: waits, resumes
    assert received == 3_000_000
    await left.aclose()
    try:
        await stream.receive_some()
        raise AssertionError("no PeerClosed after the peer closed")
    except PeerClosed:
        pass
    await stream.aclose()


async def test_io_that_never_waits_still_lets_other_tasks_run() -> None:
    left, right = await _socket_pair()
    stream = PacketStream(right)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.sleep(0)
        ticks = 0
        for _ in range(1000):  # small writes: the socket buffer never fills
            await stream.send(b"x")
        sends_ticks = ticks
        flood = b"".join(frame(b"\x0e" * 100, 0) for _ in range(20000))
        nursery.start_soon(left.send_all, flood)
        ticks = 0
        for _ in range(20000):  # 2 MB of pipelined commands, read in many chunks
            await stream.read_packet()
        nursery.cancel_scope.cancel()
    assert sends_ticks > 0 and ticks > 0
    await left.aclose()
    await stream.aclose()
