"""`wsrepctl cluster up` says at once why a node could not start, instead of waiting for
its timeout: here, a cluster whose backends already hold replicated data (restarting
with data needs a state transfer)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pymysql

from proxy.managed_mariadb import free_port_run, process_alive
from tests.cluster.conftest import OWNED, _wsrepctl
from wsrep import grastate

FAIL_FAST = 60.0  # seconds: far below cluster up's own 180 s timeout


def test_up_on_a_used_cluster_dir_fails_fast_with_the_nodes_reason(tmp_path: Path) -> None:
    state = tmp_path / "c"
    port = free_port_run(1)
    up = ["cluster", "up", "--nodes", "1", "--dir", str(state), "--base-port", str(port), *OWNED]
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


def test_nodes_stop_cleanly_when_their_owner_exits(tmp_path: Path) -> None:
    """`--owner-pid`: a cluster tied to a process (a test run, a script) stops cleanly once
    that process is gone, with no `cluster down`."""
    state = tmp_path / "c"
    port = free_port_run(1)
    owner = subprocess.Popen(["sleep", "300"])
    try:
        up = _wsrepctl(
            "cluster", "up", "--nodes", "1", "--dir", str(state), "--base-port", str(port),
            "--owner-pid", str(owner.pid), "--detach", timeout=240,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        node_pid = int((state / "node1" / "node.pid").read_text())
        assert process_alive(node_pid)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 60
    while process_alive(node_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_alive(node_pid):  # ours, by pid: leave nothing running
        _wsrepctl("cluster", "down", "--dir", str(state), timeout=60)
        raise AssertionError("the node outlived its owner by 60 s")
    saved = grastate.read(state / "node1" / grastate.FILE_NAME)
    # a clean stop wrote its state (a running or killed node's says safe_to_bootstrap 0)
    assert saved is not None and saved.safe_to_bootstrap, saved
    assert "owner process" in (state / "node1" / "node.log").read_text()
