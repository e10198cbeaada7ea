"""A node's `[limits]` (Galera's wsrep_max_ws_rows / wsrep_max_ws_size) through the real
entry point: `wsrepctl bootstrap --config` with limits, a client through its proxy. A
transaction over a limit is rolled back at the origin with MariaDB Galera's error, and
the session and the node go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from proxy.managed_mariadb import free_port
from wsrepctl.cmd_node import read_status

MAX_ROWS = 5
UP_TIMEOUT = 120.0


@pytest.fixture
def limited_node(tmp_path: Path) -> Iterator[int]:
    """One bootstrapped node with tight limits; yields its proxy port."""
    (tmp_path / "secret").write_text("s3cret\n")
    proxy = free_port()
    (tmp_path / "node.toml").write_text(
        "[node]\n"
        'name = "limited"\n'
        f'proxy = "127.0.0.1:{proxy}"\n'
        f'group = "127.0.0.1:{free_port()}"\n'
        'secret_file = "secret"\n'
        "appliers = 1\n"
        "[backend]\n"
        'managed_dir = "db"\n'
        "[limits]\n"
        f"max_ws_rows = {MAX_ROWS}\n"
        'max_ws_size = "1M"\n'
    )
    log = (tmp_path / "node.log").open("wb")
    node = subprocess.Popen(
        [sys.executable, "-m", "wsrepctl", "bootstrap", "--config", str(tmp_path / "node.toml")],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + UP_TIMEOUT
        while (read_status(tmp_path) or {}).get("state") != "SYNCED":
            assert node.poll() is None, (tmp_path / "node.log").read_text()
            assert time.monotonic() < deadline, "node not Synced in time"
            time.sleep(0.2)
        yield proxy
    finally:
        os.kill(node.pid, signal.SIGTERM)
        try:
            node.wait(60)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        log.close()


def test_limits_refuse_what_is_over_and_keep_serving(limited_node: int) -> None:
    with pymysql.connect(
        host="127.0.0.1", port=limited_node, user="root", autocommit=True
    ) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE app")
        cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY, b LONGBLOB)")
        cur.execute("USE app")  # for the seq_ tables
        cur.execute("SHOW VARIABLES LIKE 'wsrep_max_ws_%'")
        assert dict(cur.fetchall()) == {
            "wsrep_max_ws_rows": str(MAX_ROWS),
            "wsrep_max_ws_size": str(1 << 20),
        }

        cur.execute("INSERT INTO app.t (id) SELECT seq FROM seq_1_to_5")  # at the limit: fine
        with pytest.raises(pymysql.err.MySQLError) as rows:
            cur.execute("INSERT INTO app.t (id) SELECT seq FROM seq_6_to_11")
        assert rows.value.args == (1180, "wsrep_max_ws_rows exceeded")

        conn.begin()
        cur.execute("INSERT INTO app.t VALUES (20, REPEAT('x', 2 * 1024 * 1024))")
        with pytest.raises(pymysql.err.MySQLError) as size:
            conn.commit()
        assert size.value.args[0] == 1105
        assert "Maximum writeset size exceeded" in size.value.args[1]

        cur.execute("SELECT @@in_transaction, COUNT(*), MAX(id) FROM app.t")
        assert cur.fetchone() == (0, 5, 5)  # both rolled back; the session goes on
        cur.execute("UPDATE app.t SET b = 'small' WHERE id = 1")
        cur.execute("SELECT seqno FROM wsrep.position")
        assert cur.fetchone()[0] > 0
