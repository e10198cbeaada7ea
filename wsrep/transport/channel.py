"""Per-connection message authentication after the handshake (sans-I/O).

Each direction has its own key derived from the cluster secret and both handshake nonces,
and every DATA frame carries a truncated HMAC-SHA256 tag over an implicit per-direction
sequence number and the message. So a frame injected into, replayed on, reordered in or
reflected back over a connection fails verification; the connection is then closed, since
TCP gives no way to skip the bad bytes and stay in step.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from wsrep.transport.frames import Frame, FrameKind, encode_frame_parts

TAG_SIZE = 16  # 128-bit truncated HMAC-SHA256, as RFC 4868 does for IPsec
_SEQ = struct.Struct(">Q")


class AuthenticationError(ValueError):
    """A frame's MAC did not verify: injected, corrupted or replayed."""


def derive_key(secret: bytes, label: bytes, *nonces: bytes) -> bytes:
    return hmac.digest(secret, label + b"".join(nonces), "sha256")


class SecureChannel:
    def __init__(self, send_key: bytes, recv_key: bytes) -> None:
        self._send_mac = hmac.new(send_key, digestmod=hashlib.sha256)
        self._recv_mac = hmac.new(recv_key, digestmod=hashlib.sha256)
        self._send_seq = 0
        self._recv_seq = 0

    def seal(self, message: bytes) -> tuple[bytes, ...]:
        """The encoded DATA frame carrying `message`, in pieces (the message is not copied)."""
        tag = self._tag(self._send_mac, self._send_seq, message)
        self._send_seq += 1
        return encode_frame_parts(FrameKind.DATA, tag, message)

    def open(self, frame: Frame) -> bytes:
        """The message in a DATA frame, or AuthenticationError."""
        body = frame.body
        if frame.kind is not FrameKind.DATA or len(body) < TAG_SIZE:
            raise AuthenticationError(
                f"expected an authenticated DATA frame, got {frame.kind.name}"
            )
        message = body[TAG_SIZE:]
        expected = self._tag(self._recv_mac, self._recv_seq, message)
        if not hmac.compare_digest(expected, body[:TAG_SIZE]):
            raise AuthenticationError(f"bad MAC on message #{self._recv_seq} ({len(body)} bytes)")
        self._recv_seq += 1
        return message

    @staticmethod
    def _tag(base: hmac.HMAC, seq: int, message: bytes) -> bytes:
        mac = base.copy()
        mac.update(_SEQ.pack(seq))
        mac.update(message)
        return mac.digest()[:TAG_SIZE]
