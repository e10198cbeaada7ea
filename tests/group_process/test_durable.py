"""Members keep their log and term/vote in their gcache (`--gcache-dir`) across SIGKILL:
real processes on loopback, killed and restarted by pid."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import pytest
import trio

from tests.group_process.conftest import REPO, Cluster, MemberProcess, wait_until
from tests.group_process.test_failures import round_of_submits
from wsrep.gcache import GCache
from wsrep.group.log import HardState

pytestmark = pytest.mark.slow


def hard_state(cluster: Cluster, name: str) -> HardState:
    """What a member's gcache holds (only while the member is down: the dir is locked)."""
    with GCache(cluster.gcache_dir(name)) as gcache:
        return gcache.hard_state()


async def two_and_an_arbitrator(cluster: Cluster) -> tuple[MemberProcess, ...]:
    d1 = cluster.add("d1", bootstrap=True)
    arb = cluster.add("arb", join=["d1"], command="arbitrator")
    d2 = cluster.add("d2", join=["d1", "arb"])
    await cluster.start("d1", "arb", "d2")
    await wait_until(lambda: all(m.primary_with({"d1", "d2", "arb"}) for m in (d1, d2)))
    await round_of_submits([d1, d2], "start")
    return d1, arb, d2


async def test_a_killed_arbitrator_keeps_its_term_and_vote_and_rejoins(cluster: Cluster) -> None:
    d1, arb, d2 = await two_and_an_arbitrator(cluster)
    # lose the bootstrap leader: d2 needs the arbitrator's vote in a new term
    await d1.kill()
    await round_of_submits([d2], "d1-killed")
    await arb.kill()
    voted = hard_state(cluster, "arb")
    assert voted.term >= 2 and voted.voted_for == "d2", voted
    assert voted.cluster_uuid is not None and voted.delivered > 0

    await cluster.restart("arb")
    await wait_until(lambda: f"arb: started term={voted.term} " in arb.log_path.read_text())
    await cluster.restart("d1")
    await wait_until(lambda: all(m.primary_with({"d1", "d2", "arb"}) for m in (d1, d2)))
    await round_of_submits([d1, d2], "all-back")
    cluster.check_agreement()
    assert await arb.stop(signal.SIGTERM) == 0
    after = hard_state(cluster, "arb")
    assert (after.term, after.cluster_uuid) >= (voted.term, voted.cluster_uuid)
    assert after.delivered >= voted.delivered


def this_run(member: MemberProcess) -> str:
    """The member's log since its last start (the file is appended to by every run)."""
    text = member.log_path.read_text()
    return text[text.rfind(f"{member.name}: started term=") :]


async def test_an_arbitrator_with_a_lost_gcache_votes_only_once_caught_up(
    cluster: Cluster,
) -> None:
    d1, arb, d2 = await two_and_an_arbitrator(cluster)
    await arb.kill()
    await d1.kill()
    shutil.rmtree(cluster.gcache_dir("arb"))
    # d2 and the amnesiac arbitrator are 2 of 3, but its vote may be one it already gave
    # (and it may have acknowledged entries it lost): no leader, nothing ordered
    await cluster.restart("arb")
    await wait_until(lambda: "connected to d2" in this_run(arb))
    await trio.sleep(3.0)  # several election timeouts
    assert not d2.primary_with({"d1", "d2", "arb"}) and not d2.primary_with({"d2", "arb"})
    assert "leader of term" not in d2.log_path.read_text()
    # the leader comes back: the arbitrator catches up from it and votes again
    await cluster.restart("d1")
    await wait_until(lambda: "arb: caught up to commit index" in this_run(arb))
    await wait_until(lambda: all(m.primary_with({"d1", "d2", "arb"}) for m in (d1, d2)))
    await round_of_submits([d1, d2], "all-back")
    await d1.kill()
    await round_of_submits([d2], "d1-killed-again")  # d2 and arb elect without d1
    cluster.check_agreement()


async def test_the_gcache_stays_bounded_and_a_far_behind_member_is_told(
    cluster: Cluster,
) -> None:
    small = ("--gcache-size", "1M")
    m1 = cluster.add("m1", bootstrap=True, extra=small)
    m2 = cluster.add("m2", join=["m1"], extra=small)
    m3 = cluster.add("m3", join=["m1", "m2"], extra=small)
    await cluster.start("m1", "m2", "m3")
    everyone = {"m1", "m2", "m3"}
    await wait_until(lambda: all(m.primary_with(everyone) for m in (m1, m2, m3)))
    await m3.kill()
    # ~3 MiB of payloads while m3 is away: m1 and m2 purge what they delivered
    filler = "x" * 4000
    count = 800
    for i in range(count):
        await m1.command(f"submit fill-{i} {filler}")
    await wait_until(lambda: sum(k.startswith("fill-") for k in m1.answers) == count, 120)
    assert all(a["event"] == "submitted" for a in m1.answers.values()), m1.answers
    last = max(int(a["seqno"]) for a in m1.answers.values())
    await wait_until(lambda: m2.last_seqno >= last, 60)
    for name in ("m1", "m2"):
        held = sum(f.stat().st_size for f in cluster.gcache_dir(name).glob("seg-*.gcache"))
        assert held <= 2 * 1024 * 1024 + 64 * 1024, (name, held)  # size + one segment
        assert "purged entries" in cluster.members[name].log_path.read_text()

    await cluster.restart("m3")  # with its gcache: it knows the cluster, far behind it
    await wait_until(lambda: bool(m3.behind), 60)
    behind = m3.behind[-1]
    assert behind["delivered_seqno"] < behind["oldest_seqno"] - 1, behind
    assert behind["donor"] in ("m1", "m2")
    assert m3.last_seqno <= behind["delivered_seqno"]  # it delivers nothing it cannot
    cluster.check_agreement()


async def test_a_second_process_on_a_gcache_dir_is_refused(cluster: Cluster) -> None:
    arb = cluster.add("arb", bootstrap=True, command="arbitrator")
    await cluster.start("arb")
    await wait_until(lambda: "started term=" in arb.log_path.read_text())
    argv = [a for a in arb.argv if a != "--bootstrap"]
    argv[argv.index("--listen") + 1] = "127.0.0.1:1"  # never reached: the lock comes first
    second = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2, second
    assert f"gcache {cluster.gcache_dir('arb')} is open in another process" in second.stderr
    assert arb.process is not None and arb.process.returncode is None  # untouched


async def test_a_member_of_another_cluster_is_refused(cluster: Cluster) -> None:
    d1 = cluster.add("d1", bootstrap=True)
    d2 = cluster.add("d2", join=["d1"])
    other = cluster.add("x", bootstrap=True)  # its own cluster, in its own gcache
    await cluster.start("d1", "d2", "x")
    await wait_until(lambda: other.primary_with({"x"}))
    await wait_until(lambda: all(m.primary_with({"d1", "d2"}) for m in (d1, d2)))
    await other.kill()
    foreign = hard_state(cluster, "x").cluster_uuid
    await cluster.restart("x")  # now joining through d1 and d2
    # the transport handshake already refuses it, and says why on both sides
    says = f"belongs to cluster {foreign}, we are {d1.view['cluster']}"  # type: ignore[index]
    await wait_until(lambda: says in this_run(other))
    await round_of_submits([d1, d2], "without-x")
    await trio.sleep(1.0)
    assert all("x" not in v["members"] for m in (d1, d2) for v in m.views)
    await other.kill()
    assert hard_state(cluster, "x").cluster_uuid == foreign  # its own state untouched


def test_arbitrator_needs_a_gcache_dir() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsrepctl", "arbitrator", "--name", "a", "--listen", "x:1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--gcache-dir" in result.stderr, result
