"""Segment framing: headers, records, and the scan that finds where a crash tore the file."""

from __future__ import annotations

import struct
import uuid

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsrep.gcache_segment import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    SegmentVersionError,
    decode_header,
    encode_header,
    encode_record,
    parse_segment_name,
    scan_records,
    segment_name,
)


def segment_bytes(bodies: list[bytes], first: int = 5) -> bytes:
    return encode_header(None, first) + b"".join(
        encode_record(first + i, 10 + i, 1, body) for i, body in enumerate(bodies)
    )


def test_names_round_trip_and_strangers_are_none() -> None:
    assert parse_segment_name(segment_name(42)) == 42
    for name in ("seg-42.gcache", "seg-0000000000000000004x.gcache", "gcache.state", "x"):
        assert parse_segment_name(name) is None


def test_header_round_trip() -> None:
    u = uuid.uuid4()
    assert decode_header(encode_header(u, 7)) == (u, 7)
    assert decode_header(encode_header(None, 1)) == (None, 1)
    assert decode_header(encode_header(u, 7)[:-1]) == "header truncated at 39 bytes"
    assert decode_header(b"X" + encode_header(u, 7)[1:]) == "bad magic"


def test_unknown_version_raises() -> None:
    raw = HEADER.pack(MAGIC, 2, 0, bytes(16), 1)
    with pytest.raises(SegmentVersionError, match="version 2"):
        decode_header(raw + struct.pack("<I", crc32c.crc32c(raw)))


def test_clean_scan_finds_every_record() -> None:
    data = segment_bytes([b"a", b"", b"ccc"])
    scan = scan_records(data, HEADER_SIZE, 5, 0)
    assert scan.problem is None and scan.end == len(data)
    assert list(scan.seqnos) == [10, 11, 12] and len(scan.offsets) == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=8), st.data())
def test_a_cut_anywhere_keeps_exactly_the_whole_records(
    bodies: list[bytes], data: st.DataObject
) -> None:
    raw = segment_bytes(bodies)
    cut = data.draw(st.integers(HEADER_SIZE, len(raw)))
    scan = scan_records(raw[:cut], HEADER_SIZE, 5, 0)
    whole = list(scan_records(raw, HEADER_SIZE, 5, 0).offsets)
    ends = [*whole[1:], len(raw)]
    complete = sum(1 for e in ends if e <= cut)
    assert len(scan.offsets) == complete
    assert scan.end == (ends[complete - 1] if complete else HEADER_SIZE)
    assert (scan.problem is None) == (scan.end == cut)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=8), st.data())
def test_a_damaged_byte_stops_the_scan_before_its_record(
    bodies: list[bytes], data: st.DataObject
) -> None:
    raw = bytearray(segment_bytes(bodies))
    pos = data.draw(st.integers(HEADER_SIZE, len(raw) - 1))
    raw[pos] ^= data.draw(st.integers(1, 255))
    offsets = list(scan_records(segment_bytes(bodies), HEADER_SIZE, 5, 0).offsets)
    damaged_record = max(i for i, off in enumerate(offsets) if off <= pos)
    scan = scan_records(bytes(raw), HEADER_SIZE, 5, 0)
    assert list(scan.offsets) == offsets[:damaged_record]
    assert scan.problem is not None


def test_records_out_of_sequence_stop_the_scan() -> None:
    data = encode_header(None, 1) + encode_record(1, 1, 1, b"a") + encode_record(3, 2, 1, b"b")
    scan = scan_records(data, HEADER_SIZE, 1, 0)
    assert len(scan.offsets) == 1 and "out of sequence" in (scan.problem or "")
    data = encode_header(None, 1) + encode_record(1, 5, 1, b"a") + encode_record(2, 4, 1, b"b")
    assert len(scan_records(data, HEADER_SIZE, 1, 0).offsets) == 1  # seqno went back
    data = encode_header(None, 1) + encode_record(1, 1, 9, b"a")
    assert scan_records(data, HEADER_SIZE, 1, 0).problem  # unknown kind


def test_a_huge_length_claim_is_a_truncation() -> None:
    record = bytearray(encode_record(1, 1, 1, b"abc"))
    record[4:8] = (2**32 - 1).to_bytes(4, "little")
    scan = scan_records(encode_header(None, 1) + bytes(record), HEADER_SIZE, 1, 0)
    assert not scan.offsets and "truncated record" in (scan.problem or "")
