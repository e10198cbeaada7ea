"""A proxy with the node's wsrep interceptor and admission in front of the session
MariaDB, in process, and the health endpoint, both served in the test's nursery."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from status_testlib import NODE_VARIABLES, synced_status

from proxy.admission import NodeAdmission
from proxy.health import HealthConfig, serve_health
from proxy.managed_mariadb import MariaDBServer
from proxy.server import ProxyConfig, ProxyServer
from proxy.wsrep_status import WsrepInterceptor, status_interceptor
from wsrep.ordering import OrderingGate
from wsrep.status import NodeStatus


class StatusBox:
    """The provider's snapshot, which a test changes as the node's state changes."""

    def __init__(self) -> None:
        self._status: NodeStatus = synced_status()
        self.admission: NodeAdmission | None = None

    def __call__(self) -> NodeStatus:
        return self._status

    @property
    def status(self) -> NodeStatus:
        return self._status

    @status.setter
    def status(self, value: NodeStatus) -> None:
        """A new state: admission looks at every session again, as on a view change."""
        self._status = value
        if self.admission is not None:
            self.admission.changed()


async def _no_barrier() -> int:
    await trio.sleep_forever()  # no group here: a causal wait times out
    raise AssertionError


@pytest.fixture
def node_status() -> StatusBox:
    return StatusBox()


@pytest.fixture
async def wsrep_proxy(
    mariadb: MariaDBServer, nursery: trio.Nursery, node_status: StatusBox
) -> tuple[WsrepInterceptor, int, ProxyServer]:
    """(interceptor, port, server) of an in-process proxy answering wsrep status itself."""
    interceptor = status_interceptor(node_status, lambda s: NODE_VARIABLES.system_variables())
    admission = NodeAdmission(
        lambda: node_status().ready, interceptor, _no_barrier, OrderingGate(0), causal_timeout=1
    )
    node_status.admission = admission
    config = ProxyConfig(
        "127.0.0.1", 0, mariadb.host, mariadb.port, interceptor=interceptor, admission=admission
    )
    server = ProxyServer(config)
    port = await nursery.start(server.serve)
    return interceptor, port, server


@pytest.fixture
async def health_port(nursery: trio.Nursery, node_status: StatusBox) -> Callable[..., object]:
    async def start(**config: object) -> int:
        cfg = HealthConfig(port=0, **config)  # type: ignore[arg-type]
        return await nursery.start(serve_health, node_status, cfg)  # type: ignore[no-any-return]

    return start
