"""The causal barrier for causal reads: Galera's `gcs_caused()`.

`CausalBarrier.seqno()` returns a seqno S such that everything the cluster had ordered
when the call began is at or below S: a node that has committed up to S has seen every
write acknowledged anywhere before the read began. S is the seqno of a marker submitted
through the group's total order (the marker is appended after every entry committed so
far, whoever leads). Every node's `ProviderCore` skips the marker like a failed write set,
so it costs a seqno and one log entry, never a decision that could differ between nodes.

Concurrent callers share markers: one runner task submits one marker per round for
every caller that arrived before the round was submitted (a marker already in flight may
have been ordered before a newer caller's read began, so late callers wait for the next).

Why a marker rather than a Raft ReadIndex query of the leader's commit point: seqnos
count payload entries only, so the group would have to map a log index to a seqno and
confirm its leadership with a heartbeat round; a marker needs nothing from the group core
(property-tested, owned elsewhere), stays correct through leader changes and partitions
(a non-primary member refuses it), and costs the same one round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from wsrep.group_node import GroupError

log = logging.getLogger("wsrep.causal")

# Not a write set (those start with b"WSET"): the same bytes from every node.
CAUSAL_MARKER = b"\x00wsrep causal read marker v1\x00"

# submit(payload, timeout) -> seqno, raising when the payload is not ordered.
Submit = Callable[[bytes, float], Awaitable[int]]


def is_causal_marker(payload: bytes) -> bool:
    return payload == CAUSAL_MARKER


class CausalBarrierError(Exception):
    """The marker was not ordered (not in a primary component, or no answer in time)."""


@dataclass(slots=True)
class _Round:
    done: trio.Event = field(default_factory=trio.Event)
    seqno: int | None = None
    error: str = ""
    waiters: int = 0


class CausalBarrier:
    """Run `run()` in a nursery; callers await `seqno()` (bound it with a timeout)."""

    def __init__(self, submit: Submit, node_name: str, submit_timeout: float = 30.0) -> None:
        self._submit = submit
        self._name = node_name
        self._timeout = submit_timeout
        self._next = _Round()
        self._wanted = trio.Event()
        self.markers = 0  # markers submitted: one per round, however many callers
        self.calls = 0  # Galera's wsrep_causal_reads status counter

    async def seqno(self) -> int:
        """A seqno at or above everything ordered cluster-wide before this call."""
        self.calls += 1
        joined = self._next
        joined.waiters += 1
        self._wanted.set()
        await joined.done.wait()
        if joined.seqno is None:
            raise CausalBarrierError(joined.error)
        return joined.seqno

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            current, self._next = self._next, _Round()
            self.markers += 1
            try:
                current.seqno = await self._submit(CAUSAL_MARKER, self._timeout)
            except GroupError as exc:  # refused (non-primary) or no answer in time
                current.error = f"{self._name}: causal barrier not ordered: {exc}"
                log.info("%s (%d waiting)", current.error, current.waiters)
            current.done.set()
