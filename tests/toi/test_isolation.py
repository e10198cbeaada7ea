"""`Isolation.apply` on a real MariaDB: a TOI statement runs with its origin's context,
capture follows, bad payloads and failures never crash the node, and metadata-lock
holders are aborted. The provider is a stand-in over a real `OrderingGate` (no group)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest
import trio

from proxy.backend_client import BackendClient, BackendError
from proxy.capture import Catalog, install
from proxy.managed_mariadb import MariaDBServer
from proxy.packet_stream import PeerClosed
from proxy.protocol.wire import ProtocolError
from proxy.replication import kill_connection
from proxy.toi import UNREADABLE, Isolation
from proxy.toi_payload import IsolatedStatement, IsolationOutcome, decode, encode
from wsrep.group.types import MemberInfo, View
from wsrep.ordering import OrderingGate
from wsrep.provider import Provider
from wsrep.writeset import WriteSet, WriteSetFlags

pytestmark = pytest.mark.mariadb

TOI = WriteSetFlags.ISOLATION | WriteSetFlags.COMMIT
REPORT = WriteSetFlags.ISOLATION | WriteSetFlags.ROLLBACK
MEMBERS = tuple(MemberInfo(f"n{i}", f"127.0.0.1:{4000 + i}") for i in (1, 2, 3))


class StandInProvider:
    """What `Isolation` uses of the provider."""

    def __init__(self) -> None:
        self.node_name = "n2"
        self.gate = OrderingGate(0)
        self.view = View(uuid.UUID(int=5), 1, MEMBERS, True, 1)
        self.inconsistent: list[str] = []
        self.announced: list[WriteSet] = []
        self._trx = 0

    def new_trx_id(self) -> int:
        self._trx += 1
        return self._trx

    def commit(self, seqno: int) -> None:
        self.gate.commit(seqno)

    def mark_inconsistent(self, reason: str) -> None:
        self.inconsistent.append(reason)

    async def announce(self, ws: WriteSet) -> None:
        self.announced.append(ws)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A server of its own: capture is installed on every table of it."""
    srv = MariaDBServer(Path(tmp_path_factory.mktemp("toi")), name="toi")
    srv.start()
    try:
        yield srv
    finally:
        srv.destroy()


@pytest.fixture
async def node(server: MariaDBServer) -> AsyncIterator[tuple[Isolation, StandInProvider]]:
    connect = functools.partial(BackendClient.connect, server.host, server.port, "root")
    async with await connect() as admin:
        await admin.query("DROP DATABASE IF EXISTS s1")
        await admin.query("CREATE DATABASE s1")
        catalog: Catalog = await install(admin)
        await admin.query("UPDATE wsrep.position SET seqno = 0")
    provider = StandInProvider()
    isolation = Isolation(cast(Provider, provider), connect, catalog, kill_connection)
    async with trio.open_nursery() as nursery:
        await nursery.start(isolation.run)
        yield isolation, provider
        nursery.cancel_scope.cancel()


def statement(text: bytes, schema: str | None = "s1", **variables: str | None) -> WriteSet:
    payload = IsolatedStatement(text, schema, None, tuple(variables.items()))
    return WriteSet("n1", 1, 0, (), encode(payload), TOI)


async def query(server: MariaDBServer, sql: str) -> list[tuple[object, ...]]:
    async with await BackendClient.connect(server.host, server.port, "root") as client:
        return [tuple(r) for r in (await client.query(sql)).rows]


async def reports(provider: StandInProvider) -> list[IsolationOutcome]:
    await trio.sleep(0.05)  # `run` sends them
    return [cast(IsolationOutcome, decode(ws.data)) for ws in provider.announced]


async def test_statement_runs_with_the_origins_context_and_capture_follows(
    server: MariaDBServer, node: tuple[Isolation, StandInProvider]
) -> None:
    isolation, provider = node
    text = "CREATE TABLE \"q\" (id INT PRIMARY KEY, s VARCHAR(5) DEFAULT 'é\\')".encode("latin1")
    ws = statement(
        text,
        sql_mode="ANSI_QUOTES,NO_BACKSLASH_ESCAPES",
        character_set_client="latin1",
        collation_connection="utf8mb4_general_ci",
    )
    await isolation.apply(1, ws)
    assert provider.gate.last_committed == 1
    assert await query(server, "SELECT seqno FROM wsrep.position") == [(b"1",)]
    await query(server, "INSERT INTO s1.q (id) VALUES (1)")
    # é then one backslash (NO_BACKSLASH_ESCAPES), read as latin1
    assert await query(server, "SELECT HEX(s) FROM s1.q") == [(b"C3A95C",)]
    assert ("s1", "q") in isolation.catalog.shapes
    triggers = await query(
        server, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_TABLE = 'q'"
    )
    assert triggers == [(b"3",)]
    assert await reports(provider) == [IsolationOutcome(1, 0, "n1")]
    assert not provider.inconsistent


async def test_definer_of_the_origin(
    server: MariaDBServer, node: tuple[Isolation, StandInProvider]
) -> None:
    isolation, _ = node
    payload = IsolatedStatement(b"CREATE VIEW v AS SELECT 1 AS one", "s1", "`someone`@`%`")
    await isolation.apply(1, WriteSet("n1", 1, 0, (), encode(payload), TOI))
    rows = await query(server, "SHOW CREATE VIEW s1.v")
    assert b"DEFINER=`someone`@`%`" in cast(bytes, rows[0][1])


@pytest.mark.parametrize("data", [b"", b"garbage", b"T\x01\x05", b"R\x01\x01"])
async def test_unreadable_payload_owns_its_seqno_and_is_reported(
    server: MariaDBServer, node: tuple[Isolation, StandInProvider], data: bytes
) -> None:
    isolation, provider = node
    await isolation.apply(1, WriteSet("n1", 1, 0, (), data, TOI))
    assert provider.gate.last_committed == 1
    assert await query(server, "SELECT seqno FROM wsrep.position") == [(b"1",)]
    assert await reports(provider) == [IsolationOutcome(1, UNREADABLE, "n1")]


async def test_an_outcome_off_the_majority_is_inconsistent(
    node: tuple[Isolation, StandInProvider],
) -> None:
    isolation, provider = node
    await isolation.apply(1, statement(b"DROP TABLE s1.missing"))  # 1051 here
    assert await reports(provider) == [IsolationOutcome(1, 1051, "n1")]
    for seqno, member in ((2, "n1"), (3, "n3")):
        report = encode(IsolationOutcome(1, 0, "n1"))
        await isolation.apply(seqno, WriteSet(member, seqno, 1, (), report, REPORT))
    assert provider.gate.last_committed == 3
    assert len(provider.inconsistent) == 1
    assert (
        "TOI seqno 1 came out differently: error 1051 here, OK in the cluster"
        in (provider.inconsistent[0])
    )


async def test_holder_of_a_metadata_lock_is_aborted(
    server: MariaDBServer, node: tuple[Isolation, StandInProvider]
) -> None:
    isolation, provider = node
    await isolation.apply(1, statement(b"CREATE TABLE t (id INT PRIMARY KEY)"))
    holder = await BackendClient.connect(server.host, server.port, "root")
    try:
        await holder.query("START TRANSACTION")
        await holder.query("SELECT * FROM s1.t")  # holds a shared metadata lock
        with trio.fail_after(30):
            await isolation.apply(2, statement(b"ALTER TABLE t ADD COLUMN c INT"))
        with pytest.raises((BackendError, PeerClosed, ProtocolError, OSError)):  # killed
            await holder.query("SELECT 1")
    finally:
        await holder.aclose()
    assert provider.gate.last_committed == 2
    assert await reports(provider) == [
        IsolationOutcome(1, 0, "n1"),
        IsolationOutcome(2, 0, "n1"),
    ]
