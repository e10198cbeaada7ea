"""A member process under bad input keeps its view and keeps delivering."""

from __future__ import annotations

import pytest

from tests.group_process.conftest import Cluster, wait_until
from tests.group_process.test_failures import round_of_submits
from tests.transport.attacks import attacks, handshake_as, raw_exchange, stranger
from wsrep.transport.connection import ConnectionFailed

pytestmark = pytest.mark.slow


async def test_strangers_garbage_and_another_cluster_are_refused(cluster: Cluster) -> None:
    m1 = cluster.add("m1", bootstrap=True)
    m2 = cluster.add("m2", join=["m1"])
    other = cluster.add("x", bootstrap=True, join=["m1"])  # its own cluster, dials m1
    await cluster.start("m1", "m2")
    members = [m1, m2]
    await wait_until(lambda: all(m.primary_with({"m1", "m2"}) for m in members))
    await round_of_submits(members, "before")
    views = [len(m.views) for m in members]

    await cluster.start("x")
    for data, _ in attacks.values():
        await raw_exchange(m1.address, data)
    events = await handshake_as(m1.address, stranger(b"not the secret"))
    assert isinstance(events[-1], ConnectionFailed) and "refused" in events[-1].reason
    log_of = m1.log_path.read_text
    await wait_until(lambda: "belongs to cluster" in log_of())

    await round_of_submits(members, "after")
    assert [len(m.views) for m in members] == views  # nothing above changed the view
    text = log_of()
    for name, (_, says) in attacks.items():
        assert says in text, name
    assert "does not know the cluster secret" in text
    assert other.view is not None and other.view["members"] == ["x"]
    assert all(origin != "x" for origin, _ in m1.delivered.values())
    cluster.check_agreement()
