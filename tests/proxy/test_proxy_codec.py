"""Codec unit and property tests: primitives, framing, handshake packets, replies."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.protocol.constants import MAX_FRAME, Capability, FieldType
from proxy.protocol.handshake import Greeting, HandshakeResponse
from proxy.protocol.packet_reader import PacketReader, PacketTooLarge
from proxy.protocol.results import (
    Column,
    ErrPacket,
    OkPacket,
    encode_text_row,
    parse_text_row,
)
from proxy.protocol.wire import (
    ProtocolError,
    frame,
    lenenc_int,
    read_lenenc_bytes,
    read_lenenc_int,
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (any order, duplicates and out-of-range ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_lenenc_int_round_trip(value: int) -> None:
    encoded = lenenc_int(value)
    assert read_lenenc_int(encoded + b"tail", 0) == (value, len(encoded))


@given(st.binary(max_size=300))
def test_lenenc_bytes_round_trip_and_truncation(value: bytes) -> None:
    encoded = lenenc_int(len(value)) + value
    assert read_lenenc_bytes(encoded, 0) == (value, len(encoded))
    if value:
        with pytest.raises(ProtocolError):
            read_lenenc_bytes(encoded[:-1], 0)


def test_lenenc_rejects_0xff_and_reads_null() -> None:
    with pytest.raises(ProtocolError):
        read_lenenc_int(b"\xff", 0)
    assert read_lenenc_bytes(b"\xfb", 0) == (None, 1)


@given(
    st.lists(st.binary(max_size=600), min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=6000), max_size=12),
)
def test_packet_reader_reassembles_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(frame(p, i) for i, p in enumerate(payloads))
    reader = PacketReader()
    got = []
    for chunk in chunked(wire, cuts):
        reader.feed(chunk)
        while (packet := reader.next_packet()) is not None:
            got.append(packet)
    assert [p.payload for p in got] == payloads
    assert [p.seq for p in got] == list(range(len(payloads)))
    assert b"".join(p.raw for p in got) == wire
    assert reader.buffered == 0


def test_split_packet_frames_and_reassembly() -> None:
    payload = (bytes(range(256)) * (MAX_FRAME // 128 + 2))[: MAX_FRAME * 2 + 5]  # 3 frames
    wire = frame(payload, 7)
    assert wire[:4] == b"\xff\xff\xff\x07"
    assert wire[MAX_FRAME + 4 : MAX_FRAME + 8] == b"\xff\xff\xff\x08"
    assert wire[2 * MAX_FRAME + 8 : 2 * MAX_FRAME + 12] == b"\x05\x00\x00\x09"
    reader = PacketReader()
    for pos in range(0, len(wire), 5_000_000):
        reader.feed(wire[pos : pos + 5_000_000])
    packet = reader.next_packet()
    assert packet is not None and packet.payload == payload and packet.seq == 7
    assert packet.last_seq == 9


def test_exact_multiple_of_frame_ends_with_empty_frame() -> None:
    wire = frame(b"x" * MAX_FRAME, 0)
    assert wire.endswith(b"\x00\x00\x00\x01")
    reader = PacketReader()
    reader.feed(wire)
    packet = reader.next_packet()
    assert packet is not None and len(packet.payload) == MAX_FRAME


def test_packet_reader_refuses_oversized_before_buffering_it() -> None:
    reader = PacketReader(max_payload=1000)
    reader.feed(frame(b"a" * 1000, 0)[:10])
    assert reader.next_packet() is None
    reader = PacketReader(max_payload=1000)
    reader.feed((1001).to_bytes(3, "little") + b"\x00" + b"a" * 10)
    with pytest.raises(PacketTooLarge):
        reader.next_packet()
    reader = PacketReader(max_payload=MAX_FRAME + 10)
    reader.feed(b"\xff\xff\xff\x00" + b"a" * MAX_FRAME + b"\xff\xff\xff\x01")
    with pytest.raises(PacketTooLarge):
        reader.next_packet()


# A MariaDB 10.11 greeting as sent on the wire (payload only).
GREETING = bytes.fromhex(
    "0a352e352e352d31302e31312e362d4d617269614442"
    "2d302b64656231327531000300000049353e5b2e6a2f5e00fef7"
    "2d0200ff8115000000000000"
    "1d000000"
    "2b5b6a61694d3d2c39546c7c00"
    "6d7973716c5f6e61746976655f70617373776f726400"
)


def test_greeting_parse_and_round_trip() -> None:
    greeting = Greeting.parse(GREETING)
    assert greeting.server_version.startswith(b"5.5.5-10.11")
    assert greeting.connection_id == 3
    assert len(greeting.auth_data) == 20
    assert greeting.auth_plugin == b"mysql_native_password"
    assert greeting.mariadb_capabilities == 0x1D
    assert not greeting.capabilities & Capability.MYSQL
    assert greeting.serialize() == GREETING


def test_greeting_for_clients_strips_and_adds() -> None:
    greeting = Greeting.parse(GREETING)
    shown = Greeting.parse(
        greeting.for_clients(Capability.COMPRESS | Capability.SSL, Capability.SSL).serialize()
    )
    assert shown.capabilities & Capability.SSL
    assert not shown.capabilities & Capability.COMPRESS
    assert shown.mariadb_capabilities == 0
    assert shown.auth_data == greeting.auth_data


@given(
    version=st.binary(max_size=40).filter(lambda b: b"\x00" not in b),
    conn_id=st.integers(0, (1 << 32) - 1),
    caps=st.integers(0, (1 << 32) - 1),
    ext=st.integers(0, (1 << 32) - 1),
    scramble=st.binary(min_size=20, max_size=20),
    plugin=st.binary(max_size=30).filter(lambda b: b"\x00" not in b),
    status=st.integers(0, 0xFFFF),
    charset=st.integers(0, 255),
)
def test_greeting_round_trip_property(
    version: bytes,
    conn_id: int,
    caps: int,
    ext: int,
    scramble: bytes,
    plugin: bytes,
    status: int,
    charset: int,
) -> None:
    caps |= Capability.PROTOCOL_41
    greeting = Greeting(
        version,
        conn_id,
        caps,
        charset,
        status,
        scramble,
        plugin if caps & Capability.PLUGIN_AUTH else b"",
        0 if caps & Capability.MYSQL else ext,
    )
    assert Greeting.parse(greeting.serialize()) == greeting


@given(st.binary(max_size=200))
def test_malformed_greeting_is_a_protocol_error(junk: bytes) -> None:
    with contextlib.suppress(ProtocolError):  # anything else (IndexError...) fails
        Greeting.parse(junk)


def _response(caps: int, user: bytes, auth: bytes, db: bytes | None, ext: int = 0) -> bytes:
    body = [
        caps.to_bytes(4, "little"),
        (1 << 24).to_bytes(4, "little"),
        b"\x2d",
        b"\x00" * 19,
        ext.to_bytes(4, "little"),
        user + b"\x00",
        lenenc_int(len(auth)) + auth,
    ]
    if db is not None:
        body.append(db + b"\x00")
    body.append(b"mysql_native_password\x00")
    return b"".join(body)


def test_handshake_response_parse_and_relay_rewrites_only_capabilities() -> None:
    caps = (
        Capability.PROTOCOL_41
        | Capability.SECURE_CONNECTION
        | Capability.PLUGIN_AUTH
        | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
        | Capability.CONNECT_WITH_DB
        | Capability.SSL
        | Capability.COMPRESS
    )
    raw = _response(caps, b"app", b"s" * 20, b"shop", ext=0x1F)
    response = HandshakeResponse.parse(raw)
    assert (response.user, response.database) == (b"app", b"shop")
    assert response.auth_plugin == b"mysql_native_password"
    assert not response.is_ssl_request
    relayed = response.relayed(Capability.SSL | Capability.COMPRESS)
    assert int.from_bytes(relayed[:4], "little") == caps & ~(Capability.SSL | Capability.COMPRESS)
    assert relayed[28:32] == b"\x00" * 4  # no MariaDB extended capabilities
    assert relayed[4:28] == raw[4:28] and relayed[32:] == raw[32:]
    assert HandshakeResponse.parse(raw[:32]).is_ssl_request


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 31,
        b"\x00" * 40,  # no PROTOCOL_41
        (Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION).to_bytes(4, "little")
        + b"\x00" * 28
        + b"user-without-terminator",
    ],
)
def test_malformed_handshake_response_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        HandshakeResponse.parse(payload)


@given(
    st.integers(0, (1 << 64) - 1),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=40),
)
def test_ok_packet_round_trip(
    affected: int, insert_id: int, status: int, warns: int, info: bytes
) -> None:
    ok = OkPacket(affected, insert_id, status, warns, info)
    assert OkPacket.parse(ok.encode()) == ok
    assert OkPacket.parse(ok.encode(0xFE)) == ok


@given(
    st.integers(0, 0xFFFF),
    st.text(alphabet="0123456789ABCDEFHY", min_size=5, max_size=5),
    st.text(max_size=80),
)
def test_err_packet_round_trip(code: int, state: str, message: str) -> None:
    err = ErrPacket(code, state, message)
    assert ErrPacket.parse(err.encode()) == err


def test_err_packet_without_sqlstate_marker() -> None:
    assert ErrPacket.parse(b"\xff\x15\x04Access denied") == ErrPacket(
        1045, "HY000", "Access denied"
    )


@given(st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=10))
def test_text_row_round_trip(row: list[bytes | None]) -> None:
    assert parse_text_row(encode_text_row(row), len(row)) == tuple(row)


def test_column_definition_round_trip() -> None:
    col = Column("Variable_name", FieldType.VAR_STRING, length=256, table="t", schema="s", flags=1)
    assert Column.parse(col.encode()) == col


@given(st.binary(max_size=120), st.integers(1, 4))
def test_parsers_reject_garbage_with_protocol_errors_only(junk: bytes, columns: int) -> None:
    with_caps = (Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION).to_bytes(4, "little")
    lenenc_caps = (
        Capability.PROTOCOL_41
        | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
        | Capability.CONNECT_WITH_DB
        | Capability.PLUGIN_AUTH
    ).to_bytes(4, "little")
    parsers = [
        lambda: HandshakeResponse.parse(junk),
        lambda: HandshakeResponse.parse(with_caps + b"\x00" * 28 + junk),
        lambda: HandshakeResponse.parse(lenenc_caps + b"\x00" * 28 + junk),
        lambda: OkPacket.parse(b"\x00" + junk),
        lambda: ErrPacket.parse(b"\xff" + junk),
        lambda: Column.parse(junk),
        lambda: parse_text_row(junk, columns),
    ]
    for parse in parsers:
        with contextlib.suppress(ProtocolError):
            parse()
