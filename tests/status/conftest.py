"""A proxy with the node's wsrep interceptor in front of the session MariaDB, in process,
and the health endpoint, both served in the test's nursery."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from status_testlib import NODE_VARIABLES, synced_status

from proxy.health import HealthConfig, serve_health
from proxy.managed_mariadb import MariaDBServer
from proxy.server import ProxyConfig, ProxyServer
from proxy.wsrep_status import WsrepInterceptor, status_interceptor
from wsrep.status import NodeStatus


class StatusBox:
    """The provider's snapshot, which a test changes as the node's state changes."""

    def __init__(self) -> None:
        self.status: NodeStatus = synced_status()

    def __call__(self) -> NodeStatus:
        return self.status


@pytest.fixture
def node_status() -> StatusBox:
    return StatusBox()


@pytest.fixture
async def wsrep_proxy(
    mariadb: MariaDBServer, nursery: trio.Nursery, node_status: StatusBox
) -> tuple[WsrepInterceptor, int, ProxyServer]:
    """(interceptor, port, server) of an in-process proxy answering wsrep status itself."""
    holder: list[ProxyServer] = []
    interceptor = status_interceptor(
        node_status,
        lambda session: NODE_VARIABLES.system_variables(),
        live_sessions=lambda: holder[0].sessions.keys(),
    )
    server = ProxyServer(
        ProxyConfig("127.0.0.1", 0, mariadb.host, mariadb.port, interceptor=interceptor)
    )
    holder.append(server)
    port = await nursery.start(server.serve)
    return interceptor, port, server


@pytest.fixture
async def health_port(nursery: trio.Nursery, node_status: StatusBox) -> Callable[..., object]:
    async def start(**config: object) -> int:
        cfg = HealthConfig(port=0, **config)  # type: ignore[arg-type]
        return await nursery.start(serve_health, node_status, cfg)  # type: ignore[no-any-return]

    return start
