"""Flow control between processes: a slow applier holds the group back, nothing is lost."""

from __future__ import annotations

import pytest
import trio

from tests.group_process.conftest import Cluster, wait_until

pytestmark = pytest.mark.slow


async def test_a_slow_member_pauses_the_group_until_it_drains(cluster: Cluster) -> None:
    fast = cluster.add("fast", bootstrap=True, extra=("--fc-limit", "4"))
    slow = cluster.add("slow", join=["fast"], extra=("--fc-limit", "4", "--apply-delay", "0.02"))
    await cluster.start("fast", "slow")
    await wait_until(
        lambda: fast.primary_with({"fast", "slow"}) and slow.primary_with({"fast", "slow"})
    )

    async with trio.open_nursery() as nursery:
        for i in range(60):
            nursery.start_soon(fast.submit, f"burst-{i}")
    assert all(a["event"] == "submitted" for a in fast.answers.values()), fast.answers
    await wait_until(lambda: len(slow.delivered) == len(fast.delivered) == 60)

    leader_stats = (await fast.status())["stats"]
    slow_stats = (await slow.status())["stats"]
    assert slow_stats["flow_control_sent"] >= 1, slow_stats
    assert leader_stats["flow_control_paused_seconds"] > 0, leader_stats
    cluster.check_agreement()
