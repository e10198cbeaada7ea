"""Handshake and authenticated messages between two in-memory `PeerConnection`s."""

from __future__ import annotations

import hmac
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsrep.group.types import MemberInfo
from wsrep.transport.channel import TAG_SIZE
from wsrep.transport.connection import (
    ConnectionEvent,
    ConnectionFailed,
    MessageReceived,
    PeerAuthenticated,
    PeerConnection,
)
from wsrep.transport.frames import HEADER_SIZE, FrameDecoder, FrameKind, encode_frame
from wsrep.transport.handshake import _LABEL_DIALER, Role

SECRET = b"cluster secret"
A = MemberInfo("a", "127.0.0.1:4001")
B = MemberInfo("b", "127.0.0.1:4002", weight=2, arbitrator=True)
CLUSTER = uuid.uuid4()


def pair(
    *,
    dialer_secret: bytes = SECRET,
    dialer: MemberInfo = A,
    listener: MemberInfo = B,
    dialer_cluster: uuid.UUID | None = CLUSTER,
    listener_cluster: uuid.UUID | None = CLUSTER,
) -> tuple[PeerConnection, PeerConnection]:
    d = PeerConnection(Role.DIALER, dialer_secret, dialer, dialer_cluster, max_message=1000)
    li = PeerConnection(Role.LISTENER, SECRET, listener, listener_cluster, max_message=1000)
    return d, li


def pump(
    d: PeerConnection, li: PeerConnection
) -> tuple[list[ConnectionEvent], list[ConnectionEvent]]:
    """Carry bytes both ways until quiet (bounded)."""
    d_events: list[ConnectionEvent] = []
    l_events: list[ConnectionEvent] = []
    for _ in range(10):
        to_l, to_d = d.data_to_send(), li.data_to_send()
        if not to_l and not to_d:
            break
        if to_l and li.failed is None:
            l_events += li.receive_data(to_l)
        if to_d and d.failed is None:
            d_events += d.receive_data(to_d)
    return d_events, l_events


def test_handshake_exchanges_identities_then_messages_flow_both_ways() -> None:
    d, li = pair()
    d_events, l_events = pump(d, li)
    assert d_events == [PeerAuthenticated(B, CLUSTER)]
    assert l_events == [PeerAuthenticated(A, CLUSTER)]
    d.send(b"to b")
    li.send(b"to a")
    li.send(b"")
    assert pump(d, li) == (
        [MessageReceived(b"to a"), MessageReceived(b"")],
        [MessageReceived(b"to b")],
    )


def test_a_member_joining_for_the_first_time_is_accepted_and_learns_the_uuid() -> None:
    d, li = pair(dialer_cluster=None)
    d_events, l_events = pump(d, li)
    assert d_events == [PeerAuthenticated(B, CLUSTER)]
    assert l_events == [PeerAuthenticated(A, None)]


def only_failure(events: list[ConnectionEvent]) -> ConnectionFailed:
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed), events
    return events[0]


def test_a_stranger_without_the_secret_is_refused_and_learns_nothing() -> None:
    d, li = pair(dialer_secret=b"guess")
    d_events, l_events = pump(d, li)
    assert "does not know the cluster secret" in only_failure(l_events).reason
    assert "peer refused" in only_failure(d_events).reason
    assert d.peer is None and li.peer is None


def test_a_member_of_another_cluster_is_refused_on_both_sides() -> None:
    other = uuid.uuid4()
    d, li = pair(dialer_cluster=other)
    d_events, l_events = pump(d, li)
    reason = only_failure(l_events).reason
    assert f"belongs to cluster {other}" in reason and str(CLUSTER) in reason
    assert "peer refused" in only_failure(d_events).reason


def test_a_joiner_accepts_whichever_cluster_it_reaches() -> None:
    other = uuid.uuid4()
    d, li = pair(dialer_cluster=None, listener_cluster=other)
    d_events, _ = pump(d, li)
    assert d_events == [PeerAuthenticated(B, other)]


def test_dialing_our_own_address_is_recognised_on_both_ends() -> None:
    dialer = PeerConnection(Role.DIALER, SECRET, A, CLUSTER, max_message=1000)
    listener = PeerConnection(
        Role.LISTENER, SECRET, A, CLUSTER, max_message=1000, own_nonces={dialer.nonce}
    )
    d_events, l_events = pump(dialer, listener)
    assert only_failure(d_events).self_connection
    assert only_failure(l_events).self_connection


def test_another_member_using_our_name_is_refused() -> None:
    d, li = pair(dialer=MemberInfo("b", "127.0.0.1:4999"))
    _, l_events = pump(d, li)
    assert "uses our own name" in only_failure(l_events).reason


def established() -> tuple[PeerConnection, PeerConnection]:
    d, li = pair()
    pump(d, li)
    assert d.established and li.established
    return d, li


def test_an_injected_frame_is_refused_and_nothing_after_it_is_trusted() -> None:
    d, li = established()
    forged = encode_frame(FrameKind.DATA, b"\0" * TAG_SIZE + b"forged")
    d.send(b"genuine")
    events = li.receive_data(d.data_to_send() + forged)
    assert events[0] == MessageReceived(b"genuine")
    assert "bad MAC" in events[1].reason  # type: ignore[union-attr]
    d.send(b"later")
    assert isinstance(li.receive_data(d.data_to_send())[0], ConnectionFailed)


def test_a_replayed_frame_is_refused() -> None:
    d, li = established()
    d.send(b"pay 10")
    wire = d.data_to_send()
    assert li.receive_data(wire) == [MessageReceived(b"pay 10")]
    assert "bad MAC" in only_failure(li.receive_data(wire)).reason


def test_a_frame_reflected_back_to_its_sender_is_refused() -> None:
    d, _ = established()
    d.send(b"hello")
    assert "bad MAC" in only_failure(d.receive_data(d.data_to_send())).reason


def test_handshake_frames_are_small_until_the_peer_is_authenticated() -> None:
    _, li = pair()
    big = encode_frame(FrameKind.HELLO, b"{" * 5000)
    assert "exceeds the limit" in only_failure(li.receive_data(big)).reason


def test_messages_above_max_message_are_refused() -> None:
    d, li = established()
    d.send(b"x" * 1001)
    assert "exceeds the limit" in only_failure(li.receive_data(d.data_to_send())).reason


def test_data_before_the_handshake_is_refused() -> None:
    _, li = pair()
    events = li.receive_data(encode_frame(FrameKind.DATA, b"\0" * 20))
    assert "unexpected DATA frame" in only_failure(events).reason


def test_a_connection_closed_mid_frame_is_reported() -> None:
    d, li = established()
    d.send(b"payload")
    li.receive_data(d.data_to_send()[: HEADER_SIZE + 2])
    assert "stream ended inside a frame" in only_failure(li.receive_data(b"")).reason


@given(st.binary(min_size=1, max_size=2000))
def test_random_bytes_never_reach_the_core(garbage: bytes) -> None:
    for role in Role:
        conn = PeerConnection(role, SECRET, B, CLUSTER, max_message=1000)
        events = conn.receive_data(garbage)
        assert not any(isinstance(e, (MessageReceived, PeerAuthenticated)) for e in events)


@given(st.lists(st.binary(max_size=200), max_size=10), st.data())
def test_random_bytes_after_the_handshake_never_pass_as_messages(
    messages: list[bytes], data: st.DataObject
) -> None:
    d, li = established()
    for m in messages:
        d.send(m)
    garbage = data.draw(st.binary(min_size=1, max_size=300))
    events = li.receive_data(d.data_to_send() + garbage)
    assert events[: len(messages)] == [MessageReceived(m) for m in messages]
    assert all(not isinstance(e, MessageReceived) for e in events[len(messages) :])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"proto": 2, "nonce": "00"}',
        b'{"proto": 1, "nonce": "zz"}',
        b'{"proto": 1, "nonce": "0011"}',
        b'{"proto": 1}',
    ],
)
def test_malformed_hello_is_refused(body: bytes) -> None:
    _, li = pair()
    only_failure(li.receive_data(encode_frame(FrameKind.HELLO, body)))
    assert li.data_to_send().startswith(encode_frame(FrameKind.REFUSE, b"")[:2])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
identity_docs = st.fixed_dictionaries(
    {},
    optional={
        "member": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "id": json_values,
                    "address": json_values,
                    "weight": json_values,
                    "arbitrator": json_values,
                },
            ),
        ),
        "cluster": st.one_of(json_values, st.uuids().map(str)),
    },
)


def auth_with_valid_mac(doc: object) -> list[ConnectionEvent]:
    """What a listener makes of an AUTH whose MAC is right but whose document is `doc`."""
    dialer = PeerConnection(Role.DIALER, SECRET, A, CLUSTER, max_message=1000)
    listener = PeerConnection(Role.LISTENER, SECRET, B, CLUSTER, max_message=1000)
    listener.receive_data(dialer.data_to_send())  # HELLO
    decoder = FrameDecoder(4096)
    decoder.feed(listener.data_to_send())
    challenge = decoder.next_frame()
    assert challenge is not None
    nonce_l = bytes.fromhex(json.loads(challenge.body)["nonce"])
    data = json.dumps(doc).encode()
    mac = hmac.digest(SECRET, _LABEL_DIALER + dialer.nonce + nonce_l + data, "sha256")
    return listener.receive_data(encode_frame(FrameKind.AUTH, mac + data))


def test_a_well_formed_identity_passes_the_crafted_path() -> None:
    doc = {
        "member": {"id": "c", "address": "h:1", "weight": 3, "arbitrator": False},
        "cluster": str(CLUSTER),
    }
    assert auth_with_valid_mac(doc) == [PeerAuthenticated(MemberInfo("c", "h:1", 3), CLUSTER)]


@given(identity_docs)
def test_a_malformed_identity_with_a_valid_mac_is_refused_not_crashed_on(doc: object) -> None:
    """Even a peer knowing the secret cannot crash us with a strange identity document."""
    events = auth_with_valid_mac(doc)
    assert len(events) == 1
    if isinstance(events[0], PeerAuthenticated):
        peer = events[0].peer
        assert isinstance(peer.id, str) and isinstance(peer.weight, int)
    else:
        assert isinstance(events[0], ConnectionFailed)
