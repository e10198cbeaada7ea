"""A real 3-node cluster per test module: `wsrepctl cluster up --detach` in a tmp dir,
stopped by pid through `wsrepctl cluster down`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from proxy.managed_mariadb import free_port_run

NODES = 3
INIT_SQL = """
CREATE DATABASE app;
CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64));
CREATE TABLE app.counters (id INT PRIMARY KEY, n BIGINT NOT NULL);
INSERT INTO app.t VALUES (1, 0, 'one'), (2, 0, 'two');
INSERT INTO app.counters VALUES (1, 0);
"""


@dataclass
class Cluster:
    dir: Path
    base_port: int

    def proxy(self, i: int, **kw: Any) -> pymysql.connections.Connection:
        """A client connection through node i's proxy (0-based)."""
        return pymysql.connect(
            host="127.0.0.1", port=self.base_port + i, user="root", autocommit=True, **kw
        )

    def status(self, i: int) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.dir / f"node{i + 1}" / "status.json").read_text())
        return doc

    def backend(self, i: int) -> pymysql.connections.Connection:
        """Node i's MariaDB directly, bypassing the proxy (for checks only)."""
        host, port = self.status(i)["backend"].rsplit(":", 1)
        return pymysql.connect(host=host, port=int(port), user="root", autocommit=True)

    def positions(self, nodes: Sequence[int] = range(NODES)) -> list[int]:
        """Every backend's committed seqno (`wsrep.position`, committed with the data)."""
        result = []
        for i in nodes:
            with self.backend(i) as conn, conn.cursor() as cur:
                cur.execute("SELECT seqno FROM wsrep.position")
                result.append(int(cur.fetchone()[0]))
        return result

    def wait_same_position(self, timeout: float = 30.0, nodes: Sequence[int] = range(NODES)) -> int:
        """Until every backend committed the same seqno; returns it. (Writes acknowledged
        before the call are committed at their origin, so this waits for the others.)"""
        deadline = time.monotonic() + timeout
        while True:
            seqnos = set(self.positions(nodes))
            if len(seqnos) == 1:
                return seqnos.pop()
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes at different seqnos after {timeout}s: {seqnos}")
            time.sleep(0.05)

    def fresh_status(self, i: int) -> dict[str, Any]:
        """Node i's status as written after this call (nodes report twice a second)."""
        time.sleep(0.6)
        return self.status(i)

    def checksums(self, *tables: str, nodes: Sequence[int] = range(NODES)) -> list[tuple[Any, ...]]:
        """CHECKSUM TABLE on every backend (of `nodes`), once all are at the same seqno."""
        self.wait_same_position(nodes=nodes)
        result = []
        for i in nodes:
            with self.backend(i) as conn, conn.cursor() as cur:
                cur.execute(f"CHECKSUM TABLE {', '.join(tables)}")
                result.append(tuple(cur.fetchall()))
        return result

    def node_pid(self, i: int) -> int:
        """Node i's node process (the one `cluster up` started)."""
        return int((self.dir / f"node{i + 1}" / "node.pid").read_text())

    def mariadbd_pid(self, i: int) -> int:
        """Node i's managed mariadbd."""
        return int((self.dir / f"node{i + 1}" / "db" / "mysqld.pid").read_text())

    def leader(self) -> int:
        """The node whose group member last reported leading, by its log (0-based)."""
        latest = (-1, -1)
        for i in range(NODES):
            log = (self.dir / f"node{i + 1}" / "node.log").read_text()
            for term in re.findall(r"leader of term (\d+)", log):
                latest = max(latest, (int(term), i))
        assert latest[1] >= 0, "no leader in the node logs"
        return latest[1]


# Test clusters stop with the test run, even one killed before its `cluster down`.
OWNED = ("--owner-pid", str(os.getpid()))


def _wsrepctl(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsrepctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def running_cluster(state: Path, init_sql: str | None = None) -> Iterator[Cluster]:
    """`cluster up --detach` in `state` (with `init_sql` on every backend); `down` after."""
    base = free_port_run(NODES)
    init = []
    if init_sql is not None:
        (state / "init-source.sql").write_text(init_sql)
        init = ["--init-sql", str(state / "init-source.sql")]
    up = _wsrepctl(
        "cluster", "up", "--nodes", str(NODES), "--dir", str(state / "c"),
        "--base-port", str(base), *init, "--detach", *OWNED, timeout=240,
    )  # fmt: skip
    try:
        assert up.returncode == 0, f"cluster up failed:\n{up.stdout}\n{up.stderr}"
        yield Cluster(state / "c", base)
    finally:
        down = _wsrepctl("cluster", "down", "--dir", str(state / "c"), timeout=120)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), INIT_SQL) as running:
        yield running


# 1213: certification failed, or the transaction (or its statement in flight) was aborted
# for an applier; 1205: a lock wait behind an applier timed out.
RETRYABLE = (1213, 1205)


def commit_times(
    conn: pymysql.connections.Connection, transaction: Callable[[], None], times: int
) -> int:
    """Run `transaction` (it ends with a COMMIT) until it committed `times` times, rolling
    back and retrying a RETRYABLE error; at most 20 attempts per commit. Returns the
    number of commits acknowledged."""
    commits = 0
    for _ in range(times * 20):
        if commits == times:
            break
        try:
            transaction()
            commits += 1
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in RETRYABLE:
                raise
            conn.rollback()
    return commits


def run_clients(client: Callable[[int], None], count: int, timeout: float) -> None:
    """`client(slot)` for slots 0..count-1, each in its own thread (blocking client
    libraries); fails if one is still running after `timeout` seconds or raised."""
    failures: list[BaseException] = []

    def guarded(slot: int) -> None:
        try:
            client(slot)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(slot,), daemon=True) for slot in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"a client still runs after {timeout}s"
    assert not failures, failures
