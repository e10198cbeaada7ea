"""The `clustercheck` HTTP endpoint HAProxy uses to route only to synced nodes.

Same answers as Percona's/MariaDB's `clustercheck` script (any path, GET or HEAD):
`200` "Galera Cluster Node is synced." when `wsrep_local_state` is 4 (Synced), or 2
(Donor/Desynced) if `available_when_donor`; `503` "Galera Cluster Node is not synced."
otherwise. One request per connection, then close.

`HeadReader` is the sans-I/O part (bytes in, a request head or an error out, with limits);
`serve_health` is the trio driver. A stranger's garbage gets a 400 and a closed
connection; a silent client is dropped after `read_timeout`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from wsrep.node_state import NodeState
from wsrep.status import NodeStatus

log = logging.getLogger("wsrep.health")

MAX_HEAD = 8192  # request line and headers together
MAX_HEADERS = 64
SYNCED_BODY = "Galera Cluster Node is synced.\r\n"
NOT_SYNCED_BODY = "Galera Cluster Node is not synced.\r\n"
_METHODS = frozenset({"GET", "HEAD"})
_REASONS = {
    200: "OK",
    400: "Bad Request",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]


class HeadReader:
    """Collects one request head (up to the blank line) from the bytes fed to it."""

    def __init__(self, max_head: int = MAX_HEAD) -> None:
        self.max_head = max_head
        self._buf = bytearray()

    def feed(self, data: bytes) -> RequestHead | None:
        """The head once complete, None while more bytes are needed; `BadRequest` if the
        bytes cannot be an HTTP/1.x request head within the limits."""
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            end = self._buf.find(b"\n\n")  # bare LF line ends, as RFC 9112 tolerates
        if end < 0:
            if len(self._buf) > self.max_head:
                raise BadRequest(431, f"request head longer than {self.max_head} bytes")
            return None
        if end > self.max_head:
            raise BadRequest(431, f"request head longer than {self.max_head} bytes")
        return parse_head(bytes(self._buf[:end]))

    def eof(self) -> None:
        """The client closed before a complete head."""
        raise BadRequest(400, "connection closed inside the request head")


def parse_head(raw: bytes) -> RequestHead:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "non-ASCII bytes in the request head") from None
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not method.isalpha() or not method.isupper():
        raise BadRequest(400, "malformed method")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(400, "unsupported HTTP version")
    if any(c.isspace() or not c.isprintable() for c in target):
        raise BadRequest(400, "malformed request target")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, f"more than {MAX_HEADERS} header fields")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or not name.isprintable():
            raise BadRequest(400, "malformed header field")
        headers.append((name.lower(), value.strip()))
    return RequestHead(method, target, version, tuple(headers))


def is_available(status: NodeStatus, available_when_donor: bool = False) -> bool:
    """clustercheck's rule, from `wsrep_local_state`."""
    if status.state is NodeState.SYNCED:
        return True
    return available_when_donor and status.state in (NodeState.DONOR, NodeState.DESYNCED)


def response(status: int, body: str, *, head_only: bool = False) -> bytes:
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: text/plain\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "\r\n"
    ).encode()
    return head if head_only else head + payload


def answer(head: RequestHead, status: NodeStatus, available_when_donor: bool = False) -> bytes:
    """The whole response to a request head, given the node's status."""
    if head.method not in _METHODS:
        return response(405, "Only GET and HEAD are served.\r\n")
    head_only = head.method == "HEAD"
    if is_available(status, available_when_donor):
        return response(200, SYNCED_BODY, head_only=head_only)
    return response(503, NOT_SYNCED_BODY, head_only=head_only)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    host: str = "127.0.0.1"
    port: int = 9200  # clustercheck's usual xinetd port
    available_when_donor: bool = False
    read_timeout: float = 5.0
    max_connections: int = 64


async def serve_health(
    snapshot: Callable[[], NodeStatus],
    config: HealthConfig,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves the endpoint until cancelled; `task_status.started(bound_port)`."""
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    port = listeners[0].socket.getsockname()[1]
    limiter = trio.CapacityLimiter(config.max_connections)
    log.info("health endpoint on http://%s:%d/", config.host, port)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:  # overloaded: a closed socket tells HAProxy "down"
            await stream.aclose()
            return
        try:
            await _serve_one(stream, snapshot, config)
        finally:
            limiter.release()

    async with trio.open_nursery() as nursery:
        task_status.started(port)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


def _answer_safely(
    head: RequestHead, snapshot: Callable[[], NodeStatus], available_when_donor: bool
) -> bytes:
    """A provider bug must not take the endpoint down: an unknown state is "not synced"."""
    try:
        return answer(head, snapshot(), available_when_donor)
    except Exception:
        log.exception("health: cannot read the node's status, answering 503")
        return response(503, NOT_SYNCED_BODY, head_only=head.method == "HEAD")


async def _serve_one(
    stream: trio.SocketStream, snapshot: Callable[[], NodeStatus], config: HealthConfig
) -> None:
    reader = HeadReader()
    reply = b""
    try:
        with trio.move_on_after(config.read_timeout) as scope:
            head = None
            while head is None:
                data = await stream.receive_some(4096)
                if not data:
                    reader.eof()
                head = reader.feed(data)
            reply = _answer_safely(head, snapshot, config.available_when_donor)
        if scope.cancelled_caught:
            log.info("health: no complete request within %.1fs, closing", config.read_timeout)
    except BadRequest as exc:
        log.info("health: bad request (%s)", exc)
        reply = response(exc.status, f"{exc}\r\n")
    except trio.BrokenResourceError:
        pass  # the client went away
    try:
        if reply:
            with trio.move_on_after(config.read_timeout):
                await stream.send_all(reply)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await stream.aclose()
