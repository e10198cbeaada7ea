"""`wsrepctl local up --detach` / `local down`: what `./dev up` runs, through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from proxy.managed_mariadb import free_port, process_alive

pytestmark = pytest.mark.mariadb


def _wsrepctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsrepctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_local_up_serves_through_the_proxy_and_down_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "local"
    up = _wsrepctl("local", "up", "--dir", str(state), "--port", str(port), "--detach")
    try:
        assert up.returncode == 0, up.stderr
        assert f"-P {port} -u root" in up.stdout
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT @@port")
            (backend_port,) = cur.fetchone()
            assert backend_port != port  # answered by the managed server behind the proxy
        pid = int((state / "wsrepctl-local.pid").read_text())
        server_pid = int((state / "db1" / "mysqld.pid").read_text())
    finally:
        down = _wsrepctl("local", "down", "--dir", str(state))
    assert down.returncode == 0, down.stderr
    assert not process_alive(pid) and not process_alive(server_pid)


def test_down_without_up_says_so(tmp_path: Path) -> None:
    down = _wsrepctl("local", "down", "--dir", str(tmp_path))
    assert down.returncode == 1
    assert "nothing running" in down.stderr
