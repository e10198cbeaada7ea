"""Galera's flow control (gcs.fc_limit / gcs.fc_factor) as a small hysteresis gate."""

from __future__ import annotations

import math


class FlowGate:
    """Pause ordering while an apply queue is above `limit`, resume at `limit * factor`.

    Also counts the time spent paused (Galera's wsrep_flow_control_paused, in seconds).
    """

    def __init__(self, limit: int, factor: float) -> None:
        self.base_limit = limit
        self.factor = factor
        self.limit = limit
        self.resume_at = limit * factor
        self.paused = False
        self.paused_seconds = 0.0
        self._since = 0.0

    def scale(self, members: int) -> None:
        """Galera's limit grows with the group: fc_limit * sqrt(members) (every member
        may originate write sets, so each one's queue fills from more sources)."""
        self.limit = round(self.base_limit * math.sqrt(max(1, members)))
        self.resume_at = self.limit * self.factor

    def wanted(self, worst_queue: int) -> bool:
        """Whether the longest apply queue in the group calls for a pause now."""
        if self.paused:
            return worst_queue > self.resume_at
        return worst_queue > self.limit

    def set(self, paused: bool, now: float) -> bool:
        """Pause or resume at `now`; False if that was already the state."""
        if paused == self.paused:
            return False
        self.paused = paused
        if paused:
            self._since = now
        else:
            self.paused_seconds += now - self._since
        return True

    def since(self) -> float:
        """When the current pause began."""
        return self._since
