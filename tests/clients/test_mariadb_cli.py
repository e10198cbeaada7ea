"""The `mariadb` command-line client through the proxy: batch, interactive, and over TLS."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from client_workload import Endpoint

pytestmark = pytest.mark.mariadb

BATCH = """
CREATE TABLE cli_t (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2));
INSERT INTO cli_t VALUES (1, 'één', 1.50), (2, NULL, 20.25);
SELECT * FROM cli_t ORDER BY id;
SELECT COUNT(*) AS n, SUM(price) AS total FROM cli_t;
SHOW CREATE TABLE cli_t;
"""


def mariadb_cli(ep: Endpoint, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = ["mariadb", "--no-defaults", "--protocol=TCP", f"-h{ep.host}", f"-P{ep.port}", "-uroot"]
    return subprocess.run(
        [*argv, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


def test_batch_statements_match_direct(target: Endpoint, direct: Endpoint, schema: str) -> None:
    outputs = []
    for ep in (direct, target):
        res = mariadb_cli(ep, "-D", schema, "-e", "DROP TABLE IF EXISTS cli_t;" + BATCH)
        assert res.returncode == 0, res.stderr
        assert res.stderr == ""
        outputs.append(res.stdout)
    assert outputs[1] == outputs[0]
    assert "1\téén\t1.50\n2\tNULL\t20.25\n" in outputs[1]
    assert "n\ttotal\n2\t21.75\n" in outputs[1]


def test_batch_error_is_relayed_intact(target: Endpoint, direct: Endpoint, schema: str) -> None:
    sql = "CREATE TABLE dup (id INT PRIMARY KEY); INSERT INTO dup VALUES (1), (1)"
    results = []
    for ep in (direct, target):
        mariadb_cli(ep, "-D", schema, "-e", "DROP TABLE IF EXISTS dup")
        results.append(mariadb_cli(ep, "-D", schema, "-e", sql))
    assert results[1].returncode == results[0].returncode == 1
    assert results[1].stderr == results[0].stderr
    assert (
        "ERROR 1062 (23000) at line 1: Duplicate entry '1' for key 'PRIMARY'" in results[1].stderr
    )


def test_ssl_against_tls_proxy(tls_target: Endpoint, tls_files: tuple[Path, Path]) -> None:
    cert, _ = tls_files
    for ssl_args in (
        ["--ssl"],
        ["--ssl", f"--ssl-ca={cert}", "--ssl-verify-server-cert"],
    ):
        res = mariadb_cli(tls_target, *ssl_args, "-e", "status; SELECT 6*7 AS answer")
        assert res.returncode == 0, res.stderr
        assert re.search(r"SSL:\s+Cipher in use is \S+", res.stdout), res.stdout
        assert "answer\n42\n" in res.stdout


def test_plain_client_still_served_by_tls_proxy(tls_target: Endpoint) -> None:
    res = mariadb_cli(tls_target, "--skip-ssl", "-e", "status; SELECT 1 AS one")
    assert res.returncode == 0, res.stderr
    assert re.search(r"SSL:\s+Not in use", res.stdout), res.stdout
    assert "one\n1\n" in res.stdout


class Terminal:
    """The client on a pseudo-terminal, so it runs interactively (prompt, tables)."""

    def __init__(self, argv: list[str]) -> None:
        self.fd, child = os.openpty()
        env = {**os.environ, "TERM": "dumb"}
        self.proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env)
        os.close(child)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 20) -> str:
        """Read until `pattern` shows up; returns everything read up to it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not (found := rx.search(self.seen)):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"no {pattern!r} within {timeout}s in:\n{self.seen}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the client closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"client ended before {pattern!r}:\n{self.seen}")
            self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        before, self.seen = self.seen[: found.end()], self.seen[found.end() :]
        return before

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait(10)
        os.close(self.fd)
        return rc


def test_interactive_session(target: Endpoint, schema: str) -> None:
    term = Terminal(
        ["mariadb", "--no-defaults", "--protocol=TCP", f"-h{target.host}", f"-P{target.port}",
         "-uroot", "-D", schema]
    )  # fmt: skip
    try:
        banner = term.expect(rf"MariaDB \[{schema}\]> ")
        assert "Welcome to the MariaDB monitor" in banner
        term.send("SELECT 6*7 AS answer, 'ok' AS word;")
        table = term.expect(r"1 row in set.*\n")
        assert re.search(r"\| answer \| word \|\n\+-+\+-+\+\n\|\s+42 \| ok\s+\|", table), table
        term.expect(rf"MariaDB \[{schema}\]> ")
        term.send("SELEC 1;")
        assert "ERROR 1064 (42000)" in term.expect(rf"MariaDB \[{schema}\]> ")
        term.send("quit")
        term.expect("Bye")
        assert term.proc.wait(10) == 0
    finally:
        term.close()
