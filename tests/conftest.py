"""Shared fixtures: real mariadbd processes on free loopback ports."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.managed_mariadb import MariaDBServer


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """One real MariaDB for the whole run; tests use their own schemas."""
    srv = MariaDBServer(Path(tmp_path_factory.mktemp("mariadb")), name="db1")
    srv.start()
    try:
        yield srv
    finally:
        srv.destroy()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throw-away self-signed certificate and key for the proxy's TLS listener."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "proxy.crt", d / "proxy.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def schema(request: pytest.FixtureRequest, mariadb: MariaDBServer) -> Iterator[str]:
    """A fresh database on the session server, named after the test and its module."""
    module = request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    digest = hashlib.blake2b(request.node.nodeid.encode(), digest_size=4).hexdigest()
    name = re.sub(r"\W", "_", f"t_{module}_{request.node.name}")[:55] + "_" + digest
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
    yield name
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
