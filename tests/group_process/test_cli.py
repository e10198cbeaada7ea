"""`wsrepctl arbitrator` / `group-member` refuse bad settings with a clear message."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.group_process.conftest import REPO, free_address


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsrepctl", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--secret-file", "/nonexistent/secret"], "No such file"),
        (["--secret-file", "EMPTY"], "is empty"),
        (["--secret-file", "SECRET", "--group", "gcomm://nohost"], "expected host:port"),
        (["--secret-file", "SECRET", "--weight", "-1"], "--weight must be >= 0"),
    ],
)
def test_bad_settings_exit_2_with_the_reason(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "EMPTY").write_text("\n")
    (tmp_path / "SECRET").write_text("s3cret\n")
    args = [str(tmp_path / a) if a in ("EMPTY", "SECRET") else a for a in args]
    gcache = str(tmp_path / "gcache")
    result = run(
        "arbitrator", "--name", "arb", "--listen", free_address(), "--gcache-dir", gcache, *args
    )
    assert result.returncode == 2, result
    assert says in result.stderr


def test_a_taken_listen_address_exits_1_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "SECRET").write_text("s3cret\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = taken.getsockname()
        result = run(
            "group-member",
            "--name",
            "m",
            "--listen",
            f"{host}:{port}",
            "--secret-file",
            str(tmp_path / "SECRET"),
        )
    assert result.returncode == 1, result
    assert "in use" in result.stderr
