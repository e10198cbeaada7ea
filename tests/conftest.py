"""Shared fixtures: real mariadbd processes on free loopback ports."""

from __future__ import annotations

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
