"""Wire format of the group protocol messages (little-endian, versioned, bounds-checked).

Every message starts with a header: version, message type, the sender's cluster uuid
(all zero for a member that has not joined a cluster yet) and the sender's term. A decoder
error raises `CodecError`; nothing that fails to decode ever reaches the state machine.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from uuid import UUID

from wsrep.group.log import Configuration, Entry, EntryKind
from wsrep.group.types import MemberInfo

VERSION = 1
NIL_UUID = UUID(int=0)


class CodecError(ValueError):
    """The bytes are not a valid protocol message."""


class MsgType(enum.IntEnum):
    APPEND = 1
    APPEND_RESPONSE = 2
    PRE_VOTE = 3
    VOTE = 4
    PRE_VOTE_RESPONSE = 5
    VOTE_RESPONSE = 6
    FORWARD = 7
    JOIN = 8
    PURGED = 9
    FLOW = 10
    LEAVE = 11
    TRANSFER_VOTE = 12
    TIMEOUT_NOW = 13


@dataclass(frozen=True, slots=True)
class Append:
    """Raft AppendEntries; also the heartbeat. `primary`: the leader's term view committed."""

    prev_index: int
    prev_term: int
    commit: int
    entries: tuple[Entry, ...]
    primary: bool
    fc_paused: bool


@dataclass(frozen=True, slots=True)
class AppendResponse:
    success: bool
    index: int  # success: matched up to here; failure: the leader should retry after here
    apply_queue: int


@dataclass(frozen=True, slots=True)
class VoteRequest:
    pre: bool  # pre-vote: would you vote for me? (terms do not change)
    last_index: int
    last_term: int
    # the leader handed over to the candidate (TimeoutNow): its lease no longer holds
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    pre: bool
    granted: bool


@dataclass(frozen=True, slots=True)
class Forward:
    """Submissions of a non-leader, numbered per incarnation so the leader orders each once."""

    incarnation: int
    ordered: int  # every request numbered up to here is known ordered (answered) already
    requests: tuple[tuple[int, bytes], ...]  # (request number, payload)


@dataclass(frozen=True, slots=True)
class Join:
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class Purged:
    """What you need is no longer in my log: state transfer first."""

    oldest_seqno: int


@dataclass(frozen=True, slots=True)
class Flow:
    apply_queue: int


@dataclass(frozen=True, slots=True)
class Leave:
    """A member shutting down cleanly: remove me (done=False); the leader's answer once a
    committed configuration no longer holds the sender (done=True)."""

    done: bool


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Raft's leadership transfer: the leader that goes asks its caught-up follower to
    campaign at once instead of after an election timeout."""


Body = (
    Append
    | AppendResponse
    | VoteRequest
    | VoteResponse
    | Forward
    | Join
    | Purged
    | Flow
    | Leave
    | TimeoutNow
)


@dataclass(frozen=True, slots=True)
class Message:
    cluster_uuid: UUID  # NIL_UUID: the sender belongs to no cluster yet
    term: int
    body: Body


_HEADER = struct.Struct("<BB16sQ")
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_APPEND = struct.Struct("<BBQQQI")
_APPEND_RESPONSE = struct.Struct("<BQI")
_VOTE = struct.Struct("<QQ")
_ENTRY = struct.Struct("<QQQQB")  # term, index, seqno, conf_id, kind
# a payload entry: the above, then incarnation, request, origin and payload lengths
_PAYLOAD_ENTRY = struct.Struct("<QQQQBQQHI")
_FORWARD = struct.Struct("<QQI")
_FORWARD_ITEM = struct.Struct("<QI")
_MEMBER = struct.Struct("<IB")


# ---- encoding -----------------------------------------------------------------------------


def encode(msg: Message) -> bytes:
    body = msg.body
    if isinstance(body, Append):
        blob = encode_entries(body.entries)
        return encode_append(msg.cluster_uuid, msg.term, body, len(body.entries), blob)
    out: list[bytes] = [_HEADER.pack(VERSION, _type_of(msg.body), msg.cluster_uuid.bytes, msg.term)]
    if isinstance(body, AppendResponse):
        out.append(_APPEND_RESPONSE.pack(body.success, body.index, body.apply_queue))
    elif isinstance(body, VoteRequest):
        out.append(_VOTE.pack(body.last_index, body.last_term))
    elif isinstance(body, VoteResponse):
        out.append(_U8.pack(body.granted))
    elif isinstance(body, Forward):
        out.append(_FORWARD.pack(body.incarnation, body.ordered, len(body.requests)))
        for request, payload in body.requests:
            out.append(_FORWARD_ITEM.pack(request, len(payload)))
            out.append(payload)
    elif isinstance(body, Join):
        _encode_member(body.member, out)
    elif isinstance(body, Purged):
        out.append(_U64.pack(body.oldest_seqno))
    elif isinstance(body, Leave):
        out.append(_U8.pack(body.done))
    elif isinstance(body, Flow):
        out.append(_U32.pack(body.apply_queue))
    return b"".join(out)


def encode_append(cluster_uuid: UUID, term: int, body: Append, count: int, blob: bytes) -> bytes:
    """An APPEND whose `count` entries are already encoded in `blob` (`body.entries` unused).

    The leader sends the same entries to every follower: it encodes them once.
    """
    return b"".join(
        (
            _HEADER.pack(VERSION, MsgType.APPEND, cluster_uuid.bytes, term),
            _APPEND.pack(
                body.primary, body.fc_paused, body.prev_index, body.prev_term, body.commit, count
            ),
            blob,
        )
    )


def encode_entries(entries: tuple[Entry, ...] | list[Entry]) -> bytes:
    out: list[bytes] = []
    for e in entries:
        _encode_entry(e, out)
    return b"".join(out)


def _type_of(body: Body) -> MsgType:
    if isinstance(body, VoteRequest):
        if body.pre:
            return MsgType.PRE_VOTE
        return MsgType.TRANSFER_VOTE if body.transfer else MsgType.VOTE
    if isinstance(body, VoteResponse):
        return MsgType.PRE_VOTE_RESPONSE if body.pre else MsgType.VOTE_RESPONSE
    return _TYPES[type(body)]


_TYPES: dict[type, MsgType] = {
    Append: MsgType.APPEND,
    AppendResponse: MsgType.APPEND_RESPONSE,
    Forward: MsgType.FORWARD,
    Join: MsgType.JOIN,
    Purged: MsgType.PURGED,
    Flow: MsgType.FLOW,
    Leave: MsgType.LEAVE,
    TimeoutNow: MsgType.TIMEOUT_NOW,
}


def _encode_str(s: str, out: list[bytes]) -> None:
    b = s.encode()
    out.append(_U16.pack(len(b)))
    out.append(b)


def _encode_member(m: MemberInfo, out: list[bytes]) -> None:
    _encode_str(m.id, out)
    _encode_str(m.address, out)
    out.append(_MEMBER.pack(m.weight, m.arbitrator))


def _encode_members(members: tuple[MemberInfo, ...], out: list[bytes]) -> None:
    out.append(_U16.pack(len(members)))
    for m in members:
        _encode_member(m, out)


def _encode_entry(e: Entry, out: list[bytes]) -> None:
    if e.kind is EntryKind.PAYLOAD:
        origin = e.origin.encode()
        out.append(
            _PAYLOAD_ENTRY.pack(
                e.term, e.index, e.seqno, e.conf_id, e.kind, e.incarnation, e.request,
                len(origin), len(e.payload),
            )
        )  # fmt: skip
        out.append(origin)
        out.append(e.payload)
    else:
        assert e.config is not None
        out.append(_ENTRY.pack(e.term, e.index, e.seqno, e.conf_id, e.kind))
        _encode_members(e.config.members, out)
        if e.config.old is None:
            out.append(_U8.pack(0))
        else:
            out.append(_U8.pack(1))
            _encode_members(e.config.old, out)


# ---- decoding -----------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: struct.Struct) -> tuple:
        end = self.pos + fmt.size
        if end > len(self.data):
            raise CodecError(f"truncated message: need {end} bytes, have {len(self.data)}")
        values = fmt.unpack_from(self.data, self.pos)
        self.pos = end
        return values

    def raw(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CodecError(f"truncated message: need {end} bytes, have {len(self.data)}")
        b = self.data[self.pos : end]
        self.pos = end
        return b

    def text(self) -> str:
        (n,) = self.take(_U16)
        try:
            return self.raw(n).decode()
        except UnicodeDecodeError as e:
            raise CodecError("invalid utf-8 in a name") from e

    def flag(self) -> bool:
        (v,) = self.take(_U8)
        if v > 1:
            raise CodecError(f"invalid boolean {v}")
        return bool(v)


def decode(data: bytes, max_payload: int) -> Message:
    """Parse one message; payloads larger than `max_payload` are refused."""
    r = _Reader(data)
    version, mtype, uuid_bytes, term = r.take(_HEADER)
    if version != VERSION:
        raise CodecError(f"unsupported protocol version {version}")
    try:
        kind = MsgType(mtype)
    except ValueError as e:
        raise CodecError(f"unknown message type {mtype}") from e
    body = _BODY_DECODERS[kind](r, max_payload)
    if r.pos != len(data):
        raise CodecError(f"{len(data) - r.pos} trailing bytes after {kind.name}")
    return Message(_uuid(uuid_bytes), term, body)


_UUIDS: dict[bytes, UUID] = {}


def _uuid(raw: bytes) -> UUID:
    """Messages keep naming the same few clusters: do not build a UUID for each one."""
    u = _UUIDS.get(raw)
    if u is None:
        if len(_UUIDS) > 64:
            _UUIDS.clear()
        u = _UUIDS[raw] = UUID(bytes=raw)
    return u


def _decode_append(r: _Reader, max_payload: int) -> Append:
    primary, paused, prev_index, prev_term, commit, count = r.take(_APPEND)
    if primary > 1 or paused > 1:
        raise CodecError("invalid flags in APPEND")
    # every entry takes at least _ENTRY.size bytes: refuse counts the data cannot hold
    if count * _ENTRY.size > len(r.data) - r.pos:
        raise CodecError(f"APPEND claims {count} entries in {len(r.data)} bytes")
    entries = []
    index = prev_index
    for _ in range(count):
        e = _decode_entry(r, max_payload)
        index += 1
        if e.index != index:
            raise CodecError(f"APPEND entry index {e.index}, expected {index}")
        entries.append(e)
    return Append(prev_index, prev_term, commit, tuple(entries), bool(primary), bool(paused))


def _decode_entry(r: _Reader, max_payload: int) -> Entry:
    data, pos = r.data, r.pos
    if len(data) > pos + 32 and data[pos + 32] == EntryKind.PAYLOAD:
        term, index, seqno, conf_id, _, incarnation, request, n_origin, size = r.take(
            _PAYLOAD_ENTRY
        )
        if size > max_payload:
            raise CodecError(f"payload of {size} bytes exceeds max_payload {max_payload}")
        try:
            origin = r.raw(n_origin).decode()
        except UnicodeDecodeError as e:
            raise CodecError("invalid utf-8 in an origin") from e
        payload = r.raw(size)
        return Entry(
            term, index, seqno, conf_id, EntryKind.PAYLOAD, origin, incarnation, request, payload
        )
    term, index, seqno, conf_id, kind = r.take(_ENTRY)
    if kind == EntryKind.VIEW:
        members = _decode_members(r)
        old = _decode_members(r) if r.flag() else None
        return Entry(
            term, index, seqno, conf_id, EntryKind.VIEW, config=Configuration(members, old)
        )
    raise CodecError(f"unknown entry kind {kind}")


def _decode_member(r: _Reader) -> MemberInfo:
    member_id = r.text()
    address = r.text()
    weight, arbitrator = r.take(_MEMBER)
    if not member_id or arbitrator > 1:
        raise CodecError("invalid member description")
    return MemberInfo(member_id, address, weight, bool(arbitrator))


def _decode_members(r: _Reader) -> tuple[MemberInfo, ...]:
    (n,) = r.take(_U16)
    members = tuple(_decode_member(r) for _ in range(n))
    if not members or len({m.id for m in members}) != n:
        raise CodecError("a configuration needs distinct members")
    return members


def _decode_append_response(r: _Reader, _max: int) -> AppendResponse:
    success, index, queue = r.take(_APPEND_RESPONSE)
    if success > 1:
        raise CodecError("invalid flag in APPEND_RESPONSE")
    return AppendResponse(bool(success), index, queue)


def _decode_pre_vote(r: _Reader, _max: int) -> VoteRequest:
    return VoteRequest(True, *r.take(_VOTE))


def _decode_vote(r: _Reader, _max: int) -> VoteRequest:
    return VoteRequest(False, *r.take(_VOTE))


def _decode_pre_vote_response(r: _Reader, _max: int) -> VoteResponse:
    return VoteResponse(True, r.flag())


def _decode_vote_response(r: _Reader, _max: int) -> VoteResponse:
    return VoteResponse(False, r.flag())


def _decode_forward(r: _Reader, max_payload: int) -> Forward:
    incarnation, ordered, count = r.take(_FORWARD)
    if count * _FORWARD_ITEM.size > len(r.data) - r.pos:
        raise CodecError(f"FORWARD claims {count} payloads in {len(r.data)} bytes")
    requests = []
    for _ in range(count):
        request, size = r.take(_FORWARD_ITEM)
        if size > max_payload:
            raise CodecError(f"payload of {size} bytes exceeds max_payload {max_payload}")
        requests.append((request, r.raw(size)))
    return Forward(incarnation, ordered, tuple(requests))


def _decode_join(r: _Reader, _max: int) -> Join:
    return Join(_decode_member(r))


def _decode_purged(r: _Reader, _max: int) -> Purged:
    return Purged(r.take(_U64)[0])


def _decode_flow(r: _Reader, _max: int) -> Flow:
    return Flow(r.take(_U32)[0])


def _decode_leave(r: _Reader, _max: int) -> Leave:
    return Leave(r.flag())


def _decode_transfer_vote(r: _Reader, _max: int) -> VoteRequest:
    return VoteRequest(False, *r.take(_VOTE), transfer=True)


def _decode_timeout_now(_r: _Reader, _max: int) -> TimeoutNow:
    return TimeoutNow()


_BODY_DECODERS = {
    MsgType.APPEND: _decode_append,
    MsgType.APPEND_RESPONSE: _decode_append_response,
    MsgType.PRE_VOTE: _decode_pre_vote,
    MsgType.VOTE: _decode_vote,
    MsgType.PRE_VOTE_RESPONSE: _decode_pre_vote_response,
    MsgType.VOTE_RESPONSE: _decode_vote_response,
    MsgType.FORWARD: _decode_forward,
    MsgType.JOIN: _decode_join,
    MsgType.PURGED: _decode_purged,
    MsgType.FLOW: _decode_flow,
    MsgType.LEAVE: _decode_leave,
    MsgType.TRANSFER_VOTE: _decode_transfer_vote,
    MsgType.TIMEOUT_NOW: _decode_timeout_now,
}
