"""TextResultReader (the proxy's own query results): the same results as the per-packet
reader it replaced, whatever the chunking; errors, LOCAL INFILE, split packets; malformed
replies end in ProtocolError only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.protocol_bench import per_packet_result
from proxy.protocol.constants import MAX_FRAME, FieldType
from proxy.protocol.packet_reader import PacketReader
from proxy.protocol.results import Column, ErrPacket, OkPacket, Row, text_result_set
from proxy.protocol.text_result import LocalInfileRequest, QueryResult, TextResultReader
from proxy.protocol.wire import ProtocolError, frame, lenenc_bytes

values = st.one_of(st.none(), st.binary(max_size=300))


def read_chunked(data: bytes, cuts: list[int], deprecate_eof: bool) -> tuple[object, PacketReader]:
    """Feeds `data` cut at `cuts`; the reader must answer None until the last chunk."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    packets = PacketReader()
    reader = TextResultReader(deprecate_eof)
    for chunk in chunks[:-1]:
        packets.feed(chunk)
        assert reader.read(packets) is None
    packets.feed(chunks[-1])
    return reader.read(packets), packets


def result_set(columns: list[Column], rows: list[Row], deprecate_eof: bool, flags: int) -> bytes:
    return text_result_set(columns, rows, deprecate_eof=deprecate_eof, status_flags=flags)


@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(st.tuples(*[values] * n), max_size=6).map(lambda rows: (n, rows))
    ),
    st.booleans(),
    st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 4000), max_size=8),
)
def test_same_result_as_the_per_packet_reader_in_any_chunking(
    shape: tuple[int, list[Row]], deprecate_eof: bool, flags: int, cuts: list[int]
) -> None:
    count, rows = shape
    columns = [Column(f"c{i}", FieldType.BLOB, table="t", schema="s") for i in range(count)]
    data = result_set(columns, rows, deprecate_eof, flags)
    outcome, packets = read_chunked(data, cuts, deprecate_eof)
    assert isinstance(outcome, QueryResult)
    assert outcome.rows == rows
    assert outcome.columns == tuple(columns)
    assert outcome.column_names == tuple(c.name for c in columns)
    assert outcome.status_flags == flags
    assert not packets.buffered
    reference = PacketReader()
    reference.feed(data)
    expected = per_packet_result(reference, deprecate_eof)
    assert isinstance(expected, QueryResult)
    assert (expected.rows, expected.column_defs, expected.status_flags) == (
        outcome.rows,
        outcome.column_defs,
        outcome.status_flags,
    )


@pytest.mark.parametrize("affected, insert_id", [(3, 77), (0xFB, 1 << 40), (0, 0xFFFF)])
def test_ok_and_what_follows_it_stays_buffered(affected: int, insert_id: int) -> None:
    ok = frame(OkPacket(affected, insert_id, 0x000A, 2).encode(), 1)
    rows = result_set([Column("a")], [(b"x",)], True, 0x0002)
    packets = PacketReader()
    packets.feed(ok + rows)
    outcome = TextResultReader(True).read(packets)
    assert isinstance(outcome, QueryResult)
    assert (outcome.affected_rows, outcome.last_insert_id) == (affected, insert_id)
    assert (outcome.status_flags, outcome.warnings) == (0x000A, 2)
    assert outcome.columns == () and outcome.rows == []
    assert packets.buffered == len(rows)
    second = TextResultReader(True).read(packets)
    assert isinstance(second, QueryResult) and second.rows == [(b"x",)]


@pytest.mark.parametrize("deprecate_eof", [True, False])
def test_error_first_or_after_rows_ends_the_result_right_after_it(deprecate_eof: bool) -> None:
    err = ErrPacket(1213, "40001", "Deadlock found")
    after = frame(OkPacket(0, 0, 2, 0).encode(), 1)
    rows = result_set([Column("a")], [(b"1",), (b"2",)], deprecate_eof, 0)
    mid = rows[: -(11 if deprecate_eof else 9)]  # without its terminating OK/EOF frame
    for data in (frame(err.encode(), 1), mid + frame(err.encode(), 9)):
        packets = PacketReader()
        packets.feed(data + after)
        assert TextResultReader(deprecate_eof).read(packets) == err
        assert packets.buffer == after


def test_local_infile_request_then_ok() -> None:
    packets = PacketReader()
    packets.feed(frame(b"\xfb/etc/passwd", 1))
    reader = TextResultReader(True)
    assert reader.read(packets) == LocalInfileRequest(2)
    packets.feed(frame(OkPacket(0, 0, 2, 0).encode(), 3))
    outcome = reader.read(packets)
    assert isinstance(outcome, QueryResult) and outcome.status_flags == 2


def test_rows_split_in_frames() -> None:
    big = b"v" * (MAX_FRAME + 10)
    rows: list[Row] = [(b"a", big), (None, b"b"), (big, None)]
    data = result_set([Column("x"), Column("y")], rows, True, 0x22)
    outcome, _ = read_chunked(data, [5, 1000, MAX_FRAME, MAX_FRAME + 3, len(data) - 7], True)
    assert isinstance(outcome, QueryResult)
    assert outcome.rows == rows and outcome.status_flags == 0x22


def test_column_definitions_are_parsed_on_first_use() -> None:
    data = frame(b"\x01", 1) + frame(b"\x03de", 2) + frame(b"\xfe\x00\x00\x02\x00\x00\x00", 3)
    outcome, _ = read_chunked(data, [], True)
    assert isinstance(outcome, QueryResult) and outcome.rows == []
    with pytest.raises(ProtocolError):
        _ = outcome.columns


@pytest.mark.parametrize(
    "row",
    [
        b"",  # an empty packet
        lenenc_bytes(b"ab") + b"x",  # longer than its columns
        b"\x05ab",  # a value running past the packet
        b"\xfc\x10",  # a truncated length
        b"\xff\x01",  # an ERR too short to read
    ],
)
def test_malformed_rows_are_protocol_errors(row: bytes) -> None:
    head = frame(b"\x01", 1) + frame(Column("a").encode(), 2)
    packets = PacketReader()
    packets.feed(head + frame(row, 3) + frame(b"\x01z", 4))
    with pytest.raises(ProtocolError):
        TextResultReader(True).read(packets)


@pytest.mark.parametrize("count", [b"\xfc\x01", b"\xfd\x00", b"\xfe\x00\x00"])
def test_malformed_column_counts_are_protocol_errors(count: bytes) -> None:
    packets = PacketReader()
    packets.feed(frame(count, 1) + frame(b"\x03def", 2))
    with pytest.raises(ProtocolError):
        TextResultReader(True).read(packets)


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.booleans())
def test_garbage_packets_give_a_result_or_a_protocol_error(
    payloads: list[bytes], deprecate_eof: bool
) -> None:
    packets = PacketReader()
    packets.feed(b"".join(frame(p, i + 1) for i, p in enumerate(payloads)))
    with contextlib.suppress(ProtocolError):
        outcome = TextResultReader(deprecate_eof).read(packets)
        assert outcome is None or isinstance(outcome, QueryResult | ErrPacket | LocalInfileRequest)
