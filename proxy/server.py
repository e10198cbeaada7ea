"""The proxy's listener: one backend connection per client session.

`serve_proxy(config)` accepts clients, enforces the connection limit and the handshake
timeout, and runs each session (connection phase, then the command relay) in its own task.
Whatever goes wrong in a session closes that session only, with a log line.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import trio

from proxy.auth_relay import relay_handshake
from proxy.packet_stream import PacketStream, PeerClosed
from proxy.protocol.packet_reader import PacketTooLarge
from proxy.protocol.results import err_packet
from proxy.protocol.wire import ProtocolError
from proxy.relay import AdmissionHook, BackendLost, CommitHook, QueryInterceptor, Relay
from proxy.session import Session
from proxy.tls import server_context

log = logging.getLogger("wsrep.proxy")

ER_CON_COUNT_ERROR = 1040
ER_NET_PACKET_TOO_LARGE = 1153
ER_MALFORMED_PACKET = 1835
CR_CONN_HOST_ERROR = 2003


@dataclass
class ProxyConfig:
    listen_host: str
    listen_port: int
    backend_host: str
    backend_port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_connections: int = 1000
    handshake_timeout: float = 10.0
    max_packet_size: int = 1 << 30  # largest client packet, like max_allowed_packet
    interceptor: QueryInterceptor | None = None
    commit_hook: CommitHook | None = None  # replication (proxy.replication), if any
    admission: AdmissionHook | None = None  # 1047, causal reads (proxy.admission), if any


class ProxyServer:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.tls: ssl.SSLContext | None = None
        if config.tls_cert is not None:
            self.tls = server_context(config.tls_cert, config.tls_key or config.tls_cert)
        self.sessions: dict[int, Session] = {}
        self._ids = itertools.count(1)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        listeners = await trio.open_tcp_listeners(cfg.listen_port, host=cfg.listen_host)
        port = listeners[0].socket.getsockname()[1]
        log.info(
            "proxy listening on %s:%d (backend %s:%d, tls %s)",
            cfg.listen_host,
            port,
            cfg.backend_host,
            cfg.backend_port,
            "on" if self.tls else "off",
        )
        async with trio.open_nursery() as nursery:
            task_status.started(port)
            await trio.serve_listeners(self._session, listeners, handler_nursery=nursery)

    async def _session(self, stream: trio.SocketStream) -> None:
        sid = next(self._ids)
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:  # already gone
            await stream.aclose()
            return
        session = Session(sid, f"{host}:{port}")
        client = PacketStream(stream, self.config.max_packet_size)
        if len(self.sessions) >= self.config.max_connections:
            log.warning("session %d from %s: refused, %d connections open", sid, session.peer, sid)
            await _refuse(client, 0, ER_CON_COUNT_ERROR, "08004", "Too many connections")
            return
        self.sessions[sid] = session
        try:
            await self._run(session, client)
        except Exception:  # a bug must cost one session, never the proxy
            log.exception("session %d: unexpected error, closing", sid)
        finally:
            del self.sessions[sid]

    async def _run(self, session: Session, client: PacketStream) -> None:
        backend_stream = await self._connect_backend(session, client)
        if backend_stream is None:
            return
        backend = PacketStream(backend_stream)
        reply_seq = 2  # an ERR during the handshake follows the client's response (seq 1)
        try:
            ready = await self._handshake(session, client, backend)
            if ready is None:
                return
            client = ready
            reply_seq = 1  # an ERR in the command phase answers a command (seq 0)
            log.info(
                "%s: connected, backend thread %d%s",
                session.describe(),
                session.backend_thread_id,
                " over TLS" if session.tls else "",
            )
            cfg = self.config
            relay = Relay(client, backend, session, cfg.interceptor, cfg.commit_hook, cfg.admission)
            await relay.run()
            log.info("%s: closed after %d commands", session.describe(), session.commands)
        except PacketTooLarge as exc:
            log.warning("session %d: %s, closing", session.session_id, exc)
            message = "Got a packet bigger than 'max_allowed_packet' bytes"
            await _refuse(client, reply_seq, ER_NET_PACKET_TOO_LARGE, "08S01", message)
        except ProtocolError as exc:
            log.warning("session %d: malformed packet (%s), closing", session.session_id, exc)
            message = f"Malformed communication packet: {exc}"
            await _refuse(client, reply_seq, ER_MALFORMED_PACKET, "08S01", message)
        except PeerClosed as exc:
            log.info("session %d: connection closed (%s)", session.session_id, exc)
        except BackendLost:
            pass  # logged, and the client told, by the relay
        finally:
            await backend.aclose()
            await client.aclose()

    async def _handshake(
        self, session: Session, client: PacketStream, backend: PacketStream
    ) -> PacketStream | None:
        timeout = self.config.handshake_timeout
        with trio.move_on_after(timeout):
            return await relay_handshake(client, backend, session, self.tls)
        log.warning(
            "session %d from %s: no handshake within %.1fs, closing",
            session.session_id,
            session.peer,
            timeout,
        )
        return None

    async def _connect_backend(
        self, session: Session, client: PacketStream
    ) -> trio.SocketStream | None:
        cfg = self.config
        reason = "timed out"
        with trio.move_on_after(cfg.handshake_timeout):
            try:
                return await trio.open_tcp_stream(cfg.backend_host, cfg.backend_port)
            except OSError as exc:
                reason = exc.strerror or str(exc)
        log.warning(
            "session %d: backend %s:%d unreachable (%s)",
            session.session_id,
            cfg.backend_host,
            cfg.backend_port,
            reason,
        )
        message = f"Can't connect to MySQL server on '{cfg.backend_host}:{cfg.backend_port}'"
        await _refuse(client, 0, CR_CONN_HOST_ERROR, "HY000", f"{message} ({reason})")
        return None


async def _refuse(client: PacketStream, seq: int, code: int, sqlstate: str, message: str) -> None:
    """A last ERR packet, then close without losing it."""
    with contextlib.suppress(PeerClosed):
        await client.send(err_packet(code, sqlstate, message, seq))
    await client.linger_and_close()


async def serve_proxy(
    config: ProxyConfig, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Runs the proxy until cancelled; `task_status.started(bound_port)` once listening."""
    await ProxyServer(config).serve(task_status=task_status)
