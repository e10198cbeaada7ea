"""The backend client against a real MariaDB: every result shape its reader must cut
right (rows of every size, NULLs, packets split in frames, multi-results with an error
in the middle, LOAD DATA LOCAL refused), both EOF modes; the connection stays in step."""

from __future__ import annotations

import pytest
import trio

from proxy.backend_client import DEFAULT_CAPABILITIES, BackendClient, BackendError
from proxy.managed_mariadb import MariaDBServer
from proxy.protocol.constants import Capability, FieldType


async def _connect(mariadb: MariaDBServer, schema: str, caps: int) -> BackendClient:
    return await BackendClient.connect(mariadb.host, mariadb.port, "root", "", schema, caps)


@pytest.mark.parametrize("deprecate_eof", [True, False])
async def test_result_shapes_in_both_eof_modes(
    mariadb: MariaDBServer, schema: str, deprecate_eof: bool
) -> None:
    caps = (
        DEFAULT_CAPABILITIES if deprecate_eof else DEFAULT_CAPABILITIES & ~Capability.DEPRECATE_EOF
    )
    with trio.fail_after(60):
        async with await _connect(mariadb, schema, caps) as client:
            assert bool(client.capabilities & Capability.DEPRECATE_EOF) == deprecate_eof
            await client.query("CREATE TABLE t (id INT PRIMARY KEY, v LONGBLOB, n INT)")
            sizes = [0, 1, 250, 251, 65535, 65536, (1 << 24) - 20, (1 << 24) + 5]
            for i, size in enumerate(sizes):
                await client.query(f"INSERT INTO t VALUES ({i}, REPEAT('x', {size}), NULL)")
            result = await client.query("SELECT id, v, n FROM t ORDER BY id")
            assert result.rows == [(str(i).encode(), b"x" * s, None) for i, s in enumerate(sizes)]
            assert result.column_names == ("id", "v", "n")
            assert result.columns[0].type == FieldType.LONG
            assert (await client.query("SELECT id FROM t WHERE id < 0")).rows == []
            ok = await client.query("UPDATE t SET n = 7 WHERE id > 1")
            assert (ok.affected_rows, ok.rows, ok.columns) == (len(sizes) - 2, [], ())
            with pytest.raises(BackendError) as err:
                await client.query_all("SELECT 1; SELECT * FROM t LIMIT 2; SELECT * FROM nope")
            assert err.value.code == 1146
            results = await client.query_all("SELECT 1; DO 2; SELECT NULL, 'a' AS b")
            assert [r.rows for r in results] == [[(b"1",)], [], [(None, b"a")]]
            assert (await client.query("SELECT 'in step'")).rows == [(b"in step",)]


async def test_load_data_local_is_refused_with_an_empty_file(
    mariadb: MariaDBServer, schema: str
) -> None:
    with trio.fail_after(60):
        async with await _connect(
            mariadb, schema, DEFAULT_CAPABILITIES | Capability.LOCAL_FILES
        ) as client:
            await client.query("CREATE TABLE t (a INT)")
            result = await client.query("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t")
            assert result.affected_rows == 0
            assert (await client.query("SELECT COUNT(*) FROM t")).rows == [(b"0",)]
