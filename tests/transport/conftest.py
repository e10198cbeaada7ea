"""Real trio transports on free loopback ports, with a handler that records what it saw."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from wsrep.group.types import MemberId, MemberInfo
from wsrep.transport.tcp import TcpTransport, TransportConfig

SECRET = b"test cluster secret"


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Recorder:
    cluster: uuid.UUID | None = None
    up: list[MemberId] = field(default_factory=list)
    down: list[MemberId] = field(default_factory=list)
    messages: list[tuple[MemberId, bytes]] = field(default_factory=list)

    def peer_up(self, peer: MemberInfo, peer_cluster: uuid.UUID | None) -> None:
        self.up.append(peer.id)

    def peer_down(self, peer_id: MemberId) -> None:
        self.down.append(peer_id)

    def received(self, peer_id: MemberId, data: bytes) -> None:
        self.messages.append((peer_id, data))

    def cluster_uuid(self) -> uuid.UUID | None:
        return self.cluster


@dataclass
class Running:
    transport: TcpTransport
    recorder: Recorder
    scope: trio.CancelScope


@asynccontextmanager
async def running_transport(
    nursery: trio.Nursery,
    name: str,
    address: str,
    seeds: tuple[str, ...] = (),
    cluster: uuid.UUID | None = None,
    secret: bytes = SECRET,
    **options: float | int,
) -> AsyncIterator[Running]:
    config = TransportConfig(
        MemberInfo(name, address),
        secret,
        seeds=seeds,
        reconnect_initial=0.02,
        reconnect_max=0.2,
        **options,  # type: ignore[arg-type]
    )
    recorder = Recorder(cluster)
    transport = TcpTransport(config, recorder)
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await transport.run(task_status=task_status)

    await nursery.start(run)
    try:
        yield Running(transport, recorder, scope)
    finally:
        scope.cancel()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)
