"""The clustercheck endpoint: the request reader alone, then the real server with
urllib, curl and garbage."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_testlib import synced_status

from proxy.health import (
    MAX_HEAD,
    NOT_SYNCED_BODY,
    SYNCED_BODY,
    BadRequest,
    HeadReader,
    answer,
    is_available,
    parse_head,
)
from wsrep.node_state import NodeState

Start = Callable[..., object]


def test_reader_waits_for_the_whole_head() -> None:
    reader = HeadReader()
    assert reader.feed(b"GET / HTTP/1.1\r\nHost: x") is None
    head = reader.feed(b"\r\nUser-Agent: haproxy\r\n\r\n")
    assert head is not None
    assert (head.method, head.target, head.version) == ("GET", "/", "HTTP/1.1")
    assert dict(head.headers) == {"host": "x", "user-agent": "haproxy"}


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n : x\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    ],
)
def test_malformed_heads_are_bad_requests(raw: bytes) -> None:
    with pytest.raises(BadRequest) as err:
        HeadReader().feed(raw)
    assert err.value.status == 400


def test_oversized_heads_are_refused_before_the_end() -> None:
    reader = HeadReader()
    with pytest.raises(BadRequest) as err:
        for _ in range(100):
            reader.feed(b"X-Pad: " + b"a" * 200 + b"\r\n")
    assert err.value.status == 431
    many = b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 100 + b"\r\n"
    with pytest.raises(BadRequest):
        HeadReader().feed(many)


@given(st.binary(max_size=MAX_HEAD + 100))
def test_any_bytes_give_a_head_none_or_bad_request(data: bytes) -> None:
    reader = HeadReader()
    try:
        reader.feed(data)
    except BadRequest as exc:
        assert exc.status in (400, 431)


@pytest.mark.parametrize(
    ("state", "donor_ok", "up"),
    [
        (NodeState.SYNCED, False, True),
        (NodeState.DONOR, False, False),
        (NodeState.DONOR, True, True),
        (NodeState.DESYNCED, True, True),
        (NodeState.JOINED, True, False),
        (NodeState.JOINER, True, False),
        (NodeState.OPEN, True, False),
        (NodeState.CLOSED, False, False),
    ],
)
def test_clustercheck_rule(state: NodeState, donor_ok: bool, up: bool) -> None:
    status = synced_status(state=state)
    assert is_available(status, donor_ok) is up
    reply = answer(parse_head(b"GET / HTTP/1.0"), status, donor_ok)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n" if up else b"HTTP/1.1 503 ")
    assert reply.endswith((SYNCED_BODY if up else NOT_SYNCED_BODY).encode())


def test_other_methods_and_head() -> None:
    assert answer(parse_head(b"POST / HTTP/1.1"), synced_status()).startswith(b"HTTP/1.1 405")
    head = answer(parse_head(b"HEAD / HTTP/1.1"), synced_status())
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")


def _get(port: int, path: str = "/") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_urllib_sees_200_then_503(health_port: Start, node_status: object) -> None:
    port = await health_port()  # type: ignore[misc]
    assert await trio.to_thread.run_sync(_get, port) == (200, SYNCED_BODY)
    node_status.status = synced_status(state=NodeState.DONOR)  # type: ignore[attr-defined]
    assert await trio.to_thread.run_sync(_get, port, "/any/path") == (503, NOT_SYNCED_BODY)


async def test_available_when_donor(health_port: Start, node_status: object) -> None:
    port = await health_port(available_when_donor=True)  # type: ignore[misc]
    node_status.status = synced_status(state=NodeState.DESYNCED)  # type: ignore[attr-defined]
    assert await trio.to_thread.run_sync(_get, port) == (200, SYNCED_BODY)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl_like_haproxy_check(health_port: Start, node_status: object) -> None:
    port = await health_port()  # type: ignore[misc]

    def curl() -> tuple[str, str]:
        out = subprocess.run(
            ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/"],
            capture_output=True, timeout=20, check=False,
        )  # fmt: skip
        body, _, code = out.stdout.decode().rpartition("\n")
        return code, body

    assert await trio.to_thread.run_sync(curl) == ("200", SYNCED_BODY)
    node_status.status = synced_status(state=NodeState.JOINER)  # type: ignore[attr-defined]
    assert await trio.to_thread.run_sync(curl) == ("503", NOT_SYNCED_BODY)


async def _exchange(port: int, data: bytes, *, close_write: bool = True) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        try:
            await stream.send_all(data)
            if close_write:
                await stream.send_eof()
        except trio.BrokenResourceError:
            pass
        out = b""
        with trio.fail_after(10):
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not chunk:
                    break
                out += chunk
        return out


async def test_server_survives_garbage_then_serves(health_port: Start) -> None:
    port = await health_port()  # type: ignore[misc]
    assert (await _exchange(port, b"\x00\xff garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
    assert (await _exchange(port, b"GET / HTTP/1.1\r\n")).startswith(b"HTTP/1.1 400")
    assert (await _exchange(port, b"A" * (MAX_HEAD * 4))).startswith(b"HTTP/1.1 431")
    assert (await _exchange(port, b"")).startswith(b"HTTP/1.1 400")  # closed at once
    assert (await _exchange(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200")


async def test_silent_client_is_dropped_after_the_read_timeout(health_port: Start) -> None:
    port = await health_port(read_timeout=0.5)  # type: ignore[misc]
    with trio.fail_after(10):
        assert await _exchange(port, b"GET", close_write=False) == b""
    assert (await _exchange(port, b"GET / HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 200")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2000))
def test_hypothesis_garbage_never_kills_the_server(data: bytes) -> None:
    async def main() -> None:
        from proxy.health import HealthConfig, serve_health

        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                serve_health, synced_status, HealthConfig(port=0, read_timeout=0.5)
            )
            reply = await _exchange(port, data)
            assert reply == b"" or reply.startswith(b"HTTP/1.1 ")
            ok = await _exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert ok.startswith(b"HTTP/1.1 200")
            nursery.cancel_scope.cancel()

    trio.run(main)


async def test_a_failing_snapshot_is_not_synced(health_port: Start, node_status: object) -> None:
    port = await health_port()  # type: ignore[misc]
    node_status.status = None  # type: ignore[attr-defined]  # a provider bug
    assert (await _exchange(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 503")
    node_status.status = synced_status()  # type: ignore[attr-defined]
    assert (await _exchange(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200")
