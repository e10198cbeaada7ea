"""A node's replication state, as Galera names and numbers it.

    CLOSED -> OPEN -> PRIMARY -> JOINER -> JOINED -> SYNCED
                                 PRIMARY ---------> JOINED   (position already current)
                                            SYNCED -> DONOR/DESYNCED -> JOINED -> SYNCED

Losing the primary component sends any state back to OPEN (the node then refuses
service); shutdown goes to CLOSED. `wsrep_local_state` and its comment are what
`SHOW STATUS` reports; only SYNCED nodes serve clients by default and answer
health checks with 200.
"""

from __future__ import annotations

import enum
import logging

log = logging.getLogger("wsrep.state")


class NodeState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    PRIMARY = "primary"
    JOINER = "joiner"
    JOINED = "joined"
    SYNCED = "synced"
    DONOR = "donor"
    DESYNCED = "desynced"

    @property
    def local_state(self) -> int:
        """Galera's numeric `wsrep_local_state`."""
        return _LOCAL_STATE[self]

    @property
    def comment(self) -> str:
        """Galera's `wsrep_local_state_comment`."""
        return _COMMENT[self]


_LOCAL_STATE = {
    NodeState.CLOSED: 0,
    NodeState.OPEN: 0,
    NodeState.PRIMARY: 1,
    NodeState.JOINER: 1,
    NodeState.DONOR: 2,
    NodeState.DESYNCED: 2,
    NodeState.JOINED: 3,
    NodeState.SYNCED: 4,
}
_COMMENT = {
    NodeState.CLOSED: "Disconnected",
    NodeState.OPEN: "Initialized",
    NodeState.PRIMARY: "Joining: preparing for State Transfer",
    NodeState.JOINER: "Joining: receiving State Transfer",
    NodeState.DONOR: "Donor/Desynced",
    NodeState.DESYNCED: "Donor/Desynced",
    NodeState.JOINED: "Joined",
    NodeState.SYNCED: "Synced",
}

_ALLOWED: dict[NodeState, frozenset[NodeState]] = {
    NodeState.CLOSED: frozenset({NodeState.OPEN}),
    NodeState.OPEN: frozenset({NodeState.PRIMARY}),
    NodeState.PRIMARY: frozenset({NodeState.JOINER, NodeState.JOINED}),
    NodeState.JOINER: frozenset({NodeState.JOINED}),
    NodeState.JOINED: frozenset({NodeState.SYNCED}),
    NodeState.SYNCED: frozenset({NodeState.DONOR, NodeState.DESYNCED}),
    NodeState.DONOR: frozenset({NodeState.JOINED}),
    NodeState.DESYNCED: frozenset({NodeState.JOINED}),
}


class StateTransitionError(RuntimeError):
    pass


class NodeStateMachine:
    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.state = NodeState.CLOSED

    def can_move(self, target: NodeState) -> bool:
        # Losing the primary component or shutting down is possible from anywhere.
        if target is NodeState.OPEN and self.state is not NodeState.OPEN:
            return True
        if target is NodeState.CLOSED:
            return True
        return target in _ALLOWED[self.state]

    def move(self, target: NodeState, seqno: int | None = None) -> None:
        if not self.can_move(target):
            raise StateTransitionError(
                f"{self.node_name}: no transition {self.state.name} -> {target.name}"
            )
        log.info(
            "%s: %s -> %s%s",
            self.node_name,
            self.state.name,
            target.name,
            "" if seqno is None else f" at seqno {seqno}",
        )
        self.state = target

    @property
    def serves_clients(self) -> bool:
        return self.state in (NodeState.SYNCED, NodeState.DONOR, NodeState.DESYNCED)
