from __future__ import annotations

import os
from pathlib import Path

import pytest

from proxy.managed_mariadb import MariaDBServer, process_alive, running_servers

pytestmark = pytest.mark.mariadb


def test_server_answers_and_stops_by_pid(tmp_path: Path) -> None:
    with running_servers(tmp_path, 2, {"auto-increment-increment": "3"}) as (a, b):
        assert a.port != b.port
        for srv in (a, b):
            with srv.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT @@port, @@auto_increment_increment, VERSION()")
                port, inc, version = cur.fetchone()
                assert port == srv.port
                assert inc == 3
                assert "MariaDB" in version
        pids = [a.pid, b.pid]
    assert all(pid is not None and not process_alive(pid) for pid in pids)
    assert not (tmp_path / "db1").exists()


def test_kill_then_restart_keeps_data(tmp_path: Path) -> None:
    srv = MariaDBServer(tmp_path / "db", name="db")
    try:
        srv.start()
        with srv.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE keep")
            cur.execute("CREATE TABLE keep.t (id INT PRIMARY KEY) ENGINE=InnoDB")
            cur.execute("INSERT INTO keep.t VALUES (1), (2)")
        pid = srv.pid
        srv.kill()
        assert pid is not None and not process_alive(pid)
        srv.start()
        with srv.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM keep.t")
            assert cur.fetchone() == (2,)
    finally:
        srv.destroy()
    assert not os.path.exists(srv.datadir)
