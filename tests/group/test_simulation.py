"""Thousands of random fault schedules through the deterministic simulation (see sim.py).

`WSREP_SIM_SCHEDULES` sets how many (default 2000), `WSREP_SIM_FIRST` the first seed,
`WSREP_SIM_SEED` replays one seed (the failure message prints the command).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from .sim import Schedule, Simulation, run_seed

SCHEDULES = int(os.environ.get("WSREP_SIM_SCHEDULES", "2000"))
FIRST = int(os.environ.get("WSREP_SIM_FIRST", "0"))


@pytest.fixture
def quiet() -> Iterator[None]:
    """Thousands of schedules log thousands of elections: keep only errors."""
    logger = logging.getLogger("wsrep.group")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_random_schedules(quiet: None) -> None:
    topologies: dict[str, int] = {}
    for seed in range(FIRST, FIRST + SCHEDULES):
        sim = run_seed(seed)
        topologies[sim.s.topology] = topologies.get(sim.s.topology, 0) + 1
    # every topology was exercised (the seed picks it)
    assert set(topologies) == {"3", "5", "2+arbitrator", "3-weighted"} or SCHEDULES < 4


@pytest.mark.skipif("WSREP_SIM_SEED" not in os.environ, reason="set WSREP_SIM_SEED to replay")
def test_replay() -> None:
    run_seed(int(os.environ["WSREP_SIM_SEED"]))


def test_schedules_mix_every_fault() -> None:
    kinds = set()
    for seed in range(200):
        s = Schedule.from_seed(seed)
        kinds.update(kind for _, kind, _ in s.faults)
        if s.loss:
            kinds.add("loss")
        if s.duplicate:
            kinds.add("duplicate")
    assert kinds == {"partition", "block", "crash", "pause", "loss", "duplicate"}


def test_checker_catches_divergence(quiet: None) -> None:
    """The agreement check is not vacuous: corrupt one member's history and it fails."""
    sim = Simulation(Schedule.from_seed(1))
    sim.run()
    victim = sim.nodes["n1"]
    seqno, origin, _ = victim.delivered[-1]
    victim.delivered[-1] = (seqno, origin, b"forged")
    with pytest.raises(AssertionError, match="agreement"):
        sim.check()
