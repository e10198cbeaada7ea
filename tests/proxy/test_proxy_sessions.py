"""Session state as the relay tracks it, the proxy answering queries itself, and the
`wsrepctl proxy` process lifecycle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import MySQLdb
import pymysql
import pytest
import trio
from proxy_testlib import connect

from proxy.backend_client import DEFAULT_CAPABILITIES, BackendClient
from proxy.managed_mariadb import MariaDBServer
from proxy.protocol.auth import native_password
from proxy.protocol.constants import Capability, Command, FieldType, ServerStatus
from proxy.protocol.results import Column, ErrPacket, LocalReply, ResultSet
from proxy.protocol.wire import frame
from proxy.server import ProxyServer
from proxy.session import Session
from proxy.statement_class import SqlMode, StatementKind

Start = Callable[..., object]


def _only_session(server: ProxyServer) -> Session:
    (session,) = server.sessions.values()
    return session


async def test_transaction_state_schema_and_statement(inproc_proxy: Start, schema: str) -> None:
    server, port = await inproc_proxy()  # type: ignore[misc]
    seen: list[tuple[bool, bool, str | None, StatementKind | None]] = []

    def snapshot() -> None:
        s = _only_session(server)
        seen.append((s.in_transaction, s.autocommit, s.schema, s.statement and s.statement.kind))

    conn = await trio.to_thread.run_sync(lambda: connect(port))
    try:
        steps = [
            f"CREATE TABLE {schema}.t (a INT PRIMARY KEY)",
            f"USE {schema}",
            "BEGIN",
            "INSERT INTO t VALUES (1)",
            "COMMIT",
            "SET autocommit = 0",
            "SELECT * FROM t",
            "ROLLBACK",
            "SELECT 1; USE mysql",
        ]
        for sql in steps:
            await trio.to_thread.run_sync(_run_all, conn, sql)
            snapshot()
    finally:
        await trio.to_thread.run_sync(conn.close)
    read, dml, ddl = StatementKind.READ, StatementKind.DML, StatementKind.DDL
    assert seen == [
        (False, True, None, ddl),
        (False, True, schema, StatementKind.USE),
        (True, True, schema, StatementKind.TXN_BEGIN),
        (True, True, schema, dml),
        (False, True, schema, StatementKind.TXN_COMMIT),
        (False, False, schema, StatementKind.SET),
        (True, False, schema, read),  # autocommit off: a read opens a transaction
        (False, False, schema, StatementKind.TXN_ROLLBACK),
        (False, False, "mysql", read),  # the multi-statement's USE counts
    ]


def _run_all(conn: object, sql: str) -> None:
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(sql)
        while cur.nextset():
            pass


async def test_prepared_statements_reset_and_init_db(inproc_proxy: Start, schema: str) -> None:
    server, port = await inproc_proxy()  # type: ignore[misc]
    async with await BackendClient.connect("127.0.0.1", port, "root") as client:
        session = _only_session(server)
        await client.query(f"CREATE TABLE {schema}.t (a INT)")
        await client.stream.send(frame(f"\x16UPDATE {schema}.t SET a = 1".encode(), 0))
        prepare_ok = (await client.stream.read_packet()).payload
        assert prepare_ok[0] == 0x00, prepare_ok
        stmt_id = int.from_bytes(prepare_ok[1:5], "little")
        assert session.prepared[stmt_id].kind is StatementKind.DML
        await client.query("SELECT 1")
        execute = (
            bytes((Command.STMT_EXECUTE,)) + stmt_id.to_bytes(4, "little") + b"\x00\x01\x00\x00\x00"
        )
        await client.stream.send(frame(execute, 0))
        assert (await client.stream.read_packet()).payload[0] == 0x00
        assert session.statement is not None and session.statement.kind is StatementKind.DML
        await client.stream.send(frame(b"\x02mysql", 0))  # COM_INIT_DB
        assert (await client.stream.read_packet()).payload[0] == 0x00
        assert session.schema == "mysql"
        await client.query("BEGIN")
        assert session.in_transaction
        await client.stream.send(frame(bytes((Command.RESET_CONNECTION,)), 0))
        assert (await client.stream.read_packet()).payload[0] == 0x00
        assert not session.in_transaction and not session.prepared
        assert session.schema == "mysql"  # COM_RESET_CONNECTION keeps the database


def _wsrep_status(session: Session, sql: str) -> LocalReply | None:
    if sql.strip().lower() == "show status like 'wsrep_proxy%'":
        return ResultSet(
            [Column("Variable_name"), Column("Value")],
            [("wsrep_proxy_session", session.session_id), ("wsrep_proxy_schema", None)],
        )
    if sql == "SELECT forbidden":
        return ErrPacket(1047, "08S01", "WSREP has not yet prepared node for application use")
    return None


@pytest.mark.parametrize("deprecate_eof", [True, False])
async def test_proxy_answers_a_query_itself(inproc_proxy: Start, deprecate_eof: bool) -> None:
    server, port = await inproc_proxy(interceptor=_wsrep_status)  # type: ignore[misc]
    caps = (
        DEFAULT_CAPABILITIES if deprecate_eof else DEFAULT_CAPABILITIES & ~Capability.DEPRECATE_EOF
    )
    async with await BackendClient.connect("127.0.0.1", port, "root", capabilities=caps) as client:
        assert bool(client.capabilities & Capability.DEPRECATE_EOF) == deprecate_eof
        result = await client.query("SHOW STATUS LIKE 'wsrep_proxy%'")
        assert result.column_names == ("Variable_name", "Value")
        assert result.columns[0].type == FieldType.VAR_STRING
        session_id = str(_only_session(server).session_id).encode()
        assert result.rows == [(b"wsrep_proxy_session", session_id), (b"wsrep_proxy_schema", None)]
        assert result.status_flags & ServerStatus.AUTOCOMMIT
        assert (await client.query("SELECT 5")).rows == [(b"5",)]  # still in step


async def test_real_clients_read_the_proxys_own_result_set(inproc_proxy: Start) -> None:
    _, port = await inproc_proxy(interceptor=_wsrep_status)  # type: ignore[misc]

    def with_pymysql() -> tuple[object, ...]:
        with connect(port) as conn, conn.cursor() as cur:
            cur.execute("SHOW STATUS LIKE 'wsrep_proxy%'")
            rows = cur.fetchall()
            try:
                cur.execute("SELECT forbidden")
            except pymysql.err.MySQLError as exc:
                return rows, exc.args
            return rows, ()

    def with_mysqlclient() -> tuple[object, ...]:
        conn = MySQLdb.connect(host="127.0.0.1", port=port, user="root", password="")
        try:
            cur = conn.cursor()
            cur.execute("SHOW STATUS LIKE 'wsrep_proxy%'")
            rows = cur.fetchall()
            try:
                cur.execute("SELECT forbidden")
            except MySQLdb.OperationalError as exc:
                return rows, exc.args
            return rows, ()
        finally:
            conn.close()

    for run in (with_pymysql, with_mysqlclient):
        rows, error = await trio.to_thread.run_sync(run)
        assert [r[0] for r in rows] == ["wsrep_proxy_session", "wsrep_proxy_schema"]  # type: ignore[index]
        assert rows[1][1] is None  # type: ignore[index]
        assert error == (1047, "WSREP has not yet prepared node for application use")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_wsrepctl_proxy_exits_cleanly_on_signal(
    mariadb: MariaDBServer, tmp_path: Path, sig: signal.Signals
) -> None:
    log_path = tmp_path / "proxy.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsrepctl", "proxy", "--listen", "127.0.0.1:0",
             "--backend", f"{mariadb.host}:{mariadb.port}"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for _ in range(300):
            if "proxy listening on 127.0.0.1:" in log_path.read_text():
                break
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        port = int(log_path.read_text().split("proxy listening on 127.0.0.1:")[1].split()[0])
        with connect(port) as conn, conn.cursor() as cur:  # a session open at shutdown
            cur.execute("SELECT 1")
            os.kill(proc.pid, sig)
            assert proc.wait(15) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"proxy stopping on {sig.name}" in log_path.read_text()


def test_wsrepctl_proxy_rejects_bad_arguments() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "wsrepctl", "proxy", "--listen", "nowhere",
         "--backend", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


async def test_sql_mode_follows_the_backend(inproc_proxy: Start, schema: str) -> None:
    server, port = await inproc_proxy()  # type: ignore[misc]
    async with await BackendClient.connect("127.0.0.1", port, "root", database=schema) as client:
        session = _only_session(server)
        assert session.parse_mode == SqlMode.DEFAULT
        await client.query("CREATE TABLE t (a INT)")
        await client.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
        assert session.sql_mode_stale
        await client.query('UPDATE "t" SET a = 1')  # a name, under ANSI_QUOTES
        assert session.parse_mode == SqlMode.ANSI_QUOTES
        assert session.statement is not None
        assert [table.name for table in session.statement.tables] == ["t"]
        await client.query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")
        assert session.parse_mode & SqlMode.NO_BACKSLASH_ESCAPES  # from the status flags
        await client.query("SELECT 1")
        assert session.sql_mode_stale  # no double quote: no need to ask yet
        await client.query('SELECT "a\\"')
        assert not session.sql_mode_stale
        assert session.parse_mode == SqlMode.NO_BACKSLASH_ESCAPES


async def test_change_user_resets_the_session(inproc_proxy: Start, mariadb: MariaDBServer) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER 'cu2'@'127.0.0.1' IDENTIFIED BY 'pw'")
        cur.execute("GRANT SELECT ON mysql.* TO 'cu2'@'127.0.0.1'")
    server, port = await inproc_proxy()  # type: ignore[misc]
    async with await BackendClient.connect("127.0.0.1", port, "root") as client:
        session = _only_session(server)
        await client.query("BEGIN")
        assert session.in_transaction and session.user == "root"
        scramble = native_password(b"pw", client.greeting.auth_data)  # the backend's own
        payload = b"\x11cu2\x00" + bytes((len(scramble),)) + scramble + b"mysql\x00"
        await client.stream.send(frame(payload + b"\x2d\x00mysql_native_password\x00", 0))
        reply = await client.stream.read_packet()
        if reply.payload[0] == 0xFE:  # auth switch with a fresh scramble
            fresh = reply.payload[reply.payload.index(b"\x00", 1) + 1 :].rstrip(b"\x00")
            await client.stream.send(frame(native_password(b"pw", fresh), reply.seq + 1))
            reply = await client.stream.read_packet()
        assert reply.payload[0] == 0x00, reply.payload
        # Updated before the OK was sent, not after.
        assert (session.user, session.schema, session.in_transaction) == ("cu2", "mysql", False)
        assert (await client.query("SELECT CURRENT_USER()")).rows == [(b"cu2@127.0.0.1",)]


def test_wsrepctl_proxy_start_failures_are_clear(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "wsrepctl", "proxy", "--backend", "127.0.0.1:1"]
    bad_cert = subprocess.run(
        [*base, "--listen", "127.0.0.1:0", "--tls-cert", str(tmp_path / "none.crt"),
         "--tls-key", str(tmp_path / "none.key")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad_cert.returncode == 1
    assert f"cannot load TLS certificate {tmp_path / 'none.crt'}" in bad_cert.stderr
    assert "Traceback" not in bad_cert.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = subprocess.run(
            [*base, "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30
        )
    assert in_use.returncode == 1 and "proxy failed to start" in in_use.stderr
    assert "Traceback" not in in_use.stderr
