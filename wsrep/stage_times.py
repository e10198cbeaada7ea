"""Where a path's time goes, stage by stage (drain, replicate, commit turn, ...), summed
and logged every `every` seconds as one line a human can follow; cheap enough to stay on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("wsrep.timing")


class StageTimes:
    def __init__(self, name: str, every: float = 10.0) -> None:
        self.name = name
        self.every = every
        self._totals: dict[str, list[float]] = {}  # stage -> [count, seconds, max]
        self._since = time.monotonic()

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.add(stage, time.monotonic() - start)

    def add(self, stage: str, seconds: float) -> None:
        total = self._totals.get(stage)
        if total is None:
            total = self._totals[stage] = [0, 0.0, 0.0]
        total[0] += 1
        total[1] += seconds
        total[2] = max(total[2], seconds)
        if time.monotonic() - self._since >= self.every:
            log.info("%s", self.report())

    def report(self) -> str:
        """Averages and maxima since the last report (then starts over)."""
        now = time.monotonic()
        parts = [
            f"{stage} {count:.0f}x avg {1000 * seconds / count:.1f} max {1000 * worst:.0f} ms"
            for stage, (count, seconds, worst) in self._totals.items()
        ]
        line = f"{self.name} over {now - self._since:.0f}s: " + ", ".join(parts)
        self._totals.clear()
        self._since = now
        return line
