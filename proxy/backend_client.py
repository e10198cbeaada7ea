"""A small async MySQL client for the proxy's own use (appliers, status, capture).

Text protocol only: `query(sql)` runs one statement (or several, separated by `;`) and
returns rows as tuples of raw bytes (None for NULL), exactly what the server sent; the
caller decides how to decode. Server errors raise `BackendError` with the server's code,
SQLSTATE and message; the connection stays usable after them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType

import trio

from proxy.packet_stream import PacketStream
from proxy.protocol.auth import (
    CLIENT_ED25519,
    NATIVE_PASSWORD,
    ed25519_password,
    native_password,
)
from proxy.protocol.constants import (
    EOF_HEADER,
    ERR_HEADER,
    LOCAL_INFILE_HEADER,
    OK_HEADER,
    UTF8MB4_GENERAL_CI,
    Capability,
    Command,
    ServerStatus,
)
from proxy.protocol.handshake import Greeting
from proxy.protocol.packet_reader import Packet
from proxy.protocol.results import Column, ErrPacket, OkPacket, Row, parse_text_row
from proxy.protocol.wire import ProtocolError, frame, lenenc_bytes, read_lenenc_int, read_nul_str

log = logging.getLogger("wsrep.backend_client")

DEFAULT_CAPABILITIES = (
    Capability.MYSQL
    | Capability.LONG_FLAG
    | Capability.PROTOCOL_41
    | Capability.TRANSACTIONS
    | Capability.SECURE_CONNECTION
    | Capability.MULTI_STATEMENTS
    | Capability.MULTI_RESULTS
    | Capability.PS_MULTI_RESULTS
    | Capability.PLUGIN_AUTH
    | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capability.DEPRECATE_EOF
)
_MAX_PACKET = 1 << 30


class BackendError(Exception):
    """An ERR packet from the server (or the connection failing, code 2013)."""

    def __init__(self, code: int, sqlstate: str, message: str) -> None:
        super().__init__(f"({code}, {sqlstate}) {message}")
        self.code = code
        self.sqlstate = sqlstate
        self.message = message


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: tuple[Column, ...] = ()
    rows: list[Row] = field(default_factory=list)
    affected_rows: int = 0
    last_insert_id: int = 0
    status_flags: int = 0
    warnings: int = 0

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns)


class BackendClient:
    """One connection; use `await BackendClient.connect(...)` and `aclose()` (or
    `async with`). Commands run one at a time; concurrent use is an error."""

    def __init__(self, stream: PacketStream, greeting: Greeting, capabilities: int) -> None:
        self.stream = stream  # for callers speaking commands this class does not wrap
        self.greeting = greeting
        self.capabilities = capabilities
        self.thread_id = greeting.connection_id
        self._deprecate_eof = bool(capabilities & Capability.DEPRECATE_EOF)
        self._lock = trio.StrictFIFOLock()

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        user: str,
        password: str = "",
        database: str | None = None,
        capabilities: int = DEFAULT_CAPABILITIES,
    ) -> BackendClient:
        """`capabilities` are what the client asks for (the server may grant fewer)."""
        stream = PacketStream(await trio.open_tcp_stream(host, port), _MAX_PACKET)
        try:
            return await cls._handshake(
                stream, user.encode(), password.encode(), database, capabilities
            )
        except BaseException:
            await stream.aclose()
            raise

    @classmethod
    async def _handshake(
        cls,
        stream: PacketStream,
        user: bytes,
        password: bytes,
        database: str | None,
        capabilities: int,
    ) -> BackendClient:
        packet = await stream.read_packet()
        _raise_if_err(packet.payload)
        greeting = Greeting.parse(packet.payload)
        caps = capabilities & greeting.capabilities | Capability.PROTOCOL_41
        if database:
            caps |= Capability.CONNECT_WITH_DB
        auth = native_password(password, greeting.auth_data)
        payload = [
            caps.to_bytes(4, "little"),
            _MAX_PACKET.to_bytes(4, "little"),
            bytes((UTF8MB4_GENERAL_CI,)),
            b"\x00" * 23,
            user + b"\x00",
            lenenc_bytes(auth),
        ]
        if database:
            payload.append(database.encode() + b"\x00")
        payload.append(NATIVE_PASSWORD + b"\x00")
        await stream.send(frame(b"".join(payload), packet.seq + 1))
        packet = await stream.read_packet()
        if packet.payload[:1] == b"\xfe":  # auth switch request: plugin name, then data
            plugin, pos = read_nul_str(packet.payload, 1)
            scramble = packet.payload[pos:]
            if plugin == NATIVE_PASSWORD:
                reply = native_password(password, scramble.rstrip(b"\x00"))
            elif plugin == CLIENT_ED25519:
                reply = ed25519_password(password, scramble)
            else:
                raise BackendError(1251, "08004", f"auth plugin {plugin.decode()} unsupported")
            await stream.send(frame(reply, packet.seq + 1))
            packet = await stream.read_packet()
        _raise_if_err(packet.payload)
        OkPacket.parse(packet.payload)
        return cls(stream, greeting, caps & greeting.capabilities)

    async def __aenter__(self) -> BackendClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            with trio.move_on_after(1):
                await self.stream.send(frame(bytes((Command.QUIT,)), 0))
        except ConnectionError:
            pass
        await self.stream.aclose()

    async def query(self, sql: str) -> QueryResult:
        """Runs `sql` and returns its (last) result."""
        return (await self.query_all(sql))[-1]

    async def query_all(self, sql: str) -> list[QueryResult]:
        """Runs `sql` (one or more statements) and returns one result per statement.
        The first failing statement raises BackendError; the ones before it ran."""
        async with self._lock:
            return await run_query(self.stream, sql, self._deprecate_eof)

    async def ping(self) -> None:
        async with self._lock:
            await self.stream.send(frame(bytes((Command.PING,)), 0))
            packet = await self.stream.read_packet()
            _raise_if_err(packet.payload)


async def run_query(stream: PacketStream, sql: str, deprecate_eof: bool) -> list[QueryResult]:
    """COM_QUERY on any connection in the command phase (the proxy also uses it on a
    client session's backend connection); one result per statement."""
    await stream.send(frame(bytes((Command.QUERY,)) + sql.encode(), 0))
    results = []
    while True:
        result = await read_result(stream, deprecate_eof)
        results.append(result)
        if not result.status_flags & ServerStatus.MORE_RESULTS_EXISTS:
            return results


async def read_result(stream: PacketStream, deprecate_eof: bool) -> QueryResult:
    """One text-protocol result: OK, or columns and rows. ERR raises BackendError."""
    packet = await stream.read_packet()
    _raise_if_err(packet.payload)
    if packet.payload[:1] == bytes((LOCAL_INFILE_HEADER,)):  # refuse: send an empty "file"
        await stream.send(frame(b"", packet.seq + 1))
        packet = await stream.read_packet()
        _raise_if_err(packet.payload)
    if packet.payload[:1] == bytes((OK_HEADER,)):
        ok = OkPacket.parse(packet.payload)
        return QueryResult(
            (), [], ok.affected_rows, ok.last_insert_id, ok.status_flags, ok.warnings
        )
    count, _ = read_lenenc_int(packet.payload, 0)
    columns = tuple([Column.parse((await stream.read_packet()).payload) for _ in range(count)])
    if not deprecate_eof:
        await stream.read_packet()
    rows = []
    while True:
        packet = await stream.read_packet()
        if _is_terminator(packet, deprecate_eof):
            status, warnings = _terminator_status(packet.payload, deprecate_eof)
            return QueryResult(columns, rows, 0, 0, status, warnings)
        _raise_if_err(packet.payload)
        rows.append(parse_text_row(packet.payload, count))


def _raise_if_err(payload: bytes) -> None:
    if payload[:1] == bytes((ERR_HEADER,)):
        err = ErrPacket.parse(payload)
        raise BackendError(err.code, err.sqlstate, err.message)
    if not payload:
        raise ProtocolError("empty packet from the server")


def _is_terminator(packet: Packet, deprecate_eof: bool) -> bool:
    limit = 0xFFFFFF if deprecate_eof else 9
    return packet.payload[:1] == bytes((EOF_HEADER,)) and len(packet.payload) < limit


def _terminator_status(payload: bytes, deprecate_eof: bool) -> tuple[int, int]:
    if deprecate_eof:
        ok = OkPacket.parse(payload)
        return ok.status_flags, ok.warnings
    return int.from_bytes(payload[3:5], "little"), int.from_bytes(payload[1:3], "little")
