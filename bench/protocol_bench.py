"""What the MySQL-protocol hot path costs in Python work.

Feeds recorded-shape replies (the drain's row SELECT, the capture table's DELETE ...
RETURNING, the OK packets of appliers and commits) through
`text_result.TextResultReader` and through the per-packet reader it replaced
(`PacketReader.next_packet` + `Column.parse` + `parse_text_row` per packet, the loop
`backend_client.read_result` ran before), and relays a command through the response
tracker. Prints CPU ns per result, per row and per packet, and Python function calls per
result (cProfile). With `--live`, also starts a managed MariaDB and prints the proxy
side's CPU per internal query through `BackendClient` (round trip, trio wait and parsing
included: the cost an applier or the drain pays per query).

    .venv/bin/python bench/protocol_bench.py [--rounds 20000] [--live [--queries 3000]]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

from proxy.backend_client import BackendClient
from proxy.managed_mariadb import MariaDBServer
from proxy.protocol.constants import EOF_HEADER, Command, FieldType, ServerStatus
from proxy.protocol.packet_reader import PacketReader
from proxy.protocol.response_tracker import ResponseTracker
from proxy.protocol.results import (
    Column,
    ErrPacket,
    OkPacket,
    Row,
    parse_text_row,
    text_result_set,
)
from proxy.protocol.text_result import LocalInfileRequest, QueryResult, TextResultReader
from proxy.protocol.wire import frame, read_lenenc_int

_STATUS = int(ServerStatus.IN_TRANS)


def _columns(names: list[str], table: str) -> list[Column]:
    return [Column(n, FieldType.VAR_STRING, table=table, schema="sbtest") for n in names]


def drain_select() -> bytes:
    """The drain's SELECT of final row images: key image, unique and parent key lists,
    then the sbtest row (id, k, c, pad), four rows."""
    cols = _columns(["key_image", "uniques", "parents", "id", "k", "c", "pad"], "sbtest1")
    rows = [
        (b"\x00\x00\x13\x88" + bytes([i]), b"", None, str(5000 + i), str(4990 + i), b"7" * 119,
         b"3" * 59)
        for i in range(4)
    ]  # fmt: skip
    return text_result_set(cols, rows, deprecate_eof=True, status_flags=_STATUS)


def captured_rows() -> bytes:
    """The capture table's DELETE ... RETURNING: seq, table id, key image, old keys."""
    cols = _columns(["seq", "table_id", "key_image", "old_keys"], "wsrep_capture")
    rows = [(str(i), b"7", b"\x00\x00\x13\x88" + bytes([i]), None) for i in range(4)]
    return text_result_set(cols, rows, deprecate_eof=True, status_flags=_STATUS)


def ok_reply() -> bytes:
    return frame(OkPacket(1, 0, _STATUS, 0).encode(), 1)


def per_packet_result(packets: PacketReader, deprecate_eof: bool) -> QueryResult | ErrPacket:
    """The reference reader: one packet at a time, every column definition parsed (what
    `read_result` did before `TextResultReader`). The whole result must be buffered."""

    def take() -> bytes:
        packet = packets.next_packet()
        assert packet is not None, "incomplete result"
        return packet.payload

    payload = take()
    if payload[:1] == b"\xff":
        return ErrPacket.parse(payload)
    if payload[:1] == b"\x00":
        ok = OkPacket.parse(payload)
        return QueryResult((), [], ok.affected_rows, ok.last_insert_id, ok.status_flags)
    count, _ = read_lenenc_int(payload, 0)
    defs = [take() for _ in range(count)]
    for definition in defs:
        Column.parse(definition)
    if not deprecate_eof:
        take()
    rows: list[Row] = []
    limit = 0xFFFFFF if deprecate_eof else 9
    while True:
        payload = take()
        if payload[:1] == bytes((EOF_HEADER,)) and len(payload) < limit:
            if deprecate_eof:
                ok = OkPacket.parse(payload)
                return QueryResult(tuple(defs), rows, 0, 0, ok.status_flags, ok.warnings)
            status = int.from_bytes(payload[3:5], "little")
            return QueryResult(tuple(defs), rows, 0, 0, status, 0)
        if payload[:1] == b"\xff":
            return ErrPacket.parse(payload)
        rows.append(parse_text_row(payload, count))


def fast_result(packets: PacketReader, deprecate_eof: bool) -> QueryResult | ErrPacket:
    outcome = TextResultReader(deprecate_eof).read(packets)
    assert outcome is not None and not isinstance(outcome, LocalInfileRequest)
    return outcome


def _reading(
    reader: Callable[[PacketReader, bool], QueryResult | ErrPacket], reply: bytes
) -> Callable[[], object]:
    packets = PacketReader()

    def run() -> object:
        packets.feed(reply)
        return reader(packets, True)

    return run


def relay_tracker(reply: bytes) -> Callable[[], None]:
    """The relay's per-command work on a reply: the response tracker finds its end."""
    tracker = ResponseTracker(True)

    def run() -> None:
        tracker.start(Command.QUERY, 1)
        assert tracker.feed(reply) == len(reply)

    return run


def measure(name: str, run: Callable[[], object], rounds: int, rows: int, packets: int) -> None:
    for _ in range(min(rounds, 1000)):  # warm up
        run()
    start = time.process_time()
    for _ in range(rounds):
        run()
    ns = (time.process_time() - start) / rounds * 1e9
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(100):
        run()
    profile.disable()
    calls = pstats.Stats(profile).total_calls / 100  # type: ignore[attr-defined]
    per_row = f"{ns / rows:9.0f}" if rows else f"{'-':>9}"
    print(f"{name:48} {ns:10.0f} {per_row} {ns / packets:9.0f} {calls:8.1f}")


LIVE_QUERIES = {
    "SELECT 7 cols x 4 rows": "SELECT UNHEX('0000138800'), '', NULL, id, k, c, pad FROM b.t",
    "UPDATE (OK)": "UPDATE b.t SET k = k + 1 WHERE id = 1",
    "UPDATE; COMMIT (2 OKs)": "UPDATE b.t SET k = k + 1 WHERE id = 2; COMMIT",
}


async def live(port: int, queries: int) -> None:
    async with await BackendClient.connect("127.0.0.1", port, "root") as client:
        await client.query("CREATE DATABASE b")
        await client.query(
            "CREATE TABLE b.t (id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60))"
        )
        rows = ",".join(f"({i}, {i}, '{'7' * 119}', '{'3' * 59}')" for i in range(4))
        await client.query(f"INSERT INTO b.t VALUES {rows}")
        for name, sql in LIVE_QUERIES.items():
            for _ in range(min(queries, 200)):  # warm up
                await client.query_all(sql)
            start = time.process_time()
            for _ in range(queries):
                await client.query_all(sql)
            us = (time.process_time() - start) / queries * 1e6
            print(f"{name:48} {us:8.1f} us CPU per query (this process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--live", action="store_true", help="also measure against MariaDB")
    parser.add_argument("--queries", type=int, default=3000)
    args = parser.parse_args()
    rounds = args.rounds
    replies = {
        "drain SELECT (7 cols x 4 rows)": (drain_select(), 4),
        "capture RETURNING (4 cols x 4 rows)": (captured_rows(), 4),
        "OK": (ok_reply(), 0),
    }
    print(f"{'reply / reader':48} {'ns/result':>10} {'ns/row':>9} {'ns/packet':>9} {'calls':>8}")
    for label, (reply, rows) in replies.items():
        packets = PacketReader()
        count = 0
        packets.feed(reply)
        while packets.next_packet() is not None:
            count += 1
        for reader_name, reader in (
            ("per packet", per_packet_result),
            ("text_result", fast_result),
        ):
            measure(f"{label}, {reader_name}", _reading(reader, reply), rounds, rows, count)
        measure(f"{label}, relay tracker", relay_tracker(reply), rounds, rows, count)
    if args.live:
        with tempfile.TemporaryDirectory() as home:
            server = MariaDBServer(Path(home), name="protocol-bench")
            server.start()
            try:
                trio.run(live, server.port, args.queries)
            finally:
                server.destroy()


if __name__ == "__main__":
    main()
