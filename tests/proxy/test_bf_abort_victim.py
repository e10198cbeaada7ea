"""A brute-force abort hits the transaction the lock information named, never a later one
of the same session. The lock watch reads InnoDB's lock waits, then aborts; meanwhile the
session may end that transaction (its commit failed certification) and start the next.
Issue 5's rare failure: such a stale abort rolled back nothing and answered the session's
next statement (the next round's BEGIN) with 1213.

The real proxy and commit hook in front of a real MariaDB; the provider is a stand-in
(these transactions only read, so nothing is replicated)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest
import trio

from proxy.backend_client import BackendClient, BackendError
from proxy.capture import install
from proxy.managed_mariadb import MariaDBServer
from proxy.replication import (
    LOCK_INFO_MAX_AGE,
    LOCK_WAITS_EVERY,
    Appliers,
    Replication,
    read_lock_waits,
)
from proxy.server import ProxyConfig, ProxyServer
from wsrep.group.types import MemberInfo, View
from wsrep.ordering import OrderingGate
from wsrep.provider import Provider, ProviderStats

pytestmark = pytest.mark.mariadb

SEQNO = 7  # the write set the "applier" connection stands for


class StandInProvider:
    """What the commit hook uses of the provider for read-only transactions and aborts."""

    def __init__(self) -> None:
        self.node_name = "n1"
        self.gate = OrderingGate(0)
        self.view = View(uuid.UUID(int=5), 1, (MemberInfo("n1", "127.0.0.1:4001"),), True, 1)
        self.stats = ProviderStats()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A server of its own: capture is installed on every table of it."""
    srv = MariaDBServer(Path(tmp_path_factory.mktemp("bf")), name="bf")
    srv.start()
    try:
        yield srv
    finally:
        srv.destroy()


class Node:
    def __init__(self, server: MariaDBServer, port: int, replication: Replication) -> None:
        self.connect = functools.partial(BackendClient.connect, server.host, server.port, "root")
        self.port = port
        self.replication = replication
        self.stats = cast(StandInProvider, replication.provider).stats

    async def session(self) -> tuple[BackendClient, int]:
        """A client session through the proxy, and its backend thread."""
        client = await BackendClient.connect("127.0.0.1", self.port, "root")
        return client, int((await client.query("SELECT CONNECTION_ID()")).rows[0][0] or 0)


@pytest.fixture
async def node(server: MariaDBServer, nursery: trio.Nursery) -> AsyncIterator[Node]:
    connect = functools.partial(BackendClient.connect, server.host, server.port, "root")
    async with await connect() as admin:
        await admin.query("DROP DATABASE IF EXISTS s1")
        await admin.query("CREATE DATABASE s1")
        await admin.query("CREATE TABLE s1.t (id INT PRIMARY KEY, v INT NOT NULL)")
        await admin.query("INSERT INTO s1.t VALUES (1, 0)")
        catalog = await install(admin)
    provider = cast(Provider, StandInProvider())
    replication = Replication(provider, Appliers(connect, 0), catalog)
    proxy = ProxyServer(
        ProxyConfig("127.0.0.1", 0, server.host, server.port, commit_hook=replication)
    )
    yield Node(server, await nursery.start(proxy.serve), replication)


async def _blocked_by(admin: BackendClient, waiter: int, holder: int) -> float:
    """Until InnoDB says `waiter` waits for a lock of `holder` (bounded); returns the time
    that lock information is no older than, as the lock watch gets it."""
    waits: list[tuple[int, int]] = []
    for read in range(100):
        waits, seen_after = await read_lock_waits(admin, read)
        if (waiter, holder) in waits:
            return seen_after
        await trio.sleep(LOCK_WAITS_EVERY)  # or InnoDB answers from its cache again
    processes = (await admin.query("SHOW PROCESSLIST")).rows
    raise AssertionError(f"thread {waiter} never waited for {holder}: {waits}, {processes}")


async def _applier_waits_for(
    node: Node, holder: int, nursery: trio.Nursery
) -> tuple[BackendClient, trio.Event, float]:
    """A connection standing for an applier updates row 1, which `holder` has locked;
    returns it, an event set once its update went through, and when the wait was seen."""
    applier = await node.connect()
    done = trio.Event()

    async def update() -> None:
        await applier.query("UPDATE s1.t SET v = v + 1 WHERE id = 1")
        done.set()

    await applier.query("BEGIN")
    nursery.start_soon(update)
    async with await node.connect() as admin:
        return applier, done, await _blocked_by(admin, applier.thread_id, holder)


async def _abort(node: Node, victim: int, asked_at: float) -> None:
    async with await node.connect() as admin:
        await node.replication.abort_local(victim, admin, SEQNO, asked_at)


async def _next_transaction_after_stale_information(
    node: Node, nursery: trio.Nursery, end: str
) -> tuple[BackendClient, int, BackendClient, float]:
    """A session holds a row an applier waits for; the lock information is read; the
    session ends that transaction with `end` (the applier goes through) and BEGINs the
    next one. Returns (session, its thread, applier, when the information was asked)."""
    local, thread = await node.session()
    await local.query("BEGIN")
    await local.query("SELECT v FROM s1.t WHERE id = 1 FOR UPDATE")
    applier, applied, asked_at = await _applier_waits_for(node, thread, nursery)
    await local.query(end)  # the transaction the lock information named ends
    with trio.fail_after(30):
        await applied.wait()
    await applier.query("COMMIT")
    await local.query("BEGIN")
    return local, thread, applier, asked_at


async def test_a_stale_abort_leaves_the_next_transaction_alone(
    node: Node, nursery: trio.Nursery
) -> None:
    local, thread, applier, asked_at = await _next_transaction_after_stale_information(
        node, nursery, "COMMIT"
    )  # the next transaction, between two statements
    await _abort(node, thread, asked_at)  # acting on what was read before the COMMIT
    assert (await local.query("SELECT v FROM s1.t WHERE id = 1")).rows == [(b"1",)]
    await local.query("COMMIT")
    assert node.stats.local_bf_aborts == 0
    await local.aclose()
    await applier.aclose()


async def test_a_stale_abort_leaves_the_next_statement_in_flight_alone(
    node: Node, nursery: trio.Nursery
) -> None:
    local, thread, applier, asked_at = await _next_transaction_after_stale_information(
        node, nursery, "ROLLBACK"
    )
    result: list[object] = []

    async def sleep_statement() -> None:
        try:
            result.append((await local.query("SELECT SLEEP(1)")).rows)
        except BackendError as exc:
            result.append(exc.code)

    async with trio.open_nursery() as statement:
        statement.start_soon(sleep_statement)
        await trio.sleep(0.3)  # in flight on the backend now
        await _abort(node, thread, asked_at)
    assert result == [[(b"0",)]]  # not interrupted (1213)
    await local.query("COMMIT")
    assert node.stats.local_bf_aborts == 0
    await local.aclose()
    await applier.aclose()


async def test_a_current_holder_is_still_aborted(node: Node, nursery: trio.Nursery) -> None:
    """The control: lock information newer than the session's last transaction end
    aborts the transaction, its client gets 1213, the applier goes on."""
    local, thread = await node.session()
    await local.query("BEGIN")
    await local.query("SELECT v FROM s1.t WHERE id = 1 FOR UPDATE")
    applier, applied, asked_at = await _applier_waits_for(node, thread, nursery)
    await _abort(node, thread, asked_at)
    with trio.fail_after(30):
        await applied.wait()
    await applier.query("COMMIT")
    with pytest.raises(BackendError) as aborted:
        await local.query("SELECT 1")
    assert aborted.value.code == 1213
    assert node.stats.local_bf_aborts == 1
    await local.query("BEGIN")  # the session goes on
    await local.query("COMMIT")
    await local.aclose()
    await applier.aclose()


async def test_lock_information_says_how_old_it_may_be(node: Node) -> None:
    """InnoDB answers from its cache when it was read less than 0.1 s ago: such lock
    information may be that old, and only a fresh read vouches for the time it was
    asked."""
    async with await node.connect() as admin:
        for attempt in range(20):  # until two reads fall within 0.1 s (a loaded machine)
            await trio.sleep(LOCK_WAITS_EVERY)  # nobody read it since: it is refilled
            first = time.monotonic()
            _, seen_after = await read_lock_waits(admin, 2 * attempt)
            assert seen_after >= first
            _, seen_after = await read_lock_waits(admin, 2 * attempt + 1)
            if time.monotonic() - first < LOCK_INFO_MAX_AGE:  # the cache answered
                assert seen_after < first
                return
    raise AssertionError("never two reads within 0.1 s")
