"""FlowGate: Galera's fc_limit / fc_factor hysteresis and the paused time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wsrep.group.flow_control import FlowGate


def test_pause_above_limit_resume_at_limit_times_factor() -> None:
    gate = FlowGate(limit=10, factor=0.5)
    assert not gate.wanted(10) and gate.wanted(11)
    assert gate.set(True, 1.0) and not gate.set(True, 2.0)
    assert gate.wanted(6)  # still above 10 * 0.5
    assert not gate.wanted(5)
    assert gate.set(False, 4.0)
    assert gate.paused_seconds == 3.0


def test_limit_grows_with_the_square_root_of_the_group() -> None:
    gate = FlowGate(limit=16, factor=0.5)
    gate.scale(3)
    assert gate.limit == 28 and gate.resume_at == 14
    assert not gate.wanted(28) and gate.wanted(29)
    gate.scale(1)
    assert gate.limit == 16


@given(st.lists(st.tuples(st.integers(0, 40), st.floats(0.0, 10.0)), max_size=50))
def test_paused_time_is_the_sum_of_pauses(steps: list[tuple[int, float]]) -> None:
    gate = FlowGate(limit=16, factor=1.0)
    now, expected, since = 0.0, 0.0, None
    for queue, dt in steps:
        now += dt
        if gate.set(gate.wanted(queue), now):
            if gate.paused:
                since = now
            else:
                assert since is not None
                expected += now - since
        assert gate.paused == (queue > 16)  # factor 1.0: no hysteresis band
    assert abs(gate.paused_seconds - expected) < 1e-6
