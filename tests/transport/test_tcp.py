"""The trio TCP transport between real sockets on loopback."""

from __future__ import annotations

import logging
import random
import uuid

import pytest
import trio

from tests.transport.attacks import attacks, handshake_as, raw_exchange, stranger
from tests.transport.conftest import SECRET, free_address, running_transport, wait_until


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


async def test_messages_larger_than_the_socket_buffers_arrive_whole_and_in_order() -> None:
    """Bursts of sends far beyond what the socket holds, the writer task running now and
    then: every message arrives whole, once, in order."""
    a_addr, b_addr = free_address(), free_address()
    rng = random.Random(3)
    sent = [bytes([i % 251]) * rng.randint(1, 300 << 10) for i in range(120)]
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "a", a_addr, seeds=(b_addr,)) as a,
        running_transport(nursery, "b", b_addr) as b,
    ):
        await wait_until(lambda: a.transport.connected == {"b"})
        for i, message in enumerate(sent):
            assert a.transport.send("b", message)
            if i % 7 == 0:
                await trio.sleep(0)  # let the writer run now and then
        await wait_until(lambda: len(b.recorder.messages) == len(sent), timeout=30)
        assert [m for _, m in b.recorder.messages] == sent


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
        await wait_until(
            lambda: (
                m2.transport.connected == {"m0", "m1"} and m1.transport.connected == {"m0", "m2"}
            )
        )
        assert "m0" not in m0.recorder.up
        await wait_until(lambda: f"{own_alias} is our own address" in caplog.text)


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
        for data, _ in attacks.values():
            await raw_exchange(b_addr, data)
        from_stranger = await handshake_as(b_addr, stranger(b"wrong secret"))
        assert "does not know the cluster secret" in str(from_stranger)
        from_other_cluster = await handshake_as(b_addr, stranger(SECRET, "x", uuid.uuid4()))
        assert "belongs to cluster" in str(from_other_cluster)
        assert b.recorder.up == ["a"] and b.recorder.messages == []
        assert b.transport.stats.connections_refused == len(attacks) + 2
        assert a.transport.send("b", b"still here")
        await wait_until(lambda: b.recorder.messages == [("a", b"still here")])
    for _, says in attacks.values():
        assert says in caplog.text


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


async def test_a_flood_of_silent_connections_is_capped_and_members_still_connect() -> None:
    a_addr, b_addr = free_address(), free_address()
    host, port = b_addr.split(":")
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "b", b_addr, max_handshaking=4, handshake_timeout=1.0) as b,
    ):
        silent = [await trio.open_tcp_stream(host, int(port)) for _ in range(20)]
        await wait_until(lambda: b.transport.stats.connections_refused >= 16)
        for stream in silent:
            await stream.aclose()
        async with running_transport(nursery, "a", a_addr, seeds=(b_addr,)) as a:
            await wait_until(lambda: a.transport.connected == {"b"})
            assert a.transport.send("b", b"through")
            await wait_until(lambda: b.recorder.messages == [("a", b"through")])


async def test_a_repeated_refusal_is_counted_each_time_but_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wsrep.transport")
    address = free_address()
    async with (
        trio.open_nursery() as nursery,
        running_transport(nursery, "b", address) as b,
    ):
        for _ in range(3):
            await handshake_as(address, stranger(b"wrong secret"))
        await wait_until(lambda: b.transport.stats.connections_refused == 3)
    warnings = [r for r in caplog.records if "does not know the cluster secret" in r.message]
    assert len(warnings) == 1
