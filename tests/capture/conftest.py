"""Two real MariaDB servers shared by the capture tests: `a` is the origin, `b` applies."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.backend_client import BackendClient
from proxy.capture import (
    CapturedRows,
    Catalog,
    Position,
    apply_write_set,
    decode_changes,
    drain,
    install,
    prepare_applier_session,
    record_position,
)
from proxy.managed_mariadb import MariaDBServer, running_servers

CLUSTER = "6c1d2f4e-0000-4000-8000-00000000c0de"
_schemas = itertools.count(1)
_seqnos = itertools.count(1)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MariaDBServer]]:
    with running_servers(Path(tmp_path_factory.mktemp("capture")), 2) as pair:
        yield pair


async def connect(srv: MariaDBServer) -> BackendClient:
    return await BackendClient.connect(srv.host, srv.port, "root")


@dataclass
class Pair:
    """One schema created identically on both servers, capture installed on both."""

    schema: str
    a: BackendClient  # the origin's client connection
    b: BackendClient  # an applier connection
    catalog: Catalog  # the origin's
    servers: Sequence[MariaDBServer]

    async def both(self, *statements: str) -> None:
        for conn in (self.a, self.b):
            for statement in statements:
                await conn.query(statement)

    async def install(self) -> None:
        """After DDL: (re)install on both, as TOI would."""
        self.catalog = await install(self.a, [self.schema])
        await install(self.b, [self.schema])

    async def replicate(self, *statements: str) -> CapturedRows:
        """Run `statements` in one transaction on a, drain, commit; apply on b (upserts in
        place where the table has a single unique key, as the appliers do)."""
        position = Position(CLUSTER, next(_seqnos))
        await self.a.query("START TRANSACTION")
        for statement in statements:
            await self.a.query(statement)
        captured = await drain(self.a, self.catalog)
        await record_position(self.a, position)
        await self.a.query("COMMIT")
        changes = decode_changes(captured.payload())
        await apply_write_set(self.b, changes, position, self.catalog.single_unique_key)
        return captured

    async def tables(self) -> list[str]:
        rows = (await self.a.query(f"SHOW TABLES FROM `{self.schema}`")).rows
        return [r[0].decode() for r in rows if r[0] is not None]

    async def assert_same(self) -> None:
        """CHECKSUM TABLE and every row equal on both servers, and nothing left captured
        (compared over fresh connections in the same time zone)."""
        checkers = [await connect(srv) for srv in self.servers]
        try:
            for table in await self.tables():
                name = f"`{self.schema}`.`{table.replace('`', '``')}`"
                sums = [(await c.query(f"CHECKSUM TABLE {name}")).rows for c in checkers]
                assert sums[0] == sums[1], f"{table}: checksums differ"
                select = f"SELECT * FROM {name} ORDER BY 1"
                rows = [(await c.query(select)).rows for c in checkers]
                assert rows[0] == rows[1], f"{table}: rows differ"
            for conn in checkers:
                left = await conn.query("SELECT COUNT(*) FROM wsrep.capture")
                assert left.rows == [(b"0",)], "capture rows left behind"
        finally:
            for conn in checkers:
                await conn.aclose()


async def make_pair(servers: Sequence[MariaDBServer], ddl: Sequence[str]) -> Pair:
    schema = f"cap{next(_schemas)}"
    a, b = await connect(servers[0]), await connect(servers[1])
    for conn in (a, b):
        await conn.query(f"DROP DATABASE IF EXISTS `{schema}`")
        await conn.query(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4")
        await conn.query(f"USE `{schema}`")
        for statement in ddl:
            await conn.query(statement)
    catalog = await install(a, [schema])
    await install(b, [schema])
    await prepare_applier_session(b)
    return Pair(schema, a, b, catalog, servers)


PairFactory = Callable[..., Awaitable[Pair]]


@pytest.fixture
async def pair_factory(servers: list[MariaDBServer]) -> AsyncIterator[PairFactory]:
    made: list[Pair] = []

    async def factory(*ddl: str) -> Pair:
        made.append(await make_pair(servers, ddl))
        return made[-1]

    yield factory
    for p in made:
        await p.a.aclose()
        await p.b.aclose()
