"""Mutual authentication and identity exchange between two group members (sans-I/O).

    dialer                                    listener
      HELLO     {proto, nonce_d}          ->
                                          <-  CHALLENGE {proto, nonce_l}
      AUTH      mac_d + {member, cluster} ->  checks mac_d, cluster uuid, identity
                                          <-  WELCOME   mac_l + {member, cluster}
      checks mac_l, cluster uuid, identity

mac_d = HMAC-SHA256(secret, "dialer" | nonce_d | nonce_l | json) and mac_l likewise with
its own label, so each side proves it knows the cluster secret over fresh nonces from both
sides (no replay, no reflection). The dialer proves itself first, so a stranger scanning
the port learns nothing but a nonce. Either side may answer a refusal with REFUSE (a
reason for the other side's log, never trusted) and closes. Once established, each
direction gets its own key derived from the secret and both nonces (`SecureChannel`).

A cluster uuid of None means "joining for the first time"; two known uuids must be equal.
"""

from __future__ import annotations

import enum
import hmac
import json
import secrets
import uuid
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from wsrep.group.types import MemberInfo
from wsrep.transport.channel import SecureChannel, derive_key
from wsrep.transport.frames import Frame, FrameKind, encode_frame

PROTOCOL_VERSION = 1
NONCE_SIZE = 32
MAC_SIZE = 32
MAX_HANDSHAKE_FRAME = 4096  # limit before the peer is authenticated
MAX_REFUSE_REASON = 300
SELF_CONNECTION = "self-connection"  # REFUSE reason: the dialer is the listener itself

_LABEL_DIALER = b"wsrep-group/auth/dialer"
_LABEL_LISTENER = b"wsrep-group/auth/listener"
_LABEL_KEY_D2L = b"wsrep-group/key/dialer-to-listener"
_LABEL_KEY_L2D = b"wsrep-group/key/listener-to-dialer"


class Role(enum.Enum):
    DIALER = "dialer"
    LISTENER = "listener"


class HandshakeError(Exception):
    """The handshake failed; the connection must be closed."""


class RefusedByPeer(HandshakeError):
    """The peer sent REFUSE: nothing to answer."""


class SelfConnection(HandshakeError):
    """We dialed our own listen address (it is in the seed list): not an error to shout.

    The listener spots it by the HELLO nonce being one of its own process's dial nonces
    and tells the dialer so. A stranger could claim it too, but a stranger squatting on an
    address we dial can refuse us anyway.
    """


@dataclass(frozen=True)
class Established:
    peer: MemberInfo
    peer_cluster: uuid.UUID | None
    channel: SecureChannel


class _State(enum.Enum):
    START = enum.auto()
    WAIT_CHALLENGE = enum.auto()  # dialer
    WAIT_WELCOME = enum.auto()  # dialer
    WAIT_HELLO = enum.auto()  # listener
    WAIT_AUTH = enum.auto()  # listener
    DONE = enum.auto()
    FAILED = enum.auto()


class Handshake:
    """One side of the handshake; `start()` then `receive()` each frame until `result`."""

    def __init__(
        self,
        role: Role,
        secret: bytes,
        local: MemberInfo,
        local_cluster: uuid.UUID | None,
        nonce: bytes | None = None,
        own_nonces: Container[bytes] = frozenset(),
    ) -> None:
        if not secret:
            raise ValueError("the cluster secret must not be empty")
        self.role = role
        self._secret = secret
        self._local = local
        self._local_cluster = local_cluster
        self._nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_SIZE)
        self._peer_nonce = b""
        self._own_nonces = own_nonces
        self._state = _State.START
        self.result: Established | None = None

    @property
    def nonce(self) -> bytes:
        return self._nonce

    @property
    def dialer_nonce(self) -> bytes:
        """Known to both ends once the HELLO is through: names the connection."""
        return self._nonces()[0]

    def start(self) -> bytes:
        """Bytes to send first: HELLO for the dialer, nothing for the listener."""
        assert self._state is _State.START
        if self.role is Role.LISTENER:
            self._state = _State.WAIT_HELLO
            return b""
        self._state = _State.WAIT_CHALLENGE
        return _json_frame(FrameKind.HELLO, {"proto": PROTOCOL_VERSION, "nonce": self._nonce.hex()})

    def receive(self, frame: Frame) -> bytes:
        """Bytes to send in answer; HandshakeError when the peer is refused."""
        if frame.kind is FrameKind.REFUSE:
            self._state = _State.FAILED
            reason = frame.body[:MAX_REFUSE_REASON].decode("utf-8", "replace")
            if reason == SELF_CONNECTION and self.role is Role.DIALER:
                raise SelfConnection("dialed our own listen address")
            raise RefusedByPeer(f"peer refused the connection: {reason!r}")
        expected = {
            _State.WAIT_HELLO: FrameKind.HELLO,
            _State.WAIT_CHALLENGE: FrameKind.CHALLENGE,
            _State.WAIT_AUTH: FrameKind.AUTH,
            _State.WAIT_WELCOME: FrameKind.WELCOME,
        }.get(self._state)
        if frame.kind is not expected:
            self._state = _State.FAILED
            raise HandshakeError(f"unexpected {frame.kind.name} frame during the handshake")
        try:
            if frame.kind is FrameKind.HELLO:
                self._peer_nonce = _read_hello(frame.body)
                if self._peer_nonce in self._own_nonces:
                    raise SelfConnection("a connection from ourselves")
                self._state = _State.WAIT_AUTH
                return _json_frame(
                    FrameKind.CHALLENGE, {"proto": PROTOCOL_VERSION, "nonce": self._nonce.hex()}
                )
            if frame.kind is FrameKind.CHALLENGE:
                self._peer_nonce = _read_hello(frame.body)
                self._state = _State.WAIT_WELCOME
                return self._identity_frame(FrameKind.AUTH, _LABEL_DIALER)
            if frame.kind is FrameKind.AUTH:
                self._accept_identity(frame.body, _LABEL_DIALER)
                return self._identity_frame(FrameKind.WELCOME, _LABEL_LISTENER)
            self._accept_identity(frame.body, _LABEL_LISTENER)
            return b""
        except HandshakeError:
            self._state = _State.FAILED
            raise

    # ---- identity messages ------------------------------------------------------------

    def _nonces(self) -> tuple[bytes, bytes]:
        """(dialer nonce, listener nonce)"""
        if self.role is Role.DIALER:
            return self._nonce, self._peer_nonce
        return self._peer_nonce, self._nonce

    def _identity_frame(self, kind: FrameKind, label: bytes) -> bytes:
        info = self._local
        doc = {
            "member": {
                "id": info.id,
                "address": info.address,
                "weight": info.weight,
                "arbitrator": info.arbitrator,
            },
            "cluster": str(self._local_cluster) if self._local_cluster else None,
        }
        data = json.dumps(doc, separators=(",", ":")).encode()
        mac = hmac.digest(self._secret, label + b"".join(self._nonces()) + data, "sha256")
        return encode_frame(kind, mac + data)

    def _accept_identity(self, body: bytes, label: bytes) -> None:
        mac, data = body[:MAC_SIZE], body[MAC_SIZE:]
        expected = hmac.digest(self._secret, label + b"".join(self._nonces()) + data, "sha256")
        if not hmac.compare_digest(mac, expected):
            raise HandshakeError("bad handshake MAC: the peer does not know the cluster secret")
        doc = _loads(data, "identity")
        peer, cluster = _read_identity(doc)
        if cluster and self._local_cluster and cluster != self._local_cluster:
            raise HandshakeError(
                f"member {peer.id} ({peer.address}) belongs to cluster {cluster}, "
                f"we are {self._local_cluster}"
            )
        if peer.id == self._local.id:
            raise HandshakeError(
                f"member at {peer.address} uses our own name {peer.id!r} (we are at "
                f"{self._local.address})"
            )
        nonce_d, nonce_l = self._nonces()
        key_d2l = derive_key(self._secret, _LABEL_KEY_D2L, nonce_d, nonce_l)
        key_l2d = derive_key(self._secret, _LABEL_KEY_L2D, nonce_d, nonce_l)
        if self.role is Role.DIALER:
            channel = SecureChannel(send_key=key_d2l, recv_key=key_l2d)
        else:
            channel = SecureChannel(send_key=key_l2d, recv_key=key_d2l)
        self._state = _State.DONE
        self.result = Established(peer, cluster, channel)


def refuse_frame(reason: str) -> bytes:
    return encode_frame(FrameKind.REFUSE, reason.encode()[:MAX_REFUSE_REASON])


def _json_frame(kind: FrameKind, doc: dict[str, Any]) -> bytes:
    return encode_frame(kind, json.dumps(doc, separators=(",", ":")).encode())


def _loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HandshakeError(f"malformed {what} message: {exc}") from None
    if not isinstance(doc, dict):
        raise HandshakeError(f"malformed {what} message: not an object")
    return doc


def _read_hello(body: bytes) -> bytes:
    doc = _loads(body, "hello")
    if doc.get("proto") != PROTOCOL_VERSION:
        raise HandshakeError(
            f"peer speaks group protocol {doc.get('proto')!r}, we speak {PROTOCOL_VERSION}"
        )
    try:
        nonce = bytes.fromhex(doc["nonce"])
    except (KeyError, TypeError, ValueError):
        raise HandshakeError("malformed hello message: bad nonce") from None
    if len(nonce) != NONCE_SIZE:
        raise HandshakeError(f"malformed hello message: nonce of {len(nonce)} bytes")
    return nonce


def _read_identity(doc: dict[str, Any]) -> tuple[MemberInfo, uuid.UUID | None]:
    try:
        m = doc["member"]
        ident, address, weight, arb = m["id"], m["address"], m["weight"], m["arbitrator"]
        cluster = uuid.UUID(doc["cluster"]) if doc["cluster"] is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise HandshakeError("malformed identity message") from None
    if not (isinstance(ident, str) and ident and isinstance(address, str)):
        raise HandshakeError("malformed identity message: bad member id or address")
    if not (isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0):
        raise HandshakeError(f"malformed identity message: bad weight {weight!r}")
    if not isinstance(arb, bool):
        raise HandshakeError("malformed identity message: bad arbitrator flag")
    return MemberInfo(ident, address, weight, arb), cluster
