"""Real clients against `wsrepctl proxy`, run as a subprocess in front of the session MariaDB.

`WSREP_CLIENT_TESTS_VIA=direct|relay|proxy` (default proxy) picks what the tests talk to:
`direct` and `relay` (bench/bare_relay.py) check the tests themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ holds the process runner shared with the bench
    sys.path.insert(0, str(ROOT))

from client_workload import Endpoint  # noqa: E402

from bench.proxy_bench import proxy_process, relay_process  # noqa: E402
from proxy.managed_mariadb import MariaDBServer  # noqa: E402
from wsrepctl.service_process import ServiceProcess  # noqa: E402

VIA = os.environ.get("WSREP_CLIENT_TESTS_VIA", "proxy")
assert VIA in ("direct", "relay", "proxy"), f"WSREP_CLIENT_TESTS_VIA={VIA!r}"


@pytest.fixture(scope="session")
def _service(
    mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess | None]:
    if VIA == "direct":
        yield None
        return
    log = tmp_path_factory.mktemp("clients") / f"{VIA}.log"
    backend = (mariadb.host, mariadb.port)
    service = proxy_process(backend, log) if VIA == "proxy" else relay_process(backend, log)
    service.start()
    try:
        yield service
    finally:
        service.stop_cleanly()


@pytest.fixture(scope="session")
def target(_service: ServiceProcess | None, mariadb: MariaDBServer) -> Endpoint:
    """The address the clients under test connect to."""
    if _service is None:
        return Endpoint(mariadb.host, mariadb.port)
    return Endpoint(_service.host, _service.port)


@pytest.fixture(autouse=True)
def _service_survives(_service: ServiceProcess | None) -> Iterator[None]:
    yield
    if _service is not None:
        assert _service.alive, f"{_service.name} died during the test:\n{_service.tail()}"


@pytest.fixture(scope="session")
def direct(mariadb: MariaDBServer) -> Endpoint:
    """MariaDB itself: what the application would see without the proxy."""
    return Endpoint(mariadb.host, mariadb.port)


@pytest.fixture(scope="session")
def tls_target(
    mariadb: MariaDBServer, tls_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoint]:
    """A second proxy that offers TLS to its clients."""
    if VIA != "proxy":
        pytest.skip("TLS is the proxy's: nothing to test direct or through the bare relay")
    cert, key = tls_files
    service = proxy_process(
        (mariadb.host, mariadb.port),
        tmp_path_factory.mktemp("clients-tls") / "proxy-tls.log",
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key)],
    )
    service.start()
    try:
        yield Endpoint(service.host, service.port)
        assert service.alive, service.tail()
    finally:
        service.stop_cleanly()
