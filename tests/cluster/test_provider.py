"""Provider over real group members on loopback (no database): verdicts reach the local
session, remote write sets reach the apply callback, failed ones are skipped in the gate."""

from __future__ import annotations

from collections.abc import Callable

import trio

from certification.keys import row_key
from proxy.managed_mariadb import free_port
from wsrep.group.log import InMemoryLogStorage
from wsrep.group.types import GroupConfig, MemberInfo
from wsrep.group_node import open_group_node
from wsrep.provider import NotReady, Provider, Replicated
from wsrep.writeset import WriteSet

SECRET = b"provider-test-secret"


def member(name: str, seeds: tuple[str, ...] = (), bootstrap: bool = False) -> GroupConfig:
    return GroupConfig(
        MemberInfo(name, f"127.0.0.1:{free_port()}"),
        seeds=seeds,
        bootstrap=bootstrap,
        heartbeat_interval=0.05,
        suspect_timeout=0.4,
        inactive_timeout=1.0,
        election_timeout=0.4,
    )


async def until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.02)


def ws(provider: Provider, last_seen: int, row: int) -> WriteSet:
    key = row_key("s", "t", "PRIMARY", [str(row).encode()])
    return WriteSet(provider.node_name, provider.new_trx_id(), last_seen, (key,), b"rows")


async def test_two_providers_certify_alike_and_apply_each_others_write_sets() -> None:
    a_config = member("a", bootstrap=True)
    b_config = member("b", seeds=(a_config.member.address,))
    applied: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    with trio.fail_after(30):
        async with (
            open_group_node(a_config, InMemoryLogStorage(), SECRET) as group_a,
            open_group_node(b_config, InMemoryLogStorage(), SECRET) as group_b,
            trio.open_nursery() as nursery,
        ):
            providers = {}
            for name, group in (("a", group_a), ("b", group_b)):
                provider = Provider(group, lambda s, w, d, n=name: applied[n].append((s, d)))
                providers[name] = provider
                await nursery.start(provider.run)
            a, b = providers["a"], providers["b"]
            for p in (a, b):
                await p.wait_state(ready=True)
            while a.view is None or len(a.view.members) < 2 or not b.ready:
                await trio.sleep(0.05)

            first = await a.replicate(ws(a, 0, row=1))
            assert first.verdict.passed
            await a.gate.wait_commit_turn(first.seqno)
            a.commit(first.seqno)
            await until(lambda: applied["b"] == [(first.seqno, 0)])
            b.commit(first.seqno)  # b's "applier" committed it
            # b wrote row 1 without having seen a's write, which b has delivered: a sure
            # conflict, failed before ordering (seqno 0)
            early = await b.replicate(ws(b, 0, row=1))
            assert not early.verdict.passed and early.seqno == 0
            # a and b write row 3 at once, having seen everything: both are ordered, the
            # later one conflicts and is skipped everywhere
            race: dict[str, Replicated] = {}

            async def write_row_3(p: Provider) -> None:
                race[p.node_name] = await p.replicate(ws(p, first.seqno, row=3))

            async with trio.open_nursery() as racers:
                racers.start_soon(write_row_3, a)
                racers.start_soon(write_row_3, b)
            winner = min(race, key=lambda name: race[name].seqno)
            won, lost = race[winner], race["b" if winner == "a" else "a"]
            assert won.verdict.passed and not lost.verdict.passed and lost.seqno > won.seqno
            loser = "b" if winner == "a" else "a"
            await until(lambda: (won.seqno, 0) in applied[loser])
            for p in (a, b):  # the winner's own commit, and the other's "applier"
                await p.gate.wait_commit_turn(won.seqno)
                p.commit(won.seqno)
            # b's write of another row that saw everything passes and reaches a's appliers
            third = await b.replicate(ws(b, lost.seqno, row=2))
            assert third.verdict.passed
            await b.gate.wait_commit_turn(third.seqno)
            b.commit(third.seqno)
            await until(lambda: (third.seqno, 0) in applied["a"])
            await a.gate.wait_commit_turn(third.seqno)
            a.commit(third.seqno)
            assert a.gate.last_committed == b.gate.last_committed == third.seqno
            assert (first.seqno, 0) in applied["b"]
            assert len(applied["a"]) + len(applied["b"]) == 3  # never own or failed ones
            failures = a.stats.local_cert_failures + b.stats.local_cert_failures
            assert failures == 2  # the early one and the race's loser
            nursery.cancel_scope.cancel()


async def test_replicate_refuses_when_not_in_a_primary_component() -> None:
    config = member("lonely")  # not bootstrapped and no peers: never primary
    async with (
        open_group_node(config, InMemoryLogStorage(), SECRET) as group,
        trio.open_nursery() as nursery,
    ):
        provider = Provider(group, lambda *_: None)
        provider.not_ready_hold = 0.3  # a commit waits that long for a primary component
        await nursery.start(provider.run)
        start = trio.current_time()
        try:
            await provider.replicate(ws(provider, 0, row=1))
        except NotReady as exc:
            assert "lonely" in str(exc)
        else:
            raise AssertionError("replicated without a primary component")
        assert trio.current_time() - start >= 0.3
        nursery.cancel_scope.cancel()
