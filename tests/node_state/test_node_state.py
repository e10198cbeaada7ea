from __future__ import annotations

import pytest

from wsrep.node_state import NodeState, NodeStateMachine, StateTransitionError


def test_joiner_path_to_synced_and_galera_numbers() -> None:
    fsm = NodeStateMachine("node1")
    seen = []
    for target in (NodeState.OPEN, NodeState.PRIMARY, NodeState.JOINER, NodeState.JOINED,
                   NodeState.SYNCED):
        fsm.move(target)
        seen.append((fsm.state.local_state, fsm.state.comment))
    assert seen[-3:] == [
        (1, "Joining: receiving State Transfer"),
        (3, "Joined"),
        (4, "Synced"),
    ]
    assert fsm.serves_clients


def test_donor_returns_through_joined() -> None:
    fsm = NodeStateMachine("node2")
    for target in (NodeState.OPEN, NodeState.PRIMARY, NodeState.JOINED, NodeState.SYNCED,
                   NodeState.DONOR):
        fsm.move(target)
    assert fsm.state.local_state == 2
    with pytest.raises(StateTransitionError):
        fsm.move(NodeState.SYNCED)  # a donor catches up (JOINED) before it is SYNCED
    fsm.move(NodeState.JOINED)
    fsm.move(NodeState.SYNCED)


@pytest.mark.parametrize("state", [s for s in NodeState if s is not NodeState.CLOSED])
def test_losing_the_primary_component_is_possible_from_any_state(state: NodeState) -> None:
    fsm = NodeStateMachine("node3")
    fsm.state = state
    if state is NodeState.OPEN:
        assert not fsm.can_move(NodeState.OPEN)
    else:
        fsm.move(NodeState.OPEN)
        assert not fsm.serves_clients


def test_skipping_state_transfer_is_refused() -> None:
    fsm = NodeStateMachine("node4")
    fsm.move(NodeState.OPEN)
    with pytest.raises(StateTransitionError, match="OPEN -> SYNCED"):
        fsm.move(NodeState.SYNCED)
