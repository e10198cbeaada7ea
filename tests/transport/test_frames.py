"""Frames: round trips under any chunking, and every kind of broken stream is refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsrep.transport.frames import (
    HEADER_SIZE,
    MAGIC,
    Frame,
    FrameDecoder,
    FrameError,
    FrameKind,
    encode_frame,
)

kinds = st.sampled_from(list(FrameKind))
bodies = st.binary(max_size=300)


def drain(decoder: FrameDecoder) -> list[Frame]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


@given(st.lists(st.tuples(kinds, bodies), max_size=20), st.data())
def test_any_chunking_gives_back_the_same_frames(
    items: list[tuple[FrameKind, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(k, b) for k, b in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder(max_body=300)
    got: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        got += drain(decoder)
    assert got == [Frame(k, b) for k, b in items]
    assert decoder.buffered == 0
    decoder.check_eof()


@given(st.lists(st.tuples(kinds, bodies), min_size=1, max_size=5), st.data())
def test_any_flipped_byte_is_refused(
    items: list[tuple[FrameKind, bytes]], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(encode_frame(k, b) for k, b in items))
    pos = data.draw(st.integers(0, len(stream) - 1))
    stream[pos] ^= data.draw(st.integers(1, 255))
    decoder = FrameDecoder(max_body=300)
    decoder.feed(bytes(stream))
    with pytest.raises(FrameError):
        drain(decoder)
        decoder.check_eof()  # a corrupted length may leave a "truncated" frame


def test_a_frame_claiming_2_gib_is_refused_from_its_header_alone() -> None:
    decoder = FrameDecoder(max_body=64 << 20)
    decoder.feed(struct.pack(">HBBI", MAGIC, FrameKind.DATA, 0, 2 << 30))
    with pytest.raises(FrameError, match="exceeds the limit"):
        decoder.next_frame()
    # poisoned: the rest of the stream is not trusted
    decoder.feed(encode_frame(FrameKind.DATA, b"x"))
    with pytest.raises(FrameError, match="exceeds the limit"):
        decoder.next_frame()


def test_limit_is_checked_against_the_current_max_body() -> None:
    decoder = FrameDecoder(max_body=10)
    decoder.feed(encode_frame(FrameKind.DATA, b"a" * 10) + encode_frame(FrameKind.DATA, b"b" * 11))
    assert decoder.next_frame() == Frame(FrameKind.DATA, b"a" * 10)
    decoder.max_body = 11
    assert decoder.next_frame() == Frame(FrameKind.DATA, b"b" * 11)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "bad frame magic"),
        (struct.pack(">HBBI", MAGIC, 99, 0, 0) + b"\0" * 4, "unknown frame kind"),
        (struct.pack(">HBBI", MAGIC, FrameKind.DATA, 7, 0) + b"\0" * 4, "unknown frame flags"),
        (encode_frame(FrameKind.DATA, b"abc")[:-1] + b"\0", "crc32c mismatch"),
    ],
)
def test_garbage_is_refused_with_a_clear_reason(raw: bytes, match: str) -> None:
    decoder = FrameDecoder(max_body=100)
    decoder.feed(raw)
    with pytest.raises(FrameError, match=match):
        decoder.next_frame()


def test_a_stream_ending_inside_a_frame_is_reported() -> None:
    decoder = FrameDecoder(max_body=100)
    frame = encode_frame(FrameKind.DATA, b"payload")
    decoder.feed(frame[: HEADER_SIZE + 3])
    assert decoder.next_frame() is None
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.check_eof()
