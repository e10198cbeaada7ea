"""Just enough of the MySQL wire protocol, on blocking sockets with deadlines, to play
either end of a connection to the proxy: a client that logs in and then misbehaves, and a
backend that greets properly and then misbehaves."""

from __future__ import annotations

import socket
import struct
import time

# Capability bits (MySQL/MariaDB protocol docs).
LONG_PASSWORD = 1
CONNECT_WITH_DB = 1 << 3
PROTOCOL_41 = 1 << 9
TRANSACTIONS = 1 << 13
SECURE_CONNECTION = 1 << 15
MULTI_STATEMENTS = 1 << 16
MULTI_RESULTS = 1 << 17
PLUGIN_AUTH = 1 << 19
CLIENT_CAPS = (
    LONG_PASSWORD | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | MULTI_STATEMENTS
    | MULTI_RESULTS | PLUGIN_AUTH
)  # fmt: skip
SERVER_CAPS = CLIENT_CAPS | CONNECT_WITH_DB
NATIVE_PASSWORD = b"mysql_native_password"
OK_PACKET = b"\x00\x00\x00\x02\x00\x00\x00"  # no rows, no insert id, autocommit, no warnings

COM_QUIT = 0x01
COM_QUERY = 0x03
COM_PING = 0x0E


class PeerGone(ConnectionError):
    """The other end closed (EOF or reset)."""


def frame(payload: bytes, seq: int) -> bytes:
    """One protocol packet (payloads here stay under 16 MiB)."""
    return struct.pack("<I", len(payload))[:3] + bytes((seq & 0xFF,)) + payload


def read_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(n - len(buf))
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise PeerGone(str(exc)) from exc
        if not chunk:
            raise PeerGone(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_packet(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """(sequence id, payload); socket.timeout if nothing complete arrives in time."""
    deadline = time.monotonic() + timeout
    header = read_exact(sock, 4, deadline)
    length = int.from_bytes(header[:3], "little")
    return header[3], read_exact(sock, length, deadline)


def is_err(payload: bytes) -> bool:
    return payload[:1] == b"\xff"


def err_code(payload: bytes) -> int:
    assert is_err(payload), payload[:64]
    return int.from_bytes(payload[1:3], "little")


def drain_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the peer sends until it closes; fails (socket.timeout) if it never does."""
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"peer still sending after {timeout}s")


def send_quietly(sock: socket.socket, data: bytes, timeout: float = 5.0) -> bool:
    """Send what the peer will take; a peer that hangs up on bad input is fine."""
    sock.settimeout(timeout)
    try:
        sock.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        return False
    return True


# ------------------------------------------------------------------ client side


def handshake_response(user: bytes, server_caps: int) -> bytes:
    """HandshakeResponse41 with an empty password (empty mysql_native_password token)."""
    caps = CLIENT_CAPS & server_caps
    return (
        struct.pack("<IIB", caps, 1 << 24, 45)  # caps, max packet, utf8mb4_general_ci
        + bytes(23)
        + user + b"\0"
        + b"\0"  # auth response: length 0
        + NATIVE_PASSWORD + b"\0"
    )  # fmt: skip


def greeting_caps(payload: bytes) -> int:
    """Capability flags from a HandshakeV10 payload."""
    assert payload[0] == 10, f"not a v10 greeting: {payload[:32]!r}"
    pos = payload.index(b"\0", 1) + 1 + 4 + 8 + 1  # version, thread id, scramble 1, filler
    low = int.from_bytes(payload[pos : pos + 2], "little")
    high = int.from_bytes(payload[pos + 3 : pos + 5], "little")  # after the charset byte
    return low | high << 16


def login(sock: socket.socket, user: bytes, timeout: float = 10.0) -> None:
    """Connection phase as `user` with an empty password; raises unless it ends in OK."""
    seq, greeting = read_packet(sock, timeout)
    sock.sendall(frame(handshake_response(user, greeting_caps(greeting)), seq + 1))
    seq, reply = read_packet(sock, timeout)
    if reply[:1] == b"\xfe":  # auth switch: an empty password answers any plugin
        sock.sendall(frame(b"", seq + 1))
        seq, reply = read_packet(sock, timeout)
    assert reply[:1] == b"\x00", f"login failed: {reply[:200]!r}"


# ------------------------------------------------------------------ backend side


def greeting(thread_id: int) -> bytes:
    """A HandshakeV10 as a MariaDB would send it, mysql_native_password, 20-byte scramble."""
    scramble = b"0123456789abcdefghij"
    return (
        b"\x0a" + b"5.5.5-10.11.99-MariaDB-fuzzpeer\0"
        + struct.pack("<I", thread_id) + scramble[:8] + b"\0"
        + struct.pack("<H", SERVER_CAPS & 0xFFFF) + bytes((45,)) + struct.pack("<H", 2)
        + struct.pack("<H", SERVER_CAPS >> 16) + bytes((21,)) + bytes(10)
        + scramble[8:] + b"\0" + NATIVE_PASSWORD + b"\0"
    )  # fmt: skip


def _lenenc_str(value: bytes) -> bytes:
    assert len(value) < 251
    return bytes((len(value),)) + value


def one_value_result(value: bytes) -> bytes:
    """A text-protocol result set (classic EOF packets): one VARCHAR column, one row."""
    column = (
        _lenenc_str(b"def") + _lenenc_str(b"") * 3 + _lenenc_str(b"v") + _lenenc_str(b"")
        + b"\x0c" + struct.pack("<HIBHB", 45, 1024, 0xFD, 0, 0) + b"\0\0"
    )  # fmt: skip
    eof = b"\xfe\x00\x00\x02\x00"
    packets = [b"\x01", column, eof, _lenenc_str(value), eof]
    return b"".join(frame(p, seq) for seq, p in enumerate(packets, start=1))


def expect_command(backend: socket.socket, wanted: bytes, timeout: float = 10.0) -> None:
    """Backend side: read until the client's command `wanted` arrives. Queries the proxy
    sends on its own in between (e.g. reading the session's sql_mode) get a one-row
    result with an empty value, which is what a fresh MariaDB session would answer."""
    for _ in range(8):
        payload = read_packet(backend, timeout)[1]
        if payload == wanted:
            return
        assert payload[:1] == bytes((COM_QUERY,)), f"unexpected from the proxy: {payload[:100]!r}"
        backend.sendall(one_value_result(b""))
    raise AssertionError(f"{wanted!r} never came, only the proxy's own queries")
