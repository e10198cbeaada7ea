"""GroupMember: one member of the group, as a sans-I/O Raft state machine (API first draft)."""

from __future__ import annotations

import enum

from wsrep.group.log import LogStorage
from wsrep.group.types import Action, GroupConfig, GroupStats, MemberId, MemberInfo, View


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class GroupMember:
    """Feed it peers, bytes, submissions and ticks; drain `take_actions()` after every call.

    All times are the driver's monotonic clock in seconds; the core never reads a clock.
    """

    def __init__(
        self, config: GroupConfig, storage: LogStorage, now: float, rng_seed: int = 0
    ) -> None:
        raise NotImplementedError

    def peer_up(self, peer: MemberInfo, now: float) -> None:
        """The transport connected to and authenticated `peer`."""
        raise NotImplementedError

    def peer_down(self, peer_id: MemberId, now: float) -> None:
        """The transport lost `peer_id` (it keeps reconnecting on its own)."""
        raise NotImplementedError

    def receive(self, sender: MemberId, data: bytes, now: float) -> None:
        """One protocol message from `sender`; malformed or foreign ones are dropped and counted."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Timers: heartbeats, elections, check-quorum, eviction, resends."""
        raise NotImplementedError

    def submit(self, payload: bytes, now: float) -> int:
        """Order `payload`; returns a token answered later by exactly one `Submitted`."""
        raise NotImplementedError

    def set_apply_queue(self, length: int, now: float) -> None:
        """How many delivered payloads this member has not applied yet (flow control)."""
        raise NotImplementedError

    def take_actions(self) -> list[Action]:
        """Everything to do now, in order; `Deliver`/`ViewChange` must reach the app in order."""
        raise NotImplementedError

    def next_deadline(self) -> float:
        """The time by which `tick()` must be called next."""
        raise NotImplementedError

    @property
    def view(self) -> View | None:
        raise NotImplementedError

    @property
    def stats(self) -> GroupStats:
        raise NotImplementedError

    @property
    def state(self) -> Role:
        raise NotImplementedError
