"""An opt-in profile of a node process: `WSREP_PROFILE=1` in the environment (cluster up
passes it on) makes the node write cProfile stats to `<state dir>/node.pstats` when it
stops (read them with `python -m pstats`). `WSREP_PROFILE=cpu` times with the process's
CPU clock instead of the wall clock: a syscall that waits (fsync, a write that wakes the
reader on a busy machine) then costs only what it burns. Off by default: cProfile slows
Python down."""

from __future__ import annotations

import contextlib
import cProfile
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "WSREP_PROFILE"

log = logging.getLogger("wsrep.node")


@contextlib.contextmanager
def profiled(state_dir: Path) -> Iterator[None]:
    if os.environ.get(ENV, "") in ("", "0"):
        yield
        return
    mode = os.environ[ENV]
    profile = cProfile.Profile(time.process_time) if mode == "cpu" else cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out = state_dir / "node.pstats"
        profile.dump_stats(out)
        log.info("profile written to %s", out)
