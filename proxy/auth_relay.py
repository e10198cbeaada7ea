"""Connection phase by pass-through: the backend authenticates the client itself.

The proxy connects to the backend first and shows the client the backend's greeting
(its scramble), with capabilities adjusted: CLIENT_SSL when the proxy has a certificate,
no compression, no MariaDB extended capabilities. The client's reply and every
auth-switch / auth-more-data round trip are relayed, so any authentication plugin works
and a wrong password gets the backend's own error. TLS terminates at the proxy: it adds
one packet (SSLRequest) on the client side only, so sequence ids are renumbered.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import trio

from proxy.packet_stream import PacketStream
from proxy.protocol.constants import (
    ERR_HEADER,
    HEADER_LEN,
    OK_HEADER,
    RELAY_STRIPPED,
    Capability,
)
from proxy.protocol.handshake import Greeting, HandshakeResponse
from proxy.protocol.packet_reader import Packet
from proxy.protocol.results import OkPacket
from proxy.protocol.wire import ProtocolError, frame
from proxy.session import Session

log = logging.getLogger("wsrep.proxy")

# caching_sha2_password's "fast auth succeeded": the OK follows without a client reply.
_FAST_AUTH_OK = b"\x01\x03"
_MAX_AUTH_ROUNDS = 8
_MAX_HANDSHAKE_RESPONSE = 64 * 1024  # user, scramble, schema, plugin, attributes


async def relay_handshake(
    client: PacketStream,
    backend: PacketStream,
    session: Session,
    tls: ssl.SSLContext | None,
) -> PacketStream | None:
    """Runs the connection phase. Returns the client stream to use from now on (TLS
    wrapped or not), or None when the backend refused the client (it got the ERR)."""
    packet = await backend.read_packet()
    if packet.payload[:1] == bytes((ERR_HEADER,)):  # e.g. backend's too many connections
        await client.send(packet.raw)
        return None
    greeting = Greeting.parse(packet.payload)
    session.backend_thread_id = greeting.connection_id
    shown = greeting.for_clients(RELAY_STRIPPED, Capability.SSL if tls else 0)
    await client.send(frame(shown.serialize(), packet.seq))

    packet = await _read_first_client_packet(client)
    response = HandshakeResponse.parse(packet.payload)
    shift = 0
    if response.is_ssl_request:
        if tls is None:
            raise ProtocolError("client asked for TLS, which the proxy did not offer")
        client = await _start_tls(client, tls)
        session.tls = True
        shift = 1
        packet = await client.read_packet()
        response = HandshakeResponse.parse(packet.payload)
    session.user = response.user.decode("utf-8", "replace")
    session.schema = response.database.decode("utf-8", "replace") if response.database else None
    session.capabilities = response.capabilities & shown.capabilities & ~Capability.SSL
    await backend.send(frame(response.relayed(RELAY_STRIPPED), packet.seq - shift))
    if await relay_auth_exchange(client, backend, session, shift):
        return client
    return None


async def relay_auth_exchange(
    client: PacketStream,
    backend: PacketStream,
    session: Session,
    shift: int,
    on_ok: Callable[[], None] | None = None,
) -> bool:
    """Relays auth-switch / auth-more-data round trips until the backend says OK (True)
    or ERR (False). Also serves COM_CHANGE_USER, with `shift` 0; `on_ok` updates the
    session before the client can see the OK."""
    for _ in range(_MAX_AUTH_ROUNDS):
        packet = await backend.read_packet()
        relayed = frame(packet.payload, packet.seq + shift) if shift else packet.raw
        first = packet.payload[:1]
        if first == bytes((OK_HEADER,)):
            session.status_flags = OkPacket.parse(packet.payload).status_flags
            if on_ok is not None:
                on_ok()
            await client.send(relayed)
            return True
        await client.send(relayed)
        if first == bytes((ERR_HEADER,)):
            log.info("session %d: backend refused %r", session.session_id, session.user)
            return False
        if packet.payload == _FAST_AUTH_OK:
            continue
        reply = await client.read_packet()
        await backend.send(frame(reply.payload, reply.seq - shift) if shift else reply.raw)
    raise ProtocolError(f"authentication did not finish in {_MAX_AUTH_ROUNDS} round trips")


async def _read_first_client_packet(client: PacketStream) -> Packet:
    """Reads exactly one packet's bytes: if it is an SSLRequest, the TLS ClientHello that
    follows must stay in the socket for the TLS layer."""
    head = await client.receive_exactly(HEADER_LEN)
    length = head[0] | head[1] << 8 | head[2] << 16
    if length > _MAX_HANDSHAKE_RESPONSE:
        raise ProtocolError(f"handshake response of {length} bytes")
    client.reader.feed(head + await client.receive_exactly(length))
    packet = client.reader.next_packet()
    assert packet is not None
    return packet


async def _start_tls(client: PacketStream, context: ssl.SSLContext) -> PacketStream:
    stream = trio.SSLStream(client.stream, context, server_side=True)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        raise ProtocolError(f"TLS handshake failed: {exc.__cause__ or exc}") from exc
    return PacketStream(stream, client.reader.max_payload)
