"""Thousands of random fault schedules through the deterministic simulation (see sim.py).

`WSREP_SIM_SCHEDULES` sets how many (default 2000), `WSREP_SIM_FIRST` the first seed,
`WSREP_SIM_SEED` replays one seed (the failure message prints the command).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsrep.group.types import MemberInfo

from .sim import FAULT_PHASE, Schedule, Simulation, run_seed

SCHEDULES = int(os.environ.get("WSREP_SIM_SCHEDULES", "2000"))
FIRST = int(os.environ.get("WSREP_SIM_FIRST", "0"))


@pytest.fixture(scope="module", autouse=True)
def quiet() -> Iterator[None]:
    """Thousands of schedules log thousands of elections: keep only errors."""
    logger = logging.getLogger("wsrep.group")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_random_schedules() -> None:
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
    assert kinds == {"partition", "block", "crash", "pause", "leave", "loss", "duplicate"}


def test_checker_catches_divergence() -> None:
    """The agreement check is not vacuous: corrupt one member's history and it fails."""
    sim = Simulation(Schedule.from_seed(1))
    sim.run()
    victim = sim.nodes["n1"]
    seqno, origin, _ = victim.delivered[-1]
    victim.delivered[-1] = (seqno, origin, b"forged")
    with pytest.raises(AssertionError, match="agreement"):
        sim.check()


IDS = ("n0", "n1", "n2", "n3", "n4")


@st.composite
def fault_lists(draw: st.DrawFn) -> list[tuple[float, str, tuple]]:
    faults = []
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.floats(0.3, FAULT_PHASE - 0.1))
        length = draw(st.floats(0.05, 4.0))
        kind = draw(st.sampled_from(("partition", "block", "crash", "pause")))
        if kind == "partition":
            args: tuple = (
                tuple(draw(st.sets(st.sampled_from(IDS), min_size=1, max_size=2))),
                length,
            )
        elif kind == "block":
            a, b = draw(st.lists(st.sampled_from(IDS), min_size=2, max_size=2, unique=True))
            args = (a, b, length)
        else:
            args = (draw(st.sampled_from(IDS)), length)
        faults.append((at, kind, args))
    return sorted(faults)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32),
    fault_lists(),
    st.sampled_from((0.0, 0.05, 0.3)),
    st.sampled_from((0.0, 0.1)),
)
def test_hypothesis_fault_schedules(
    seed: int, faults: list[tuple[float, str, tuple]], loss: float, duplicate: float
) -> None:
    """Hypothesis picks the faults (and shrinks a failing list to the few that matter)."""
    infos = [MemberInfo(i, f"127.0.0.1:{4001 + n}") for n, i in enumerate(IDS)]
    Simulation(Schedule(seed, "5", infos, loss, duplicate, (0.001, 0.1), faults)).run()


def test_checker_catches_a_view_out_of_place() -> None:
    sim = Simulation(Schedule.from_seed(1))
    sim.run()
    victim = sim.nodes["n1"]
    conf_id = max(victim.view_positions)
    victim.view_positions[conf_id] += 1
    with pytest.raises(AssertionError, match=f"view {conf_id} came after"):
        sim.check()
