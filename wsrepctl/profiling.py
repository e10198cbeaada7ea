"""An opt-in profile of a node process: `WSREP_PROFILE=1` in the environment (cluster up
passes it on) makes the node write cProfile stats to `<state dir>/node.pstats` when it
stops (read them with `python -m pstats`). Off by default: cProfile slows Python down."""

from __future__ import annotations

import contextlib
import cProfile
import logging
import os
from collections.abc import Iterator
from pathlib import Path

ENV = "WSREP_PROFILE"

log = logging.getLogger("wsrep.node")


@contextlib.contextmanager
def profiled(state_dir: Path) -> Iterator[None]:
    if os.environ.get(ENV, "") in ("", "0"):
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out = state_dir / "node.pstats"
        profile.dump_stats(out)
        log.info("profile written to %s", out)
