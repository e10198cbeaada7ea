"""Reconnect delays: exponential with jitter, so restarted members do not dial in lockstep."""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self, initial: float, maximum: float, rng: random.Random, factor: float = 2.0
    ) -> None:
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._rng = rng
        self._current = initial

    def next(self) -> float:
        """The next delay, somewhere in [d/2, d] for a d that grows up to `maximum`."""
        delay = self._current
        self._current = min(self._maximum, self._current * self._factor)
        return self._rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._current = self._initial
