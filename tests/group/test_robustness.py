"""Whatever well-formed message a peer sends, in whatever state, a member never raises."""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsrep.group.codec import Body, Message, encode
from wsrep.group.types import Send

from .test_codec import bodies
from .test_member import cluster, members


@pytest.fixture(scope="module", autouse=True)
def quiet() -> Iterator[None]:
    logger = logging.getLogger("wsrep.group")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["n0", "n1", "n2"]),
            st.sampled_from(["n0", "n1", "n2", "stranger"]),
            st.integers(0, 5),
            bodies,
        ),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_any_message_in_any_state_is_handled(
    steps: list[tuple[str, str, int, Body]], foreign: bool
) -> None:
    """Peers are authenticated, so this is not about Byzantine members: only that no
    message, however odd for the receiver's state, makes a member raise."""
    sim = cluster(members(3))
    group = {i: n.member for i, n in sim.nodes.items() if n.member is not None}
    cluster_uuid = uuid.uuid4() if foreign else group["n0"].cluster_uuid
    assert cluster_uuid is not None
    now = sim.now
    wire: deque[tuple[str, str, bytes]] = deque()
    for target, sender, term, body in steps:
        now += 0.05
        group[target].receive(sender, encode(Message(cluster_uuid, term, body)), now)
        for member_id, m in group.items():
            m.tick(now)
            wire.extend((member_id, a.to, a.data) for a in m.take_actions() if isinstance(a, Send))
            assert m.next_deadline() >= 0
        for _ in range(200):  # let the consequences play out among the three, bounded
            if not wire:
                break
            src, dst, data = wire.popleft()
            if dst in group:
                group[dst].receive(src, data, now)
                wire.extend(
                    (dst, a.to, a.data) for a in group[dst].take_actions() if isinstance(a, Send)
                )
