"""sysbench oltp_read_write (default --db-ps-mode: server-side prepared statements) through
the proxy: every transaction succeeds."""

from __future__ import annotations

import pytest
from client_workload import Endpoint

from bench.proxy_bench import prepare_sysbench, run_sysbench
from proxy.managed_mariadb import MariaDBServer

pytestmark = pytest.mark.mariadb


def _deadlocks(mariadb: MariaDBServer) -> int:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        return int(cur.fetchone()[1])


def test_oltp_read_write_without_errors(target: Endpoint, mariadb: MariaDBServer) -> None:
    prepare_sysbench(mariadb)
    deadlocks = _deadlocks(mariadb)
    try:
        res = run_sysbench("oltp_read_write", target.host, target.port, threads=4, seconds=10)
    finally:
        deadlocks = _deadlocks(mariadb) - deadlocks
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS sbtest")
    assert res.queries > 0, res.output
    # sysbench's own threads may deadlock in InnoDB (a delete and an insert of one random
    # id): those 1213s are the server's answer, and sysbench ignores them. Every ignored
    # error must be one of them, none the proxy's.
    assert res.errors <= deadlocks and res.reconnects == 0, (deadlocks, res.output)
    assert "FATAL" not in res.output
