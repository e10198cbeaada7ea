"""Connection phase packets: the server greeting (HandshakeV10) and the client's reply.

The relay rewrites only capability bits, so both are parsed into structures that
serialize back to the same bytes (a property the tests check).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from proxy.protocol.constants import Capability
from proxy.protocol.wire import ProtocolError, read_lenenc_bytes, read_nul_str

SSL_REQUEST_LEN = 32


@dataclass(frozen=True, slots=True)
class Greeting:
    """Initial handshake packet, protocol version 10."""

    server_version: bytes
    connection_id: int
    capabilities: int  # 32 bits
    charset: int
    status_flags: int
    auth_data: bytes  # the scramble, both parts, without the trailing NUL
    auth_plugin: bytes
    mariadb_capabilities: int = 0  # extended capabilities, only when MYSQL bit is clear
    auth_data_trailer: bytes = b"\x00"  # what followed the scramble's 20 bytes

    @classmethod
    def parse(cls, payload: bytes) -> Greeting:
        try:
            if payload[0] != 10:
                raise ProtocolError(f"unsupported handshake protocol version {payload[0]}")
            version, pos = read_nul_str(payload, 1)
            conn_id = int.from_bytes(payload[pos : pos + 4], "little")
            data1 = payload[pos + 4 : pos + 12]
            pos += 13  # scramble part 1 + filler
            caps = int.from_bytes(payload[pos : pos + 2], "little")
            charset = payload[pos + 2]
            status = int.from_bytes(payload[pos + 3 : pos + 5], "little")
            caps |= int.from_bytes(payload[pos + 5 : pos + 7], "little") << 16
            data_len = payload[pos + 7]
            ext = int.from_bytes(payload[pos + 14 : pos + 18], "little")
            pos += 18
        except IndexError:
            raise ProtocolError("truncated server greeting") from None
        if not caps & Capability.PROTOCOL_41:
            raise ProtocolError("server greeting without CLIENT_PROTOCOL_41")
        if caps & Capability.MYSQL:
            ext = 0
        part2_len = max(13, data_len - 8)
        part2 = payload[pos : pos + part2_len]
        pos += part2_len
        plugin = b""
        if caps & Capability.PLUGIN_AUTH:
            plugin, _ = read_nul_str(payload + b"\x00", pos)
        data = data1 + part2[:12]
        return cls(version, conn_id, caps, charset, status, data, plugin, ext, part2[12:])

    def serialize(self) -> bytes:
        part2 = self.auth_data[8:] + self.auth_data_trailer
        data_len = 8 + len(part2) if self.capabilities & Capability.PLUGIN_AUTH else 0
        ext = b"\x00" * 4
        if not self.capabilities & Capability.MYSQL:
            ext = self.mariadb_capabilities.to_bytes(4, "little")
        out = [
            b"\x0a",
            self.server_version,
            b"\x00",
            self.connection_id.to_bytes(4, "little"),
            self.auth_data[:8],
            b"\x00",
            (self.capabilities & 0xFFFF).to_bytes(2, "little"),
            bytes((self.charset,)),
            self.status_flags.to_bytes(2, "little"),
            (self.capabilities >> 16).to_bytes(2, "little"),
            bytes((data_len,)),
            b"\x00" * 6,
            ext,
            part2,
        ]
        if self.capabilities & Capability.PLUGIN_AUTH:
            out += [self.auth_plugin, b"\x00"]
        return b"".join(out)

    def for_clients(self, stripped: int, added: int) -> Greeting:
        """The greeting the proxy shows its clients: some bits off, some on, and no
        MariaDB extended capabilities (progress reports, metadata cache, bulk...)."""
        return replace(
            self, capabilities=(self.capabilities & ~stripped) | added, mariadb_capabilities=0
        )


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """The parts of HandshakeResponse41 the proxy needs; `payload` is kept for relaying."""

    capabilities: int
    max_packet: int
    charset: int
    user: bytes
    database: bytes | None
    auth_plugin: bytes | None
    payload: bytes

    @property
    def is_ssl_request(self) -> bool:
        return len(self.payload) == SSL_REQUEST_LEN and bool(self.capabilities & Capability.SSL)

    @classmethod
    def parse(cls, payload: bytes) -> HandshakeResponse:
        if len(payload) < SSL_REQUEST_LEN:
            raise ProtocolError(f"handshake response too short ({len(payload)} bytes)")
        caps = int.from_bytes(payload[:4], "little")
        if not caps & Capability.PROTOCOL_41:
            raise ProtocolError("client without CLIENT_PROTOCOL_41 (pre-4.1 clients unsupported)")
        max_packet = int.from_bytes(payload[4:8], "little")
        charset = payload[8]
        if len(payload) == SSL_REQUEST_LEN:
            return cls(caps, max_packet, charset, b"", None, None, payload)
        user, pos = read_nul_str(payload, SSL_REQUEST_LEN)
        if caps & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA:
            _, pos = read_lenenc_bytes(payload, pos)
        elif caps & Capability.SECURE_CONNECTION:
            pos += 1 + payload[pos] if pos < len(payload) else 0
        else:
            _, pos = read_nul_str(payload, pos)
        database = plugin = None
        if caps & Capability.CONNECT_WITH_DB and pos < len(payload):
            database, pos = read_nul_str(payload, pos)
        if caps & Capability.PLUGIN_AUTH and pos < len(payload):
            plugin, pos = read_nul_str(payload, pos)
        if pos > len(payload):
            raise ProtocolError("truncated handshake response")
        return cls(caps, max_packet, charset, user, database or None, plugin, payload)

    def relayed(self, stripped: int) -> bytes:
        """The payload to forward to the backend: capability bits off, no MariaDB
        extended capabilities (we advertised none)."""
        caps = (self.capabilities & ~stripped).to_bytes(4, "little")
        return caps + self.payload[4:28] + b"\x00\x00\x00\x00" + self.payload[SSL_REQUEST_LEN:]
