"""Proxies for the integration tests: `wsrepctl proxy` subprocesses (the real entry point)
and in-process ones (to look at session state or install an interceptor)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trio

from proxy.managed_mariadb import MariaDBServer
from proxy.server import ProxyConfig, ProxyServer

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ holds the process runner shared with the bench
    sys.path.insert(0, str(ROOT))

from bench.proxy_bench import ServiceProcess, proxy_process  # noqa: E402

StartProxy = Callable[..., ServiceProcess]


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[StartProxy]:
    """Starts `wsrepctl proxy` with extra arguments; every one must exit 0 on SIGTERM."""
    started: list[ServiceProcess] = []

    def start(backend: tuple[str, int], *args: str) -> ServiceProcess:
        service = proxy_process(backend, tmp_path / f"proxy{len(started)}.log", extra_args=args)
        started.append(service)
        service.start()
        return service

    yield start
    for service in started:
        assert service.alive, f"proxy died during the test:\n{service.tail()}"
        service.stop_cleanly()
        assert "unexpected error" not in service.log_text(), service.tail()


@pytest.fixture(scope="module")
def cli_proxy(
    mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One `wsrepctl proxy` in front of the session MariaDB for a whole test module."""
    service = proxy_process(
        (mariadb.host, mariadb.port), tmp_path_factory.mktemp("proxy") / "proxy.log"
    )
    service.start()
    try:
        yield service
        assert service.alive, service.tail()
    finally:
        service.stop_cleanly()
    assert "unexpected error" not in service.log_text(), service.tail()


@pytest.fixture
async def inproc_proxy(
    mariadb: MariaDBServer, nursery: trio.Nursery
) -> AsyncIterator[Callable[..., object]]:
    """`await inproc_proxy(**config)` -> (ProxyServer, port), served in the test's nursery."""

    async def start(**config: object) -> tuple[ProxyServer, int]:
        server = ProxyServer(ProxyConfig("127.0.0.1", 0, mariadb.host, mariadb.port, **config))  # type: ignore[arg-type]
        port = await nursery.start(server.serve)
        return server, port

    yield start
