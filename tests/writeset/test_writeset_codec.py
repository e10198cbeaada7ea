from __future__ import annotations

import struct
from collections.abc import Callable

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certification import Key, KeyKind, WriteSetLimits, WriteSetTooLarge, row_key, table_key
from wsrep.writeset import (
    MAGIC,
    WriteSet,
    WriteSetFlags,
    WriteSetFormatError,
    decode,
    encode,
)

no_deadline = settings(deadline=None)  # timing on a shared machine is no property

F = WriteSetFlags
names = st.text(min_size=1, max_size=6)
keys = st.one_of(
    st.builds(
        row_key,
        names,
        names,
        names,
        st.lists(st.none() | st.binary(max_size=8), min_size=1, max_size=3),
        st.sampled_from([KeyKind.EXCLUSIVE, KeyKind.SHARED]),
    ),
    st.builds(table_key, names, names),
)
flags = st.sampled_from(
    [F.COMMIT, F.ROLLBACK, F.COMMIT | F.ISOLATION, F.COMMIT | F.PA_UNSAFE, F(0)]
)
write_sets = st.builds(
    WriteSet,
    origin=st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) <= 255),
    trx_id=st.integers(0, 2**64 - 1),
    last_seen=st.integers(0, 2**63 - 1),
    keys=st.lists(keys, max_size=5).map(tuple),
    data=st.binary(max_size=200),
    flags=flags,
)


def sample(**changes: object) -> WriteSet:
    fields: dict[str, object] = {
        "origin": "node-1",
        "trx_id": 7,
        "last_seen": 42,
        "keys": (row_key("shop", "orders", "PRIMARY", [b"1"]), table_key("shop", "items")),
        "data": b"row images",
        "flags": F.COMMIT,
    }
    fields.update(changes)
    return WriteSet(**fields)  # type: ignore[arg-type]


def reseal(body: bytes) -> bytes:
    """Give arbitrary bytes a valid checksum, to reach the parser behind it."""
    return body + struct.pack(">I", crc32c.crc32c(body))


@no_deadline
@given(write_sets)
def test_decode_inverts_encode(ws: WriteSet) -> None:
    data = encode(ws)
    assert decode(data) == ws
    assert decode(bytearray(data)) == ws
    assert decode(memoryview(data)) == ws


@no_deadline
@given(write_sets, st.data())
def test_any_single_bit_flip_is_detected(ws: WriteSet, data: st.DataObject) -> None:
    wire = bytearray(encode(ws))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(WriteSetFormatError):
        decode(bytes(wire))


@no_deadline
@given(write_sets, st.data())
def test_truncation_is_detected(ws: WriteSet, data: st.DataObject) -> None:
    wire = encode(ws)
    with pytest.raises(WriteSetFormatError):
        decode(wire[: data.draw(st.integers(0, len(wire) - 1))])


@no_deadline
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_format_errors(data: bytes) -> None:
    with pytest.raises(WriteSetFormatError):
        decode(data)


@no_deadline
@given(st.sampled_from([0, 1, 2, 4, 8, 15]), st.binary(max_size=120))
def test_checksummed_garbage_behind_a_valid_header_is_refused_or_exact(
    flag_bits: int, tail: bytes
) -> None:
    """Past the crc: the parser itself only ever raises WriteSetFormatError, and whatever
    it accepts re-encodes to the very same bytes (one encoding per write set)."""
    wire = reseal(struct.pack(">4sBBQQ", MAGIC, 1, flag_bits, 3, 5) + tail)
    try:
        ws = decode(wire)
    except WriteSetFormatError:
        return
    assert encode(ws) == wire


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b"XSET" + b[4:], "not a write set"),
        (lambda b: b[:4] + b"\x02" + b[5:], "unsupported write-set version 2"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),
        (lambda b: b[:20], "truncated"),
        (lambda b: reseal(b[:5] + b"\x40" + b[6:-4]), "unknown write-set flags 0x40"),
        (lambda b: reseal(b[:5] + b"\x03" + b[6:-4]), "both commit and roll back"),
        (lambda b: reseal(b[:14] + b"\xff" + b[15:-4]), "last_seen"),
        (lambda b: reseal(b[:22] + b"\x00" + b[23:-4]), "origin id length 0"),
        (lambda b: reseal(b[:-4] + b"extra"), "data length"),
        (lambda b: reseal(b[:-5]), "data length"),
    ],
)
def test_malformed_write_sets_say_what_is_wrong(
    mangle: Callable[[bytes], bytes], message: str
) -> None:
    with pytest.raises(WriteSetFormatError, match=message):
        decode(mangle(encode(sample())))


def test_bad_keys_inside_are_format_errors() -> None:
    ws = sample(keys=(row_key("s", "t", "PRIMARY", [b"1"]),))
    wire = encode(ws)
    kind_at = wire.index(b"\x01s\x01t") - 2  # kind byte, then the ident's length
    with pytest.raises(WriteSetFormatError, match="unknown key kind"):
        decode(reseal(wire[:kind_at] + b"\x09" + wire[kind_at + 1 : -4]))


def test_oversize_input_is_refused_before_parsing() -> None:
    wire = encode(sample(data=b"x" * 1000))
    assert decode(wire, max_size=len(wire)) == sample(data=b"x" * 1000)
    with pytest.raises(WriteSetFormatError, match="exceeds the limit"):
        decode(wire, max_size=len(wire) - 1)


def test_byte_limit_is_enforced_before_replication() -> None:
    ws = sample(data=b"x" * 1000)
    size = len(encode(ws))
    assert encode(ws, WriteSetLimits(max_bytes=size)) == encode(ws)
    with pytest.raises(WriteSetTooLarge, match=f"{size} bytes"):
        encode(ws, WriteSetLimits(max_bytes=size - 1))


@pytest.mark.parametrize(
    "changes",
    [
        {"trx_id": -1},
        {"trx_id": 2**64},
        {"last_seen": -1},
        {"last_seen": 2**63},
        {"origin": ""},
        {"origin": "x" * 256},
        {"flags": F.COMMIT | F.ROLLBACK},
        {"flags": 0x40},
    ],
)
def test_write_sets_that_could_not_be_encoded_are_refused_when_built(
    changes: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        sample(**changes)


def test_certification_request_carries_the_delivered_seqno() -> None:
    ws = sample()
    request = ws.certification_request(99)
    assert (request.seqno, request.last_seen, request.keys) == (99, 42, ws.keys)


def test_describe_for_logs() -> None:
    assert sample(flags=F.COMMIT | F.ISOLATION).describe() == (
        "trx 7 from node-1 (last_seen 42, 2 keys, 10 bytes, COMMIT|ISOLATION)"
    )


def test_keys_survive_as_equal_keys() -> None:
    key: Key = decode(encode(sample())).keys[0]
    assert key.conflicts_with(row_key("shop", "orders", "primary", [b"1"]))
