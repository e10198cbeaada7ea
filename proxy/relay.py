"""Command phase: one client command at a time, forwarded to the backend, the response
streamed back in the chunks it arrives in while the response tracker finds its end."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import NoReturn, Protocol

import trio

from proxy.auth_relay import relay_auth_exchange
from proxy.backend_client import BackendError, run_query
from proxy.packet_stream import PacketStream, PeerClosed
from proxy.protocol.constants import Capability, Command
from proxy.protocol.packet_reader import Packet
from proxy.protocol.response_tracker import NO_RESPONSE, ResponseTracker
from proxy.protocol.results import LocalReply, encode_reply, err_packet
from proxy.protocol.wire import ProtocolError, frame, read_nul_str
from proxy.session import Session
from proxy.statement_class import SqlMode

log = logging.getLogger("wsrep.proxy")

# Replication and other server-to-server commands, and ones MariaDB itself refuses.
_UNSUPPORTED = frozenset(range(256)) - {
    Command.QUIT,
    Command.INIT_DB,
    Command.QUERY,
    Command.FIELD_LIST,
    Command.REFRESH,
    Command.SHUTDOWN,
    Command.STATISTICS,
    Command.PROCESS_INFO,
    Command.PROCESS_KILL,
    Command.DEBUG,
    Command.PING,
    Command.CHANGE_USER,
    Command.STMT_PREPARE,
    Command.STMT_EXECUTE,
    Command.STMT_SEND_LONG_DATA,
    Command.STMT_CLOSE,
    Command.STMT_RESET,
    Command.SET_OPTION,
    Command.STMT_FETCH,
    Command.RESET_CONNECTION,
}

# Plain ints for the per-command comparisons (enum attribute lookups cost more).
_QUIT = int(Command.QUIT)
_INIT_DB = int(Command.INIT_DB)
_QUERY = int(Command.QUERY)
_CHANGE_USER = int(Command.CHANGE_USER)
_STMT_PREPARE = int(Command.STMT_PREPARE)
_STMT_EXECUTE = int(Command.STMT_EXECUTE)
_STMT_CLOSE = int(Command.STMT_CLOSE)
_RESET_CONNECTION = int(Command.RESET_CONNECTION)

_SQL_MODE_QUERY = "SELECT @@SESSION.sql_mode"

ER_UNKNOWN_COM_ERROR = 1047
CR_SERVER_LOST = 2013

# Answers a query in place of the backend, or returns None to let it through.
QueryInterceptor = Callable[[Session, str], LocalReply | None]


class CommitHook(Protocol):
    """Replication's hook points (`proxy.replication`): a session's backend connection
    opened; a statement is about to be forwarded (True: the hook answered it)."""

    async def session_opened(self, relay: Relay) -> None: ...

    async def before_command(self, relay: Relay, packet: Packet) -> bool: ...

    async def after_error(self, relay: Relay, response: bytes) -> bytes:
        """A response ended in an error while `relay.bf_killed` or in a transaction:
        what the client gets."""
        ...


class AdmissionHook(Protocol):
    """Admission (`proxy.admission.NodeAdmission`): asked before a command is forwarded
    unless the session's `admitted` equals `epoch` (True: the hook answered it)."""

    epoch: int

    async def check(self, relay: Relay, packet: Packet) -> bool: ...


_HOOKED = frozenset({_QUERY, _STMT_EXECUTE, _STMT_PREPARE})


class BackendLost(Exception):
    """The backend connection broke; the client has been told if it could be."""


class Relay:
    def __init__(
        self,
        client: PacketStream,
        backend: PacketStream,
        session: Session,
        interceptor: QueryInterceptor | None = None,
        commit_hook: CommitHook | None = None,
        admission: AdmissionHook | None = None,
    ) -> None:
        self.client = client
        self.backend = backend
        self.session = session
        self.interceptor = interceptor
        self.commit_hook = commit_hook
        self.admission = admission
        self.deprecate_eof = bool(session.capabilities & Capability.DEPRECATE_EOF)
        self.tracker = ResponseTracker(self.deprecate_eof)
        self.tracker.status_flags = session.status_flags
        # Replication may work on the backend connection between commands (rolling back a
        # transaction that blocks an applier): it holds `hold` meanwhile; `busy` says a
        # command is in flight.
        self.busy = False
        self.hold: trio.Event | None = None
        # Set when replication interrupted the command in flight (a brute-force abort):
        # an error ending its response goes through `CommitHook.after_error`.
        self.bf_killed = False

    async def run(self) -> None:
        """Serves commands until the client quits or a connection closes."""
        if self.commit_hook is not None:
            await self.commit_hook.session_opened(self)
        while True:
            try:
                packet = await self.client.read_packet()
            except PeerClosed:
                return
            # Another rollback may take the connection between the wake-up and our turn.
            while self.hold is not None:
                await self.hold.wait()
            self.busy = True
            if not await self._command(packet):
                return
            self.busy = False

    async def _command(self, packet: Packet) -> bool:
        """Serves one command; False when the session is over."""
        payload = packet.payload
        if not payload:
            raise ProtocolError("empty command packet")
        command = payload[0]
        session = self.session
        session.commands += 1
        if command == _STMT_EXECUTE:
            session.begin_execute(payload)
        elif command == _QUERY:
            sql = await self._begin_statement(payload)
            if self.interceptor is not None and await self._answer_locally(packet, sql):
                return True
        elif command == _STMT_PREPARE:
            await self._begin_statement(payload)
        elif command == _STMT_CLOSE:
            session.closed_statement(int.from_bytes(payload[1:5], "little"))
        elif command in _UNSUPPORTED:
            await self._refuse_command(command, packet)
            return True
        admission = self.admission
        if (
            admission is not None
            and session.admitted != admission.epoch
            and await admission.check(self, packet)
        ):
            return True
        hook = self.commit_hook
        if hook is not None and command in _HOOKED and await hook.before_command(self, packet):
            return True
        self.tracker.start(command, packet.last_seq + 1)
        await self._to_backend(packet, self.backend_bytes(packet))
        if command in NO_RESPONSE:
            return command != _QUIT
        if command == _CHANGE_USER:
            return await self._change_user(payload)
        await self._relay_response(command, packet)
        return True

    async def _begin_statement(self, payload: bytes) -> str:
        """Classifies the SQL text of a COM_QUERY/COM_STMT_PREPARE; returns it."""
        sql = payload[1:].decode("utf-8", "replace")
        if self.session.needs_sql_mode(sql):
            await self._read_sql_mode()
        self.session.begin_statement(sql)
        return sql

    async def _read_sql_mode(self) -> None:
        """Asks the backend for the session's sql_mode (for the classifier), on the
        client's own backend connection, the first time it matters (see
        `Session.needs_sql_mode`) and again after a SET changed it."""
        session = self.session
        session.sql_mode_stale = False
        try:
            result = await run_query(self.backend, _SQL_MODE_QUERY, self.deprecate_eof)
        except BackendError as exc:
            log.warning("session %d: cannot read sql_mode: %s", session.session_id, exc)
            return
        except PeerClosed:
            await self._backend_failed("lost the backend connection", -1)
        value = result[-1].rows[0][0] or b""
        session.sql_mode = SqlMode.from_sql_mode(value.decode("ascii", "replace"))

    async def _answer_locally(self, packet: Packet, sql: str) -> bool:
        assert self.interceptor is not None
        reply = self.interceptor(self.session, sql)
        if reply is None:
            return False
        await self.reply(packet, reply)
        return True

    async def reply(self, packet: Packet, reply: LocalReply) -> None:
        """Answers `packet` here; the backend never sees it."""
        await self.client.send(
            encode_reply(
                reply,
                seq=packet.last_seq + 1,
                deprecate_eof=self.deprecate_eof,
                status_flags=self.session.status_flags,
            )
        )

    async def _refuse_command(self, command: int, packet: Packet) -> None:
        try:
            name = Command(command).name
        except ValueError:
            name = "unknown"
        log.info("session %d: refused command %#04x (%s)", self.session.session_id, command, name)
        message = f"Unknown command: wsrep-proxy does not relay COM_{name} ({command:#04x})"
        await self.client.send(
            err_packet(ER_UNKNOWN_COM_ERROR, "08S01", message, packet.last_seq + 1)
        )

    def backend_bytes(self, packet: Packet) -> bytes:
        """What to send the backend for the client's command `packet` (a command, not
        LOCAL INFILE data): its own bytes, or an execute that carries again the parameter
        types the backend never got."""
        payload = packet.payload
        if payload[0] != _STMT_EXECUTE or not self.session.unsent_types:
            return packet.raw
        rewritten = self.session.execute_to_send(payload)
        return packet.raw if rewritten is None else frame(rewritten, packet.seq)

    async def _to_backend(self, packet: Packet, data: bytes | None = None) -> None:
        try:
            await self.backend.send(packet.raw if data is None else data)
        except PeerClosed:
            await self._backend_failed("lost the backend connection", packet.last_seq)

    async def _relay_response(self, command: int, packet: Packet) -> None:
        tracker = self.tracker
        backend = self.backend
        client = self.client
        while True:
            try:
                data = await backend.receive_some()
                end = tracker.feed(data)
            except PeerClosed:
                await self._backend_failed("lost the backend connection", packet.last_seq)
            except ProtocolError as exc:
                await self._backend_failed(f"malformed response ({exc})", packet.last_seq)
            if end < 0:
                await client.send(data)
                continue
            if not tracker.local_infile:
                # The state changes before the client can see the response end.
                self._after_response(command, packet.payload)
                tail = data[:end] if end < len(data) else data
                if (
                    tracker.error
                    and self.commit_hook is not None
                    and (self.bf_killed or self.session.in_transaction)
                ):
                    tail = await self.commit_hook.after_error(self, bytes(tail))
                await client.send(tail)
                if end < len(data):  # the server never sends unasked: out of step
                    await self._backend_failed(f"{len(data) - end} bytes after a response", -1)
                return
            await client.send(data)
            await self._relay_local_infile()
            tracker.resume_after_local_infile()

    async def _relay_local_infile(self) -> None:
        """Forwards the file the client sends for LOAD DATA LOCAL, up to its empty packet."""
        while True:
            packet = await self.client.read_packet()
            await self._to_backend(packet)
            if not packet.payload:
                return

    def _after_response(self, command: int, payload: bytes) -> None:
        tracker = self.tracker
        session = self.session
        ok = not tracker.error
        session.statement_done(tracker.status_flags, ok)
        if not ok:
            return
        if command == _INIT_DB:
            session.schema = payload[1:].decode("utf-8", "replace")
        elif command == _STMT_PREPARE:
            session.statement_prepared(tracker.stmt_id, tracker.params)
        elif command == _RESET_CONNECTION:
            session.reset()

    async def _change_user(self, payload: bytes) -> bool:
        user, _ = read_nul_str(payload, 1)
        schema = _change_user_schema(payload)

        def changed() -> None:
            self.session.reset(user.decode("utf-8", "replace"), schema)
            self.tracker.status_flags = self.session.status_flags

        try:
            await relay_auth_exchange(self.client, self.backend, self.session, 0, changed)
        except PeerClosed:
            await self._backend_failed("lost the backend connection", 0)
        return True

    async def _backend_failed(self, why: str, last_seq: int) -> NoReturn:
        """Ends the session: the backend connection broke or is out of step. The client
        gets an ERR if it is waiting for an answer and we are between packets."""
        session = self.session
        log.warning(
            "session %d: %s (backend thread %d), closing",
            session.session_id,
            why,
            session.backend_thread_id,
        )
        if last_seq >= 0 and self.tracker.at_packet_boundary:
            seq = max(last_seq, self.tracker.last_seq) + 1
            message = "Lost connection to backend server during query (wsrep-proxy)"
            with contextlib.suppress(PeerClosed):
                await self.client.send(err_packet(CR_SERVER_LOST, "HY000", message, seq))
        raise BackendLost()


def _change_user_schema(payload: bytes) -> str | None:
    """The schema a COM_CHANGE_USER asks for (after user and auth data)."""
    _, pos = read_nul_str(payload, 1)
    if pos < len(payload):
        pos += 1 + payload[pos]
    schema, _ = read_nul_str(payload, pos) if pos < len(payload) else (b"", 0)
    return schema.decode("utf-8", "replace") or None
