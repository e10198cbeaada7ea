"""Real processes killed with SIGKILL mid-write: nothing acknowledged is lost, nothing torn
is read back."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from .crash_writer import expected, open_cache

REPO = Path(__file__).resolve().parents[2]


def run_and_kill(path: Path, acks: int) -> int:
    """Start the writer, SIGKILL it after `acks` acknowledgements; the last index acked."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.gcache.crash_writer", str(path), "100000"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    last, seen, buf = 0, 0, b""
    deadline = time.monotonic() + 30
    try:
        while seen < acks and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            *lines, buf = (buf + chunk).split(b"\n")
            for line in lines:
                last, seen = int(line), seen + 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    assert seen >= acks, f"writer acknowledged only {seen} appends in 30 s"
    return last


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(5)
    for _ in range(4):
        acked = run_and_kill(tmp_path, rng.randint(20, 120))
        with open_cache(str(tmp_path)) as g:
            first, last = g.first_index(), g.last_index()
            assert last >= acked
            assert g.hard_state().delivered >= acked
            assert first > 1  # the stream was long enough to purge
            assert g.entries(first, last + 1) == [expected(i) for i in range(first, last + 1)]
            assert g.disk_bytes <= g.size + g.segment_size
