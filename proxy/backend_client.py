"""A small async MySQL client for the proxy's own use (appliers, status, capture).

Text protocol only: `query(sql)` runs one statement (or several, separated by `;`) and
returns rows as tuples of raw bytes (None for NULL), exactly what the server sent; the
caller decides how to decode (`proxy.protocol.text_result` reads the replies). Server
errors raise `BackendError` with the server's code, SQLSTATE and message; the connection
stays usable after them.
"""

from __future__ import annotations

import logging
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
    ERR_HEADER,
    UTF8MB4_GENERAL_CI,
    Capability,
    Command,
    ServerStatus,
)
from proxy.protocol.handshake import Greeting
from proxy.protocol.results import ErrPacket, OkPacket
from proxy.protocol.text_result import QueryResult, TextResultReader
from proxy.protocol.wire import ProtocolError, frame, lenenc_bytes, read_nul_str

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
_MORE_RESULTS = int(ServerStatus.MORE_RESULTS_EXISTS)  # a plain int: IntFlag ops are slow


class BackendError(Exception):
    """An ERR packet from the server (or the connection failing, code 2013)."""

    def __init__(self, code: int, sqlstate: str, message: str) -> None:
        super().__init__(f"({code}, {sqlstate}) {message}")
        self.code = code
        self.sqlstate = sqlstate
        self.message = message


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
        await self._acquire()
        try:
            return await run_query(self.stream, sql, self._deprecate_eof)
        finally:
            self._lock.release()

    async def ping(self) -> None:
        await self._acquire()
        try:
            await self.stream.send(frame(bytes((Command.PING,)), 0))
            packet = await self.stream.read_packet()
            _raise_if_err(packet.payload)
        finally:
            self._lock.release()

    async def _acquire(self) -> None:
        """The connection's lock, without the scheduler round trip trio's `acquire`
        always takes (a checkpoint) when nobody holds it: the command waits for its
        answer anyway."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()


async def run_query(stream: PacketStream, sql: str, deprecate_eof: bool) -> list[QueryResult]:
    """COM_QUERY on any connection in the command phase (the proxy also uses it on a
    client session's backend connection); one result per statement."""
    await stream.send(frame(bytes((Command.QUERY,)) + sql.encode(), 0))
    results = []
    while True:
        result = await read_result(stream, deprecate_eof)
        results.append(result)
        if not result.status_flags & _MORE_RESULTS:
            return results


async def read_result(stream: PacketStream, deprecate_eof: bool) -> QueryResult:
    """One text-protocol result: OK, or columns and rows. ERR raises BackendError."""
    reader = TextResultReader(deprecate_eof)
    while True:
        outcome = reader.read(stream.reader)
        if outcome is None:
            await stream.receive_more()
        elif isinstance(outcome, QueryResult):
            return outcome
        elif isinstance(outcome, ErrPacket):
            raise BackendError(outcome.code, outcome.sqlstate, outcome.message)
        else:  # LOAD DATA LOCAL: refuse with an empty "file"; OK or ERR follows
            await stream.send(frame(b"", outcome.seq))


def _raise_if_err(payload: bytes) -> None:
    if payload[:1] == bytes((ERR_HEADER,)):
        err = ErrPacket.parse(payload)
        raise BackendError(err.code, err.sqlstate, err.message)
    if not payload:
        raise ProtocolError("empty packet from the server")
