"""The message codec: round trips, and bad bytes never get past a CodecError."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsrep.group.codec import (
    Append,
    AppendResponse,
    CodecError,
    Flow,
    Forward,
    Join,
    Leave,
    Message,
    Purged,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode,
    encode,
)
from wsrep.group.log import Configuration, Entry, EntryKind
from wsrep.group.types import MemberInfo

MAX_PAYLOAD = 1 << 16
u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)
names = st.text(min_size=1, max_size=20)
member_infos = st.builds(
    MemberInfo, names, st.text(max_size=30), st.integers(0, 1000), st.booleans()
)
member_lists = st.lists(member_infos, min_size=1, max_size=6, unique_by=lambda m: m.id).map(tuple)
configs = st.builds(Configuration, member_lists, st.none() | member_lists)


@st.composite
def entry_lists(draw: st.DrawFn, prev_index: int) -> tuple[Entry, ...]:
    out = []
    for i in range(draw(st.integers(0, 5))):
        term, seqno, conf_id = draw(u64), draw(u64), draw(u64)
        index = prev_index + 1 + i
        if draw(st.booleans()):
            payload = draw(st.binary(max_size=200))
            e = Entry(
                term, index, seqno, conf_id, EntryKind.PAYLOAD, draw(names), draw(u64),
                draw(u64), payload,
            )  # fmt: skip
        else:
            e = Entry(term, index, seqno, conf_id, EntryKind.VIEW, config=draw(configs))
        out.append(e)
    return tuple(out)


@st.composite
def appends(draw: st.DrawFn) -> Append:
    prev = draw(st.integers(0, 2**62))
    return Append(
        prev,
        draw(u64),
        draw(u64),
        draw(entry_lists(prev)),
        draw(st.booleans()),
        draw(st.booleans()),
    )


bodies = st.one_of(
    appends(),
    st.builds(AppendResponse, st.booleans(), u64, u32),
    st.builds(VoteRequest, st.booleans(), u64, u64),
    st.builds(VoteRequest, st.just(False), u64, u64, st.just(True)),
    st.builds(VoteResponse, st.booleans(), st.booleans()),
    st.builds(
        Forward, u64, u64, st.lists(st.tuples(u64, st.binary(max_size=100)), max_size=5).map(tuple)
    ),
    st.builds(Join, member_infos),
    st.builds(Purged, u64),
    st.builds(Flow, u32),
    st.builds(Leave, st.booleans()),
    st.just(TimeoutNow()),
)
messages = st.builds(
    Message, st.builds(uuid.UUID, bytes=st.binary(min_size=16, max_size=16)), u64, bodies
)


@given(messages)
def test_every_message_round_trips(msg: Message) -> None:
    assert decode(encode(msg), MAX_PAYLOAD) == msg


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(data, MAX_PAYLOAD)


@settings(max_examples=300)
@given(messages, st.data())
def test_damaged_messages_raise_only_codec_error(msg: Message, data: st.DataObject) -> None:
    raw = bytearray(encode(msg))
    how = data.draw(st.sampled_from(["truncate", "flip", "extend"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    else:
        raw += data.draw(st.binary(min_size=1, max_size=10))
    with contextlib.suppress(CodecError):
        decode(bytes(raw), MAX_PAYLOAD)


def test_oversized_payload_claim_is_refused_before_reading() -> None:
    e = Entry(1, 1, 1, 1, EntryKind.PAYLOAD, "a", 1, 1, b"x" * 100)
    raw = encode(Message(uuid.uuid4(), 1, Append(0, 0, 0, (e,), True, False)))
    with pytest.raises(CodecError, match="exceeds max_payload"):
        decode(raw, 99)


def test_count_larger_than_the_message_is_refused() -> None:
    raw = bytearray(encode(Message(uuid.uuid4(), 1, Append(0, 0, 0, (), True, False))))
    raw[-4:] = (2**32 - 1).to_bytes(4, "little")  # the entry count
    with pytest.raises(CodecError, match="claims"):
        decode(bytes(raw), MAX_PAYLOAD)


def test_unknown_version_and_type_are_named() -> None:
    raw = bytearray(encode(Message(uuid.uuid4(), 1, Flow(3))))
    with pytest.raises(CodecError, match="version 9"):
        decode(bytes([9]) + bytes(raw[1:]), MAX_PAYLOAD)
    raw[1] = 99
    with pytest.raises(CodecError, match="unknown message type 99"):
        decode(bytes(raw), MAX_PAYLOAD)
