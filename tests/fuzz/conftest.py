"""`wsrepctl proxy` subprocesses to fuzz: one in front of the real session MariaDB, one in
front of a fake backend the test itself plays (a listening socket, see fuzz_wire)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ holds the process runner shared with the bench
    sys.path.insert(0, str(ROOT))

from fuzz_proxies import PROXY_OPTIONS  # noqa: E402

from bench.proxy_bench import proxy_process  # noqa: E402
from proxy.managed_mariadb import MariaDBServer  # noqa: E402
from wsrepctl.service_process import ServiceProcess  # noqa: E402


def _started(service: ServiceProcess) -> Iterator[ServiceProcess]:
    service.start()
    try:
        yield service
    finally:
        service.stop_cleanly()


@pytest.fixture(scope="session")
def proxy_to_mariadb(
    mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("fuzz") / "proxy-mariadb.log"
    yield from _started(proxy_process((mariadb.host, mariadb.port), log, extra_args=PROXY_OPTIONS))


@pytest.fixture(scope="session")
def fuzz_user(mariadb: MariaDBServer) -> bytes:
    """An account without privileges: random commands from it cannot shut the server down
    or kill other sessions."""
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'fuzz'@'127.0.0.1'")
    return b"fuzz"


@pytest.fixture(scope="session")
def fake_backend() -> Iterator[socket.socket]:
    """The listening socket of the backend the tests play."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture(scope="session")
def proxy_to_fake(
    fake_backend: socket.socket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("fuzz") / "proxy-fake.log"
    backend = fake_backend.getsockname()[:2]
    yield from _started(proxy_process(backend, log, extra_args=PROXY_OPTIONS))
