"""Where a path's time goes, stage by stage (drain, replicate, commit turn, ...), summed
and logged every `every` seconds as one line a human can follow; cheap enough to stay on."""

from __future__ import annotations

import logging
from time import monotonic

log = logging.getLogger("wsrep.timing")


class StageTimes:
    def __init__(self, name: str, every: float = 10.0) -> None:
        self.name = name
        self.every = every
        self._totals: dict[str, list[float]] = {}  # stage -> [count, seconds, max]
        self._since = monotonic()

    def stage(self, stage: str) -> _Timed:
        """`with times.stage("commit"): ...` adds the block's time to the stage."""
        return _Timed(self, stage)

    def add(self, stage: str, seconds: float, now: float | None = None) -> None:
        total = self._totals.get(stage)
        if total is None:
            total = self._totals[stage] = [0, 0.0, 0.0]
        total[0] += 1
        total[1] += seconds
        if seconds > total[2]:
            total[2] = seconds
        if (monotonic() if now is None else now) - self._since >= self.every:
            log.info("%s", self.report())

    def report(self) -> str:
        """Averages and maxima since the last report (then starts over)."""
        now = monotonic()
        parts = [
            f"{stage} {count:.0f}x avg {1000 * seconds / count:.1f} max {1000 * worst:.0f} ms"
            for stage, (count, seconds, worst) in self._totals.items()
        ]
        line = f"{self.name} over {now - self._since:.0f}s: " + ", ".join(parts)
        self._totals.clear()
        self._since = now
        return line


class _Timed:
    """One timed block (a plain class: a generator-based context manager costs ~4x more,
    and this runs several times per transaction)."""

    __slots__ = ("_stage", "_start", "_times")

    def __init__(self, times: StageTimes, stage: str) -> None:
        self._times = times
        self._stage = stage
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = monotonic()

    def __exit__(self, *exc: object) -> None:
        now = monotonic()
        self._times.add(self._stage, now - self._start, now)
