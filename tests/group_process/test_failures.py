"""Real member processes on loopback: SIGKILL, SIGSTOP/SIGCONT, restarts, an arbitrator."""

from __future__ import annotations

import signal

import pytest
import trio

from tests.group_process.conftest import Cluster, MemberProcess, wait_until

pytestmark = pytest.mark.slow


async def submit_ok(member: MemberProcess, text: str, attempts: int = 20) -> int:
    """Submit until ordered (a leader election may be in progress); the seqno."""
    answer: dict[str, object] = {}
    for _ in range(attempts):
        answer = await member.submit(text)
        if answer["event"] == "submitted":
            return int(answer["seqno"])  # type: ignore[call-overload]
        await trio.sleep(0.2)
    raise AssertionError(f"{member.name} could not order {text!r}: {answer}")


async def round_of_submits(members: list[MemberProcess], tag: str) -> None:
    """Each member orders one payload, and every member delivers all of them."""
    seqnos = [await submit_ok(m, f"{tag}-from-{m.name}") for m in members]
    await wait_until(lambda: all(set(seqnos) <= m.delivered.keys() for m in members))


async def leader(members: list[MemberProcess]) -> MemberProcess:
    for _ in range(100):
        for m in members:
            if (await m.status())["role"] == "leader":
                return m
        await trio.sleep(0.1)
    raise AssertionError("no leader")


async def test_three_members_survive_kills_pauses_and_restarts(cluster: Cluster) -> None:
    m1 = cluster.add("m1", bootstrap=True)
    m2 = cluster.add("m2", join=["m1"])
    m3 = cluster.add("m3", join=["m1", "m2"])
    await cluster.start("m1", "m2", "m3")
    everyone = [m1, m2, m3]
    await wait_until(lambda: all(m.primary_with({"m1", "m2", "m3"}) for m in everyone))
    await round_of_submits(everyone, "start")

    # SIGKILL a follower: the other two stay primary the whole time and keep delivering
    lead = await leader(everyone)
    victim = next(m for m in everyone if m is not lead)
    survivors = [m for m in everyone if m is not victim]
    views_before = [len(m.views) for m in survivors]
    await victim.kill()
    await round_of_submits(survivors, "one-killed")
    names = {m.name for m in survivors}
    await wait_until(lambda: all(m.primary_with(names) for m in survivors))  # evicted
    for m, seen in zip(survivors, views_before, strict=True):
        assert all(v["primary"] for v in m.views[seen:]), m.views[seen:]

    # SIGKILL a second one: the survivor is a minority of the last primary view
    second, last = survivors
    await second.kill()
    await wait_until(lambda: last.view is not None and not last.view["primary"])
    refused = await last.submit("in-minority")
    assert refused["event"] == "submit-failed", refused
    delivered_in_minority = dict(last.delivered)
    await trio.sleep(0.5)
    assert last.delivered == delivered_in_minority  # a non-primary member delivers nothing

    # restart both: all primary again
    await cluster.restart(second.name)
    await cluster.restart(victim.name)
    await wait_until(lambda: all(m.primary_with({"m1", "m2", "m3"}) for m in everyone))
    await round_of_submits(everyone, "restarted")

    # SIGSTOP the leader: the others elect another one and go on; SIGCONT: it catches up
    lead = await leader(everyone)
    others = [m for m in everyone if m is not lead]
    lead.send_signal(signal.SIGSTOP)
    try:
        await round_of_submits(others, "leader-paused")
    finally:
        lead.send_signal(signal.SIGCONT)
    await wait_until(lambda: all(m.primary_with({"m1", "m2", "m3"}) for m in everyone))
    await round_of_submits(everyone, "leader-back")
    await wait_until(lambda: len({m.last_seqno for m in everyone}) == 1)
    cluster.check_agreement()


async def test_two_members_and_an_arbitrator_survive_losing_either_member(
    cluster: Cluster,
) -> None:
    d1 = cluster.add("d1", bootstrap=True)
    cluster.add("arb", join=["d1"], command="arbitrator")
    d2 = cluster.add("d2", join=["d1", "arb"])
    await cluster.start("d1", "arb", "d2")
    full = {"d1", "d2", "arb"}
    await wait_until(lambda: d1.primary_with(full) and d2.primary_with(full))
    await round_of_submits([d1, d2], "start")

    for victim, survivor in ((d2, d1), (d1, d2)):
        await victim.kill()
        await round_of_submits([survivor], f"{victim.name}-killed")
        await wait_until(lambda: survivor.primary_with(full - {victim.name}))  # noqa: B023
        assert survivor.view is not None and survivor.view["primary"]
        await cluster.restart(victim.name)
        await wait_until(lambda: d1.primary_with(full) and d2.primary_with(full))
        await round_of_submits([d1, d2], f"{victim.name}-back")
    cluster.check_agreement()
    # a clean stop leaves the group (a kill above was a failure): the rest stay primary
    assert await cluster.members["arb"].stop(signal.SIGTERM) == 0
    await wait_until(lambda: d1.primary_with({"d1", "d2"}) and d2.primary_with({"d1", "d2"}))
    assert await d1.stop(signal.SIGINT) == 0
    await wait_until(lambda: d2.primary_with({"d2"}))
    await round_of_submits([d2], "d2-alone")
    assert "arb: SIGTERM: leaving" in cluster.members["arb"].log_path.read_text()
