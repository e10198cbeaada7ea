"""ProviderCore: the same stream gives the same decisions on every node; views move state."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from certification.keys import row_key
from wsrep.group.types import MemberInfo, View
from wsrep.node_state import NodeState
from wsrep.provider_core import Action, ProviderCore
from wsrep.writeset import WriteSet, encode

CLUSTER = uuid.UUID(int=7)
MEMBERS = tuple(MemberInfo(f"n{i}", f"127.0.0.1:{4000 + i}") for i in range(3))


def ws(origin: str, trx: int, last_seen: int, *rows: int) -> bytes:
    keys = tuple(row_key("s", "t", "PRIMARY", [str(r).encode()]) for r in rows)
    return encode(WriteSet(origin, trx, last_seen, keys, b"rows"))


def view(primary: bool, own: int = 0) -> View:
    return View(CLUSTER, 1, MEMBERS, primary, own)


def test_views_move_state_and_ready() -> None:
    core = ProviderCore("n0")
    assert core.state.state is NodeState.OPEN and not core.ready
    core.view_changed(view(primary=True))
    assert core.state.state is NodeState.SYNCED and core.ready
    core.view_changed(view(primary=False))
    assert core.state.state is NodeState.OPEN and not core.ready
    core.view_changed(view(primary=True))
    assert core.ready
    core.behind()
    assert not core.ready


def test_local_waiting_is_resolved_remote_is_applied_conflict_is_skipped() -> None:
    core = ProviderCore("n0")
    first = core.deliver(1, ws("n0", 1, 0, 5), {("n0", 1)})
    assert first.action is Action.RESOLVE and first.verdict is not None and first.verdict.passed
    # n1 saw nothing when it wrote row 5 too: conflict, skipped everywhere
    second = core.deliver(2, ws("n1", 1, 0, 5), set())
    assert second.action is Action.SKIP and second.verdict is not None
    assert not second.verdict.passed
    third = core.deliver(3, ws("n1", 2, 1, 5), set())
    assert third.action is Action.APPLY and third.verdict is not None
    assert third.verdict.depends_seqno == 1


def test_own_write_set_nobody_waits_for_is_applied() -> None:
    core = ProviderCore("n0")
    assert core.deliver(1, ws("n0", 9, 0, 1), set()).action is Action.APPLY


def test_garbage_payload_is_skipped_not_fatal() -> None:
    core = ProviderCore("n0")
    outcome = core.deliver(1, b"\x00not a write set", set())
    assert outcome.action is Action.SKIP and outcome.ws is None
    assert core.deliver(2, ws("n1", 1, 0, 1), set()).action is Action.APPLY


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 8), st.lists(st.integers(0, 6), max_size=3)),
        max_size=40,
    )
)
def test_every_node_decides_the_same(stream: list[tuple[int, int, list[int]]]) -> None:
    """Whoever waits, every node passes and fails the same write sets with the same deps."""
    nodes = [ProviderCore(m.id) for m in MEMBERS]
    for seqno, (origin, lag, rows) in enumerate(stream, start=1):
        payload = ws(f"n{origin}", seqno, max(0, seqno - 1 - lag), *rows)
        outcomes = [n.deliver(seqno, payload, {(f"n{origin}", seqno)}) for n in nodes]
        verdicts = {o.verdict for o in outcomes}
        assert len(verdicts) == 1
        for i, outcome in enumerate(outcomes):
            verdict = outcome.verdict
            assert verdict is not None
            if i == origin:
                assert outcome.action is Action.RESOLVE
            else:
                assert outcome.action is (Action.APPLY if verdict.passed else Action.SKIP)
