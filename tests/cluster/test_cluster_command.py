"""`wsrepctl cluster up` says at once why a node could not start, instead of waiting for
its timeout: here, a cluster whose backends already hold replicated data (restarting
with data needs a state transfer)."""

from __future__ import annotations

import time
from pathlib import Path

import pymysql

from proxy.managed_mariadb import free_port_run
from tests.cluster.conftest import _wsrepctl

FAIL_FAST = 60.0  # seconds: far below cluster up's own 180 s timeout


def test_up_on_a_used_cluster_dir_fails_fast_with_the_nodes_reason(tmp_path: Path) -> None:
    state = tmp_path / "c"
    port = free_port_run(1)
    up = ["cluster", "up", "--nodes", "1", "--dir", str(state), "--base-port", str(port)]
    first = _wsrepctl(*up, "--detach", timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    try:
        with pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True) as c:
            c.cursor().execute("CREATE DATABASE used")
    finally:
        down = _wsrepctl("cluster", "down", "--dir", str(state), timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr

    started = time.monotonic()
    again = _wsrepctl(*up, "--detach", timeout=240)
    took = time.monotonic() - started
    assert again.returncode == 1
    assert "node1 exited with status" in again.stderr
    assert "needs a state transfer" in again.stderr, again.stderr
    assert took < FAIL_FAST, f"cluster up took {took:.0f}s to report a node that exited"
