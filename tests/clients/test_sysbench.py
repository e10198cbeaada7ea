"""sysbench oltp_read_write (default --db-ps-mode: server-side prepared statements) through
the proxy: every transaction succeeds."""

from __future__ import annotations

import pytest
from client_workload import Endpoint

from bench.proxy_bench import prepare_sysbench, run_sysbench
from proxy.managed_mariadb import MariaDBServer

pytestmark = pytest.mark.mariadb


def test_oltp_read_write_without_errors(target: Endpoint, mariadb: MariaDBServer) -> None:
    prepare_sysbench(mariadb)
    try:
        res = run_sysbench("oltp_read_write", target.host, target.port, threads=4, seconds=10)
    finally:
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS sbtest")
    assert res.queries > 0, res.output
    assert (res.errors, res.reconnects) == (0, 0), res.output
    assert "FATAL" not in res.output
