"""One connection to a peer member as a sans-I/O state machine.

Bytes in, events out; bytes to send are pulled with `data_to_send()`. It runs the
handshake, then authenticates every message. A failure ends the event list with
`ConnectionFailed` after queueing whatever should still go out (a REFUSE with the reason);
the caller flushes that, closes the connection and logs the reason. Nothing
unauthenticated is ever returned as a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass

from wsrep.group.types import MemberInfo
from wsrep.transport.channel import TAG_SIZE, AuthenticationError, SecureChannel
from wsrep.transport.frames import FrameDecoder, FrameError
from wsrep.transport.handshake import (
    MAX_HANDSHAKE_FRAME,
    SELF_CONNECTION,
    Handshake,
    HandshakeError,
    RefusedByPeer,
    Role,
    SelfConnection,
    refuse_frame,
)


@dataclass(frozen=True)
class PeerAuthenticated:
    peer: MemberInfo
    peer_cluster: uuid.UUID | None


@dataclass(frozen=True)
class MessageReceived:
    data: bytes


@dataclass(frozen=True)
class ConnectionFailed:
    """Always the last event; close the connection.

    `closed`: the peer just closed its side between frames (nothing wrong with its input);
    `self_connection`: we dialed ourselves.
    """

    reason: str
    closed: bool = False
    self_connection: bool = False


ConnectionEvent = PeerAuthenticated | MessageReceived | ConnectionFailed


class PeerConnection:
    def __init__(
        self,
        role: Role,
        secret: bytes,
        local: MemberInfo,
        local_cluster: uuid.UUID | None,
        max_message: int,
        nonce: bytes | None = None,
        own_nonces: Container[bytes] = frozenset(),
    ) -> None:
        self.role = role
        self._handshake = Handshake(role, secret, local, local_cluster, nonce, own_nonces)
        self._decoder = FrameDecoder(MAX_HANDSHAKE_FRAME)
        self._max_body = max_message + TAG_SIZE
        self._channel: SecureChannel | None = None
        self._out: list[bytes] = [self._handshake.start()]
        self._pending = len(self._out[0])
        self.failed: ConnectionFailed | None = None
        self.peer: MemberInfo | None = None

    @property
    def nonce(self) -> bytes:
        """Our handshake nonce (a listener in this process recognises its own dials by it)."""
        return self._handshake.nonce

    @property
    def dialer_nonce(self) -> bytes:
        return self._handshake.dialer_nonce

    @property
    def pending(self) -> int:
        """Bytes queued and not yet pulled by `data_to_send`."""
        return self._pending

    @property
    def established(self) -> bool:
        return self._channel is not None and self.failed is None

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)  # the one copy of a message on its way out
        self._out.clear()
        self._pending = 0
        return out

    def send(self, message: bytes) -> None:
        """Queue one protocol message (only once established)."""
        if self._channel is None or self.failed is not None:
            raise RuntimeError("send on a connection that is not established")
        self._queue(*self._channel.seal(message))

    def receive_data(self, data: bytes) -> list[ConnectionEvent]:
        """Feed received bytes; b"" means the peer closed its side."""
        if self.failed is not None:
            return [self.failed]
        events: list[ConnectionEvent] = []
        try:
            if not data:
                self._decoder.check_eof()
                self.failed = ConnectionFailed("peer closed the connection", closed=True)
                return [self.failed]
            self._decoder.feed(data)
            while (frame := self._decoder.next_frame()) is not None:
                if self._channel is not None:
                    events.append(MessageReceived(self._channel.open(frame)))
                    continue
                self._queue(self._handshake.receive(frame))
                if (done := self._handshake.result) is not None:
                    self._channel = done.channel
                    self.peer = done.peer
                    self._decoder.max_body = self._max_body
                    events.append(PeerAuthenticated(done.peer, done.peer_cluster))
        except SelfConnection as exc:
            if self.role is Role.LISTENER:
                self._queue(refuse_frame(SELF_CONNECTION))
            self.failed = ConnectionFailed(str(exc), self_connection=True)
        except RefusedByPeer as exc:
            self.failed = ConnectionFailed(str(exc))
        except HandshakeError as exc:
            self._queue(refuse_frame(str(exc)))
            self.failed = ConnectionFailed(str(exc))
        except (FrameError, AuthenticationError) as exc:
            self.failed = ConnectionFailed(str(exc))
        if self.failed is not None:
            events.append(self.failed)
        return events

    def _queue(self, *parts: bytes) -> None:
        self._out.extend(parts)
        self._pending += sum(len(p) for p in parts)
