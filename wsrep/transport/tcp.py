"""Group transport over TCP (trio): one authenticated connection per pair of members.

It listens on the member's address and keeps dialing the seeds and the current view's
members, with exponential backoff and jitter. Each connection runs a sans-I/O
`PeerConnection`; authenticated messages go to the handler (the driver, which feeds the
core), anything broken (garbage, truncated, oversized, unauthenticated, another cluster)
closes that one connection with a log line and never reaches the handler.

When both members dialed each other, both keep the same connection: the one dialed by the
member with the smaller id (ties, e.g. one member dialing another through two addresses,
broken by the dialer's nonce, which both ends know). Heartbeats and failure detection are
the core's job; the transport only reports connections coming and going.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import trio

from wsrep.group.types import MemberId, MemberInfo
from wsrep.transport.address import parse_address
from wsrep.transport.backoff import Backoff
from wsrep.transport.connection import (
    ConnectionFailed,
    MessageReceived,
    PeerAuthenticated,
    PeerConnection,
)
from wsrep.transport.handshake import Role

log = logging.getLogger("wsrep.transport")

READ_SIZE = 256 << 10
FLUSH_TIMEOUT = 1.0  # to get a REFUSE out before closing
FLUSH_POLL = 0.001
REPEAT_QUIET = 60.0  # a refusal reason logged as a warning at most once a minute


class TransportHandler(Protocol):
    """What the transport calls, always from trio tasks in this process, in order."""

    def peer_up(self, peer: MemberInfo, peer_cluster: uuid.UUID | None) -> None: ...

    def peer_down(self, peer_id: MemberId) -> None: ...

    def received(self, peer_id: MemberId, data: bytes) -> None: ...

    def cluster_uuid(self) -> uuid.UUID | None:
        """The cluster we belong to (None until we joined one), checked in handshakes."""
        ...


@dataclass(frozen=True)
class TransportConfig:
    member: MemberInfo
    secret: bytes
    seeds: tuple[str, ...] = ()
    max_message: int = 65 << 20  # one protocol message, after authentication
    connect_timeout: float = 3.0
    handshake_timeout: float = 5.0
    reconnect_initial: float = 0.05
    reconnect_max: float = 2.0
    send_buffer_limit: int = 128 << 20  # bytes queued to a peer that does not read
    max_handshaking: int = 32  # unauthenticated connections at a time


@dataclass
class TransportStats:
    connections_refused: int = 0  # failed handshakes and broken streams
    messages_sent: int = 0
    messages_received: int = 0
    sends_dropped: int = 0  # no connection to that peer at the time


class _Link:
    """One TCP connection and its sans-I/O state."""

    def __init__(self, stream: trio.SocketStream, conn: PeerConnection, remote: str) -> None:
        self.stream = stream
        self.conn = conn
        self.remote = remote  # the address dialed, or the peer's ip:port when accepted
        self.scope = trio.CancelScope()
        self.wake = trio.Event()
        self.closing = False  # flush what is queued, then close
        self.dropped = False  # closed for not reading: take nothing more
        self.writing = False  # bytes pulled from the connection, not yet written out
        self.peer: MemberInfo | None = None

    def kick(self) -> None:
        self.wake.set()


@dataclass(frozen=True)
class _Outcome:
    authenticated: bool
    self_connection: bool


class TcpTransport:
    def __init__(
        self, config: TransportConfig, handler: TransportHandler, rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.stats = TransportStats()
        self._handler = handler
        self._rng = rng or random.Random()
        self._name = config.member.id
        self._links: dict[MemberId, _Link] = {}  # the one active link per peer
        self._address_ids: dict[str, MemberId] = {}  # dialed address -> who answered there
        self._view_addresses: set[str] = set()
        self._dialing: set[str] = set()
        self._self_addresses = {config.member.address}
        self._dial_nonces: set[bytes] = set()
        self._handshaking = 0
        self._refusals_said: dict[str, float] = {}  # reason -> when last logged
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    # ---- API for the driver -------------------------------------------------------------

    @property
    def connected(self) -> frozenset[MemberId]:
        return frozenset(self._links)

    def send(self, to: MemberId, data: bytes) -> bool:
        """Queue `data` to peer `to`; False (dropped) when not connected to it."""
        link = self._links.get(to)
        if link is None or link.dropped or not link.conn.established:
            self.stats.sends_dropped += 1
            return False
        link.conn.send(data)
        self.stats.messages_sent += 1
        if link.conn.pending > self.config.send_buffer_limit:
            # Not peer_down from here: the driver is in the middle of the core's actions.
            # The link's own task reports it once it has unwound.
            log.warning(
                "%s: %s does not read (%d bytes queued): dropping the connection",
                self._name,
                to,
                link.conn.pending,
            )
            link.dropped = True
            link.scope.cancel()
        link.kick()
        return True

    async def flush(self, timeout: float) -> None:
        """Until every connected peer's queued messages are written out, at most `timeout`
        seconds: a member that stops sends its last words first (a leaving leader's commit
        of its removal and its leadership handover)."""
        with trio.move_on_after(timeout):
            while any(link.conn.pending or link.writing for link in self._links.values()):
                await trio.sleep(FLUSH_POLL)

    def set_view_addresses(self, addresses: set[str] | frozenset[str]) -> None:
        """Keep connections to these (the current view's members) besides the seeds."""
        self._view_addresses = set(addresses)
        self._spawn_dialers()
        self._notify()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        host, port = parse_address(self.config.member.address)
        listeners = await trio.open_tcp_listeners(port, host=host)
        log.info("%s: group transport listening on %s", self._name, self.config.member.address)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(
                partial(trio.serve_listeners, self._accept, listeners, handler_nursery=nursery)
            )
            self._spawn_dialers()
            task_status.started()

    # ---- dialing ------------------------------------------------------------------------

    def _targets(self) -> set[str]:
        return (set(self.config.seeds) | self._view_addresses) - self._self_addresses

    def _spawn_dialers(self) -> None:
        if self._nursery is None:
            return
        for address in self._targets() - self._dialing:
            self._dialing.add(address)
            self._nursery.start_soon(self._dial_loop, address)

    async def _dial_loop(self, address: str) -> None:
        backoff = Backoff(self.config.reconnect_initial, self.config.reconnect_max, self._rng)
        failures = 0
        try:
            while address in self._targets():
                peer_id = self._address_ids.get(address)
                if peer_id is not None and peer_id in self._links:
                    await self._changed.wait()
                    continue
                outcome = await self._dial_once(address, quiet=failures > 0)
                if outcome.self_connection:
                    log.info("%s: %s is our own address, not dialing it", self._name, address)
                    self._self_addresses.add(address)
                    return
                if outcome.authenticated:
                    backoff.reset()
                    failures = 0
                else:
                    failures += 1
                await trio.sleep(backoff.next())
        finally:
            self._dialing.discard(address)

    async def _dial_once(self, address: str, quiet: bool) -> _Outcome:
        try:
            host, port = parse_address(address)
            with trio.fail_after(self.config.connect_timeout):
                stream = await trio.open_tcp_stream(host, port)
        except (OSError, ValueError, trio.TooSlowError) as exc:
            # said once per outage, then only in debug: a dead seed is retried for ever
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s: cannot connect to %s (%s), retrying with backoff",
                self._name,
                address,
                exc or "timeout",
            )
            return _Outcome(authenticated=False, self_connection=False)
        return await self._serve(stream, Role.DIALER, address)

    # ---- accepting ----------------------------------------------------------------------

    async def _accept(self, stream: trio.SocketStream) -> None:
        remote = _peername(stream)
        if self._handshaking >= self.config.max_handshaking:
            self.stats.connections_refused += 1
            log.warning(
                "%s: refusing %s: %d connections already in handshake",
                self._name,
                remote,
                self._handshaking,
            )
            await trio.aclose_forcefully(stream)
            return
        await self._serve(stream, Role.LISTENER, remote)

    # ---- one connection -----------------------------------------------------------------

    async def _serve(self, stream: trio.SocketStream, role: Role, remote: str) -> _Outcome:
        conn = PeerConnection(
            role,
            self.config.secret,
            self.config.member,
            self._handler.cluster_uuid(),
            self.config.max_message,
            own_nonces=self._dial_nonces,
        )
        if role is Role.DIALER:
            self._dial_nonces.add(conn.nonce)
        link = _Link(stream, conn, remote)
        self._handshaking += 1
        try:
            with link.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, link)
                    await self._read_loop(link)
                    link.closing = True
                    link.kick()
                    nursery.cancel_scope.deadline = trio.current_time() + FLUSH_TIMEOUT
        finally:
            if link.peer is None:
                self._handshaking -= 1
            self._dial_nonces.discard(conn.nonce)
            self._unregister(link)
            await trio.aclose_forcefully(stream)
        failed = conn.failed
        return _Outcome(
            authenticated=link.peer is not None,
            self_connection=failed is not None and failed.self_connection,
        )

    async def _read_loop(self, link: _Link) -> None:
        with trio.move_on_after(self.config.handshake_timeout) as handshake_deadline:
            while True:
                try:
                    data = await link.stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._log_lost(link, f"connection broken: {exc}")
                    return
                for event in link.conn.receive_data(data):
                    if isinstance(event, MessageReceived):
                        if link.peer is not None and self._links.get(link.peer.id) is link:
                            self.stats.messages_received += 1
                            self._handler.received(link.peer.id, event.data)
                    elif isinstance(event, PeerAuthenticated):
                        handshake_deadline.deadline = math.inf
                        self._handshaking -= 1
                        link.peer = event.peer
                        if not self._register(link, event):
                            return
                    else:
                        self._log_failure(link, event)
                        return
                link.kick()  # handshake answers
        self.stats.connections_refused += 1
        log.warning("%s: handshake with %s timed out: closing", self._name, link.remote)

    async def _write_loop(self, link: _Link) -> None:
        while True:
            data = link.conn.data_to_send()
            if not data:
                if link.closing:
                    return
                await link.wake.wait()
                link.wake = trio.Event()
                continue
            link.writing = True
            try:
                await link.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._log_lost(link, f"send failed: {exc}")
                link.scope.cancel()
                return
            finally:
                link.writing = False

    # ---- the one active link per peer ---------------------------------------------------

    def _register(self, link: _Link, event: PeerAuthenticated) -> bool:
        peer = event.peer
        if link.conn.role is Role.DIALER:
            self._address_ids[link.remote] = peer.id
        current = self._links.get(peer.id)
        if current is not None and self._rank(current, peer) <= self._rank(link, peer):
            log.debug(
                "%s: second connection to %s (%s): closing it", self._name, peer.id, link.remote
            )
            return False
        self._links[peer.id] = link
        if current is not None:
            current.scope.cancel()
        else:
            how = "dialed" if link.conn.role is Role.DIALER else "accepted"
            log.info(
                "%s: connected to %s at %s (%s, weight %d%s)",
                self._name,
                peer.id,
                peer.address,
                how,
                peer.weight,
                ", arbitrator" if peer.arbitrator else "",
            )
            self._handler.peer_up(peer, event.peer_cluster)
        self._notify()
        return True

    def _rank(self, link: _Link, peer: MemberInfo) -> tuple[bool, bytes]:
        """Lower is preferred; both ends compute the same order."""
        dialer = self._name if link.conn.role is Role.DIALER else peer.id
        return dialer != min(self._name, peer.id), link.conn.dialer_nonce

    def _unregister(self, link: _Link) -> None:
        if link.peer is None or self._links.get(link.peer.id) is not link:
            return
        del self._links[link.peer.id]
        self._handler.peer_down(link.peer.id)
        self._notify()

    # ---- logging and change notices -----------------------------------------------------

    def _log_failure(self, link: _Link, failed: ConnectionFailed) -> None:
        if failed.self_connection:
            log.debug("%s: %s: %s", self._name, link.remote, failed.reason)
        elif failed.closed:
            self._log_lost(link, failed.reason)
        else:
            self.stats.connections_refused += 1
            who = f"{link.peer.id} at {link.remote}" if link.peer else link.remote
            # a misconfigured member retries for ever: say each reason once a while
            now = trio.current_time()
            repeated = now - self._refusals_said.get(failed.reason, -math.inf) < REPEAT_QUIET
            if not repeated:
                if len(self._refusals_said) >= 1000:  # reasons partly come from strangers
                    self._refusals_said.clear()
                self._refusals_said[failed.reason] = now
            log.log(
                logging.DEBUG if repeated else logging.WARNING,
                "%s: closing connection with %s: %s",
                self._name,
                who,
                failed.reason,
            )

    def _log_lost(self, link: _Link, reason: str) -> None:
        if link.peer is not None and self._links.get(link.peer.id) is link:
            log.info("%s: lost connection to %s: %s", self._name, link.peer.id, reason)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def _peername(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "unknown peer"
    return f"{host}:{port}"
