"""StageTimes: per-stage counts, averages and maxima, reported and reset."""

from __future__ import annotations

import logging
import time

import pytest

from wsrep.stage_times import StageTimes


def test_blocks_are_counted_and_timed_even_when_they_raise() -> None:
    times = StageTimes("n1 commits", every=3600)
    for _ in range(3):
        with times.stage("drain"):
            time.sleep(0.002)
    with pytest.raises(KeyError), times.stage("commit"):
        raise KeyError("x")
    line = times.report()
    assert line.startswith("n1 commits over 0s: drain 3x avg ")
    drain_avg = float(line.split("drain 3x avg ")[1].split()[0])
    assert drain_avg >= 2.0  # ms
    assert "commit 1x avg " in line
    assert times.report() == "n1 commits over 0s: "  # started over


def test_the_line_is_logged_once_the_period_is_over(caplog: pytest.LogCaptureFixture) -> None:
    times = StageTimes("n1 appliers", every=0.0)
    with caplog.at_level(logging.INFO, logger="wsrep.timing"), times.stage("apply"):
        pass
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["n1 appliers over 0s"]
