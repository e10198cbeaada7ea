"""Malformed responses from the backend: the test plays the backend (a valid greeting, then
garbage, truncated or nonsensical packets, then it hangs up). The client of that session
gets an ERR or a closed connection, promptly; the proxy lives on; a session opened before
the fuzzing, on its own backend connection, keeps working."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import pytest
from fuzz_proxies import CASE_TIMEOUT
from fuzz_wire import (
    COM_PING,
    COM_QUERY,
    OK_PACKET,
    drain_until_closed,
    expect_command,
    frame,
    greeting,
    greeting_caps,
    handshake_response,
    is_err,
    read_packet,
    send_quietly,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsrepctl.service_process import ServiceProcess

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_thread_ids = count(100)


@dataclass
class Session:
    """One client connection through the proxy and the backend connection it caused."""

    client: socket.socket
    backend: socket.socket

    def close(self) -> None:
        self.client.close()
        self.backend.close()


def open_session(proxy: ServiceProcess, listener: socket.socket) -> Session:
    client = socket.create_connection((proxy.host, proxy.port), timeout=10)
    listener.settimeout(10)
    backend, _ = listener.accept()
    return Session(client, backend)


def greet_and_read_response(s: Session) -> int:
    """Backend greets, client answers; returns the sequence id the backend replies with."""
    s.backend.sendall(frame(greeting(next(_thread_ids)), 0))
    seq, shown = read_packet(s.client)
    s.client.sendall(frame(handshake_response(b"app", greeting_caps(shown)), seq + 1))
    seq, _ = read_packet(s.backend)
    return seq + 1


def log_in(s: Session) -> None:
    s.backend.sendall(frame(OK_PACKET, greet_and_read_response(s)))
    _, reply = read_packet(s.client)
    assert reply[:1] == b"\x00", reply


def ping(s: Session) -> None:
    s.client.sendall(frame(bytes((COM_PING,)), 0))
    expect_command(s.backend, bytes((COM_PING,)))
    s.backend.sendall(frame(OK_PACKET, 1))
    assert read_packet(s.client)[1][:1] == b"\x00"


@pytest.fixture
def witness(proxy_to_fake: ServiceProcess, fake_backend: socket.socket) -> Iterator[Session]:
    s = open_session(proxy_to_fake, fake_backend)
    log_in(s)
    yield s
    s.close()


def _client_session_ends(s: Session) -> bytes:
    """The backend hangs up: the proxy must end the client's session (ERR first or not),
    at the latest when the client sends its next command (garbage that happens to complete
    a response leaves the session idle, and an idle relay need not watch the backend).

    That command is a COM_PING followed by an empty packet: if the garbage was a LOCAL
    INFILE request (0xFB), the proxy is rightly waiting for the client's file, and the
    empty packet ends the file; otherwise the ping alone meets the dead backend."""
    s.backend.close()
    send_quietly(s.client, frame(bytes((COM_PING,)), 0) + frame(b"", 1))
    received = drain_until_closed(s.client, CASE_TIMEOUT)
    s.client.close()
    return received


def _still_fine(proxy: ServiceProcess, witness: Session) -> None:
    assert proxy.alive, proxy.tail()
    ping(witness)


def _packet(first: int, rest: bytes, seq: int) -> bytes:
    return frame(bytes((first,)) + rest, seq)


# What a confused or broken backend might send at any point.
responses = st.one_of(
    st.binary(min_size=1, max_size=300),  # no framing at all
    st.builds(frame, st.binary(max_size=300), st.integers(0, 255)),
    st.builds(  # a header promising more than follows
        lambda n, body: struct.pack("<I", n)[:3] + b"\x01" + body[: max(0, n - 1)],
        st.integers(1, 1 << 24 - 1),
        st.binary(max_size=200),
    ),
    st.builds(  # plausible first bytes (OK, EOF, ERR, NULL, column counts) with a bad rest
        _packet,
        st.sampled_from([0x00, 0xFE, 0xFF, 0xFB, 0xFC, 1, 2, 5]),
        st.binary(max_size=100),
        st.integers(0, 3),
    ),
)


@FUZZ
@given(garbage=responses)
def test_garbage_instead_of_greeting(
    proxy_to_fake: ServiceProcess, fake_backend: socket.socket, witness: Session, garbage: bytes
) -> None:
    s = open_session(proxy_to_fake, fake_backend)
    send_quietly(s.backend, garbage)
    _client_session_ends(s)
    _still_fine(proxy_to_fake, witness)


@FUZZ
@given(garbage=responses)
def test_garbage_instead_of_auth_result(
    proxy_to_fake: ServiceProcess, fake_backend: socket.socket, witness: Session, garbage: bytes
) -> None:
    s = open_session(proxy_to_fake, fake_backend)
    greet_and_read_response(s)
    send_quietly(s.backend, garbage)
    _client_session_ends(s)
    _still_fine(proxy_to_fake, witness)


@FUZZ
@given(garbage=st.lists(responses, min_size=1, max_size=3))
def test_garbage_instead_of_query_result(
    proxy_to_fake: ServiceProcess,
    fake_backend: socket.socket,
    witness: Session,
    garbage: list[bytes],
) -> None:
    s = open_session(proxy_to_fake, fake_backend)
    log_in(s)
    s.client.sendall(frame(bytes((COM_QUERY,)) + b"SELECT 1", 0))
    expect_command(s.backend, bytes((COM_QUERY,)) + b"SELECT 1")
    for chunk in garbage:
        send_quietly(s.backend, chunk)
    _client_session_ends(s)
    _still_fine(proxy_to_fake, witness)


def test_backend_dying_mid_query_gives_the_client_an_error(
    proxy_to_fake: ServiceProcess, fake_backend: socket.socket, witness: Session
) -> None:
    s = open_session(proxy_to_fake, fake_backend)
    log_in(s)
    s.client.sendall(frame(bytes((COM_QUERY,)) + b"SELECT 1", 0))
    expect_command(s.backend, bytes((COM_QUERY,)) + b"SELECT 1")
    s.backend.close()
    _, reply = read_packet(s.client, CASE_TIMEOUT)
    assert is_err(reply), reply
    assert drain_until_closed(s.client, CASE_TIMEOUT) == b""
    s.client.close()
    _still_fine(proxy_to_fake, witness)


def test_unsolicited_backend_bytes_are_not_the_next_answer(
    proxy_to_fake: ServiceProcess, fake_backend: socket.socket, witness: Session
) -> None:
    s = open_session(proxy_to_fake, fake_backend)
    log_in(s)
    s.client.sendall(frame(bytes((COM_QUERY,)) + b"DO 1", 0))
    expect_command(s.backend, bytes((COM_QUERY,)) + b"DO 1")
    # A complete answer (OK), then an unasked packet, then the backend hangs up.
    s.backend.sendall(frame(OK_PACKET, 1) + frame(b"\x00\x00\x00\x02\x00\x00\x00", 9))
    assert read_packet(s.client)[1][:1] == b"\x00"
    s.backend.close()
    s.client.sendall(frame(bytes((COM_PING,)), 0))
    # The backend is gone: an ERR (or a closed connection), not the stale packet as an OK.
    try:
        seq, reply = read_packet(s.client, CASE_TIMEOUT)
    except ConnectionError:
        reply = b""
    assert reply == b"" or is_err(reply), (seq, reply)
    s.client.close()
    _still_fine(proxy_to_fake, witness)
