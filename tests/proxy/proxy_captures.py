"""Real MariaDB response byte streams, captured raw for the response tracker's tests.

Each command is sent followed by a COM_STATISTICS, whose one-packet answer ("Uptime: ...",
sequence id 1) marks where the command's response ended, without trusting the code under
test.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from proxy.backend_client import DEFAULT_CAPABILITIES, BackendClient
from proxy.protocol.constants import Capability, Command
from proxy.protocol.wire import frame

_MARKER = b"\x01Uptime: "
_CAPTURE_LIMIT = 64 << 20


@dataclass(frozen=True)
class Capture:
    name: str
    command: int
    response: bytes  # the whole response, exactly
    deprecate_eof: bool
    local_infile_file: bytes | None = None  # LOAD DATA LOCAL: the file the client sent
    request_len: int = 0  # LOAD DATA LOCAL: bytes of the 0xfb request in `response`


def execute_payload(stmt_id: int, params: list[int], cursor: bool = False) -> bytes:
    """COM_STMT_EXECUTE with BIGINT parameters."""
    out = [bytes((Command.STMT_EXECUTE,)), stmt_id.to_bytes(4, "little")]
    out += [bytes((1 if cursor else 0,)), (1).to_bytes(4, "little")]
    if params:
        out += [bytes((len(params) + 7) // 8), b"\x01", b"\x08\x00" * len(params)]
        out += [p.to_bytes(8, "little", signed=True) for p in params]
    return b"".join(out)


async def _exchange(client: BackendClient, payload: bytes) -> bytes:
    await client.stream.send(frame(payload, 0))
    return await _until_marker(client, 2 if payload[:1] == b"\x09" else 1)


async def _until_marker(client: BackendClient, markers: int = 1) -> bytes:
    """Sends the marker command; returns what came before the marker's answer."""
    await client.stream.send(frame(bytes((Command.STATISTICS,)), 0))
    buf = bytearray()
    while True:
        buf += await client.stream.receive_some()
        assert len(buf) < _CAPTURE_LIMIT
        at = buf.rfind(_MARKER)
        if at >= 3 and buf.count(_MARKER) >= markers:
            start = at - 3
            if start + 4 + int.from_bytes(buf[start:at], "little") == len(buf):
                return bytes(buf[:start])


async def _capture_local_infile(client: BackendClient, table: str, deprecate: bool) -> Capture:
    sql = f"LOAD DATA LOCAL INFILE '/nonexistent/x.csv' INTO TABLE {table}"
    await client.stream.send(frame(b"\x03" + sql.encode(), 0))
    request = bytearray()
    while len(request) < 4 or len(request) < 4 + int.from_bytes(request[:3], "little"):
        request += await client.stream.receive_some()
    assert request[4] == 0xFB, bytes(request)
    data = b"".join(f"{i}\t{i * i}\n".encode() for i in range(100, 140))
    file_packets = frame(data, 2) + frame(b"", 3)
    await client.stream.send(file_packets)
    rest = await _until_marker(client)
    name = f"local_infile_deprecate={deprecate}"
    return Capture(
        name, Command.QUERY, bytes(request) + rest, deprecate, file_packets, len(request)
    )


async def _capture_all(host: str, port: int, deprecate: bool) -> list[Capture]:
    caps = DEFAULT_CAPABILITIES | Capability.LOCAL_FILES
    if not deprecate:
        caps &= ~Capability.DEPRECATE_EOF
    schema = f"tracker_{int(deprecate)}"
    out: list[Capture] = []
    async with await BackendClient.connect(host, port, "root", capabilities=caps) as client:
        await client.query_all(
            f"DROP DATABASE IF EXISTS {schema}; CREATE DATABASE {schema}; USE {schema};"
            "CREATE TABLE t (a BIGINT PRIMARY KEY, b TEXT, c DOUBLE);"
            "INSERT INTO t SELECT seq, REPEAT('x', seq), seq / 3 FROM seq_1_to_50;"
            "CREATE PROCEDURE two() BEGIN SELECT 1; SELECT a, b FROM t LIMIT 3; END"
        )

        async def cap(name: str, payload: bytes) -> bytes:
            response = await _exchange(client, payload)
            out.append(Capture(f"{name}_deprecate={deprecate}", payload[0], response, deprecate))
            return response

        def query(sql: str) -> bytes:
            return b"\x03" + sql.encode()

        await cap("select_rows", query("SELECT * FROM t"))
        await cap("select_empty", query("SELECT * FROM t WHERE a < 0"))
        await cap("select_null_first", query("SELECT NULL, '', 0xfe"))
        await cap("do", query("DO 1"))
        await cap("insert", query("INSERT INTO t VALUES (1000, 'y', 1)"))
        await cap("error", query("SELECT * FROM missing_table"))
        await cap("multi", query("SELECT 1; SELECT a, b FROM t LIMIT 5; DO 2; SELECT 3"))
        await cap("multi_error", query("SELECT 1; SELECT * FROM missing_table; SELECT 3"))
        await cap("call", query("CALL two()"))
        await cap("big_row", query("SELECT REPEAT('z', 16777300), 1"))
        await cap("field_list", b"\x04t\x00")
        await cap("statistics", b"\x09")
        await cap("ping", b"\x0e")
        await cap("init_db", b"\x02" + schema.encode())
        await cap("init_db_error", b"\x02no_such_db")
        await cap("set_option", b"\x1b\x00\x00")
        prep = await cap("prepare", b"\x16SELECT a, b, ? FROM t WHERE a > ?")
        stmt = int.from_bytes(prep[5:9], "little")
        await cap("prepare_no_columns", b"\x16DO ?")
        await cap("prepare_no_params", b"\x16SELECT 1")
        await cap("prepare_error", b"\x16SELECT * FROM missing_table")
        await cap("execute", execute_payload(stmt, [7, 40]))
        await cap("execute_cursor", execute_payload(stmt, [7, 40], cursor=True))
        for i in range(4):
            await cap(
                f"fetch_{i}", b"\x1c" + stmt.to_bytes(4, "little") + (4).to_bytes(4, "little")
            )
        await cap("stmt_reset", b"\x1a" + stmt.to_bytes(4, "little"))
        await cap("execute_unknown", execute_payload(99999, []))
        out.append(await _capture_local_infile(client, "t", deprecate))
        await client.query(f"DROP DATABASE {schema}")
    return out


def capture_responses(host: str, port: int) -> list[Capture]:
    async def both() -> list[Capture]:
        return [*await _capture_all(host, port, True), *await _capture_all(host, port, False)]

    return trio.run(both)
