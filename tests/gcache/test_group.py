"""The Raft core (`GroupMember`) on GCache: the group's simulation with a gcache per member.

A crashed member's cache is closed and reopened from its directory, so a restart sees
only what reached the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from group.sim import Schedule, Simulation, watch_behind

from wsrep.gcache import GCache
from wsrep.group.types import MemberInfo

SEG = 4096


class GCacheSimulation(Simulation):
    def __init__(self, schedule: Schedule, root: Path, sync: bool, size: int = 1 << 30) -> None:
        super().__init__(schedule)
        self.root, self.sync, self.size = root, sync, size
        for node_id, node in self.nodes.items():
            node.storage = self._open(node_id)  # type: ignore[assignment]

    def _open(self, node_id: str) -> GCache:
        return GCache(
            self.root / node_id, size=self.size, segment_size=SEG, sync=self.sync, cache_bytes=0
        )

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.member is not None:
            super().crash(node_id)
            node.storage.close()  # type: ignore[attr-defined]
            node.storage = self._open(node_id)  # type: ignore[assignment]

    def close(self) -> None:
        for node in self.nodes.values():
            node.storage.close()  # type: ignore[attr-defined]


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[list[GCacheSimulation]]:
    made: list[GCacheSimulation] = []
    yield made
    for sim in made:
        sim.close()


def infos(n: int) -> list[MemberInfo]:
    return [MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}") for i in range(n)]


def formed(sims: list[GCacheSimulation], root: Path, sync: bool, **kw: int) -> GCacheSimulation:
    sim = GCacheSimulation(
        Schedule(0, "test", infos(3), 0.0, 0.0, (0.001, 0.002), []), root, sync, **kw
    )
    sims.append(sim)
    sim.start("n0", bootstrap=True)
    sim.start("n1")
    sim.start("n2")
    assert sim.run_until(10.0, sim.converged), sim.describe()
    return sim


def submit(sim: Simulation, node_id: str, count: int) -> None:
    for _ in range(count):
        sim.submit(node_id)
    sim.run_until(sim.now + 1.0)


# seeds whose schedules crash members, over all four topologies
@pytest.mark.parametrize("seed", [0, 2, 5, 9, 17, 23, 27, 35])
def test_random_schedules_behave_exactly_as_in_memory(
    seed: int, tmp_path: Path, sims: list[GCacheSimulation]
) -> None:
    """Crashes, partitions, losses: the same seed gives the same history on either storage
    (the simulation's own invariants are checked on both)."""
    reference = Simulation(Schedule.from_seed(seed))
    reference.run()
    sim = GCacheSimulation(Schedule.from_seed(seed), tmp_path, sync=False)
    sims.append(sim)
    sim.run()
    assert any(kind == "crash" for _, kind, _ in sim.s.faults)
    for node_id, node in sim.nodes.items():
        assert node.delivered == reference.nodes[node_id].delivered
        assert node.views == reference.nodes[node_id].views


def test_restarts_redeliver_nothing(tmp_path: Path, sims: list[GCacheSimulation]) -> None:
    sim = formed(sims, tmp_path, sync=True)
    submit(sim, "n0", 5)
    sim.crash("n1")
    submit(sim, "n0", 5)
    sim.start("n1")
    assert sim.run_until(sim.now + 10, sim.converged), sim.describe()
    submit(sim, "n2", 2)
    # Simulation.check_delivery fails on any repeated or skipped seqno across lifetimes
    assert [s for s, _, _ in sim.nodes["n1"].delivered] == list(range(1, 13))
    for node_id in ("n0", "n1", "n2"):
        sim.crash(node_id)
    sim.run_until(sim.now + 1.0)
    for node_id in ("n2", "n1", "n0"):
        sim.start(node_id)
    assert sim.run_until(sim.now + 10, sim.converged), sim.describe()
    submit(sim, "n1", 3)
    sim.settle()
    sim.check()
    for node in sim.nodes.values():
        assert [s for s, _, _ in node.delivered] == list(range(1, 16))
        assert node.member is not None and node.member.delivered_seqno == 15


def test_far_behind_member_learns_the_donors_gcache_range(
    tmp_path: Path, sims: list[GCacheSimulation]
) -> None:
    sim = formed(sims, tmp_path, sync=False, size=4 * SEG)
    sim.crash("n2")
    for _ in range(8):
        submit(sim, "n0", 60)
    leader_cache: GCache = sim.nodes["n0"].storage  # type: ignore[assignment]
    assert leader_cache.first_index() > 1 and leader_cache.disk_bytes <= 4 * SEG
    sim.start("n2")
    behind = watch_behind(sim.nodes["n2"])
    sim.run_until(sim.now + 3.0)
    span = leader_cache.seqno_range()
    assert behind and span is not None
    # what the donor can still stream (IST) is exactly what its gcache holds
    assert (behind[0].donor, behind[0].oldest_seqno) == ("n0", span[0])
    assert leader_cache.entry(leader_cache.index_of_seqno(span[0])).seqno == span[0]
