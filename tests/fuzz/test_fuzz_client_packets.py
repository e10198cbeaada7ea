"""Malformed packets from clients, before, during and after authentication, against a proxy
in front of real MariaDB: the bad session gets an ERR or is closed, promptly; the proxy
lives on and a session opened before the fuzzing keeps working."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pymysql
import pytest
from fuzz_proxies import CASE_TIMEOUT, MAX_PACKET
from fuzz_wire import (
    COM_QUIT,
    drain_until_closed,
    err_code,
    frame,
    greeting_caps,
    handshake_response,
    login,
    read_packet,
    send_quietly,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.managed_mariadb import MariaDBServer
from wsrepctl.service_process import ServiceProcess

pytestmark = pytest.mark.mariadb

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Commands that would touch other sessions or the server as a whole are left out even though
# the fuzz account may not run them: COM_SHUTDOWN, COM_PROCESS_KILL, COM_QUIT (which is a
# clean close, not bad input).
SAFE_COMMANDS = st.integers(0, 255).filter(lambda c: c not in (0x08, 0x0C, COM_QUIT))


@pytest.fixture
def witness(proxy_to_mariadb: ServiceProcess) -> Iterator[pymysql.connections.Connection]:
    """A session through the proxy, opened before the fuzzing and checked after each case."""
    conn = pymysql.connect(
        host=proxy_to_mariadb.host, port=proxy_to_mariadb.port, user="root", password="",
        read_timeout=10, write_timeout=10,
    )  # fmt: skip
    with conn.cursor() as cur:
        cur.execute("SET @witness = 'still here'")
    yield conn
    conn.close()


def _still_fine(proxy: ServiceProcess, witness: pymysql.connections.Connection) -> None:
    assert proxy.alive, proxy.tail()
    with witness.cursor() as cur:
        cur.execute("SELECT @witness")
        assert cur.fetchone() == ("still here",)


def _connect(proxy: ServiceProcess) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=10)


def _bad_session_ends(sock: socket.socket) -> bytes:
    """We are done sending: whatever the proxy answers, it must then close the session."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # already reset by the proxy
        return b""
    return drain_until_closed(sock, CASE_TIMEOUT)


# Raw bytes with no regard for framing, and well-framed packets with random contents.
raw_bytes = st.binary(min_size=1, max_size=300)
framed = st.builds(frame, st.binary(max_size=300), st.integers(0, 255))
truncated = st.builds(
    lambda length, body: struct.pack("<I", length)[:3] + b"\x01" + body[: max(0, length - 1)],
    st.integers(1, MAX_PACKET),
    st.binary(max_size=200),
)
garbage = st.one_of(raw_bytes, framed, truncated)


@FUZZ
@given(data=garbage)
def test_before_handshake(
    proxy_to_mariadb: ServiceProcess, witness: pymysql.connections.Connection, data: bytes
) -> None:
    with _connect(proxy_to_mariadb) as sock:
        send_quietly(sock, data)
        _bad_session_ends(sock)
    _still_fine(proxy_to_mariadb, witness)


def _mangled_response(user: bytes, caps: int, cut: int, flip: int, byte: int) -> bytes:
    body = bytearray(handshake_response(user, caps))
    body[flip % len(body)] = byte
    return bytes(body[: cut % (len(body) + 1)])


@FUZZ
@given(
    reply=st.one_of(
        st.binary(max_size=400).map(lambda b: ("payload", b)),
        st.tuples(st.integers(0, 200), st.integers(0, 200), st.integers(0, 255)).map(
            lambda t: ("mangled", t)
        ),
    )
)
def test_during_authentication(
    proxy_to_mariadb: ServiceProcess,
    witness: pymysql.connections.Connection,
    fuzz_user: bytes,
    reply: tuple[str, object],
) -> None:
    with _connect(proxy_to_mariadb) as sock:
        seq, greeting = read_packet(sock)
        kind, value = reply
        if kind == "payload":
            payload = value
        else:
            cut, flip, byte = value  # type: ignore[misc]
            payload = _mangled_response(fuzz_user, greeting_caps(greeting), cut, flip, byte)
        send_quietly(sock, frame(payload, seq + 1))  # type: ignore[arg-type]
        _bad_session_ends(sock)
    _still_fine(proxy_to_mariadb, witness)


@FUZZ
@given(
    packets=st.lists(
        st.one_of(
            st.builds(
                lambda c, p: frame(bytes((c,)) + p, 0), SAFE_COMMANDS, st.binary(max_size=200)
            ),
            framed,
            truncated,
            raw_bytes,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_after_authentication(
    proxy_to_mariadb: ServiceProcess,
    witness: pymysql.connections.Connection,
    fuzz_user: bytes,
    packets: list[bytes],
) -> None:
    with _connect(proxy_to_mariadb) as sock:
        login(sock, fuzz_user)
        for packet in packets:
            if not send_quietly(sock, packet):
                break
        _bad_session_ends(sock)
    _still_fine(proxy_to_mariadb, witness)


@pytest.mark.parametrize("phase", ["before-auth", "after-auth"])
def test_oversized_packet_gets_an_error(
    proxy_to_mariadb: ServiceProcess,
    witness: pymysql.connections.Connection,
    fuzz_user: bytes,
    phase: str,
) -> None:
    """A header announcing more than the proxy's packet limit is refused at once with an ERR,
    without the proxy waiting for (or buffering) the body: 1153 (ER_NET_PACKET_TOO_LARGE),
    or before authentication 1835 (malformed packet: no handshake response is that big)."""
    with _connect(proxy_to_mariadb) as sock:
        if phase == "after-auth":
            login(sock, fuzz_user)
        else:
            read_packet(sock)
        sock.sendall(struct.pack("<I", MAX_PACKET + 1)[:3] + b"\x01" + b"\x03SELECT")
        _, payload = read_packet(sock, CASE_TIMEOUT)
        expected = {1153} if phase == "after-auth" else {1153, 1835}
        assert err_code(payload) in expected, payload
        assert drain_until_closed(sock, CASE_TIMEOUT) == b""
    _still_fine(proxy_to_mariadb, witness)


def test_silent_client_is_dropped_after_handshake_timeout(
    proxy_to_mariadb: ServiceProcess, witness: pymysql.connections.Connection
) -> None:
    with _connect(proxy_to_mariadb) as sock:
        read_packet(sock)
        drain_until_closed(sock, CASE_TIMEOUT)  # raises if the proxy never closes
    _still_fine(proxy_to_mariadb, witness)


def test_no_backend_session_leaks(
    proxy_to_mariadb: ServiceProcess, mariadb: MariaDBServer, fuzz_user: bytes
) -> None:
    """Sessions the fuzzing broke leave no backend connection behind."""
    with _connect(proxy_to_mariadb) as sock:
        login(sock, fuzz_user)
        send_quietly(sock, b"\x05\x00\x00\x00\x03SEL")  # truncated COM_QUERY, then EOF
        _bad_session_ends(sock)
    deadline = time.monotonic() + CASE_TIMEOUT
    with mariadb.connect() as conn, conn.cursor() as cur:
        while True:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'fuzz'")
            (left,) = cur.fetchone()
            if left == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert left == 0
