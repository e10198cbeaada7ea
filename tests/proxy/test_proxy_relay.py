"""Through `wsrepctl proxy` against a real MariaDB: what clients see is what MariaDB says."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import threading
import time

import pymysql
import pytest
import trio
from proxy_captures import capture_responses
from proxy_testlib import connect

from bench.proxy_bench import ServiceProcess
from proxy.backend_client import BackendClient, BackendError
from proxy.managed_mariadb import MariaDBServer
from proxy.protocol.constants import Command
from proxy.protocol.packet_reader import PacketReader
from proxy.protocol.results import ErrPacket
from proxy.protocol.wire import frame, read_lenenc_bytes


def test_pymysql_basics(cli_proxy: ServiceProcess, schema: str) -> None:
    with connect(cli_proxy.port, database=schema) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20), n INT)")
        assert cur.execute("INSERT INTO t (v, n) VALUES ('a', 1), ('b', NULL), ('ü', 3)") == 3
        assert conn.insert_id() == 1
        cur.execute("SELECT id, v, n FROM t ORDER BY id")
        assert cur.fetchall() == ((1, "a", 1), (2, "b", None), (3, "ü", 3))
        assert [d[0] for d in cur.description] == ["id", "v", "n"]
        with pytest.raises(pymysql.err.IntegrityError) as dup:
            cur.execute("INSERT INTO t (id, v) VALUES (1, 'dup')")
        assert dup.value.args[0] == 1062
        with pytest.raises(pymysql.err.ProgrammingError) as missing:
            cur.execute("SELECT * FROM no_such_table")
        assert missing.value.args[0] == 1146
        conn.begin()
        cur.execute("UPDATE t SET n = 10 WHERE id = 1")
        conn.rollback()
        cur.execute("SELECT n FROM t WHERE id = 1")
        assert cur.fetchone() == (1,)
        conn.ping()
        conn.select_db("mysql")
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("mysql",)


def test_multi_statements_and_results(cli_proxy: ServiceProcess, schema: str) -> None:
    with connect(cli_proxy.port, database=schema) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE t (a INT); INSERT INTO t VALUES (1),(2); SELECT a FROM t; SELECT 'x', 'y'"
        )
        sets = [tuple(cur.fetchall())]
        while cur.nextset():
            sets.append(tuple(cur.fetchall()))
        assert sets == [(), (), ((1,), (2,)), (("x", "y"),)]
        with pytest.raises(pymysql.err.ProgrammingError):
            cur.execute("SELECT 1; SELECT * FROM missing; SELECT 3")
            while cur.nextset():
                pass
        cur.execute("SELECT 42")  # the session is still in step
        assert cur.fetchone() == (42,)


def test_packets_over_16_mib_both_ways(cli_proxy: ServiceProcess, schema: str) -> None:
    blob = bytes(range(256)) * (20 * 4096)  # 20 MiB
    conn = connect(cli_proxy.port, database=schema, max_allowed_packet=64 << 20)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE b (id INT PRIMARY KEY, data LONGBLOB)")
        cur.execute("INSERT INTO b VALUES (1, %s)", (blob,))
        cur.execute("SELECT data, LENGTH(data) FROM b WHERE id = 1")
        data, length = cur.fetchone()
    assert length == len(blob) and data == blob


def test_local_infile(
    cli_proxy: ServiceProcess, schema: str, tmp_path: pytest.TempPathFactory
) -> None:
    path = tmp_path / "rows.tsv"  # type: ignore[operator]
    path.write_text("".join(f"{i}\tv{i}\n" for i in range(500)))
    with connect(cli_proxy.port, database=schema, local_infile=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (a INT, b TEXT)")
        cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE t")
        cur.execute("SELECT COUNT(*), SUM(a) FROM t")
        assert cur.fetchone() == (500, sum(range(500)))


def test_raw_commands_answered_as_mariadb_answers_them(
    cli_proxy: ServiceProcess, mariadb: MariaDBServer
) -> None:
    """Every command of the capture set, raw, through the proxy and directly: same bytes
    (prepared statements, cursors and COM_STMT_FETCH, COM_FIELD_LIST, COM_SET_OPTION,
    LOCAL INFILE, multi-results, a 16 MiB row, with and without DEPRECATE_EOF)."""
    direct = {c.name: c for c in capture_responses(mariadb.host, mariadb.port)}
    proxied = {c.name: c for c in capture_responses(cli_proxy.host, cli_proxy.port)}
    assert direct.keys() == proxied.keys()
    for name, capture in direct.items():
        if name.startswith("statistics"):  # uptime and counters move on
            assert proxied[name].response[4:12] == b"Uptime: "
            continue
        assert _same_ids(proxied[name].response) == _same_ids(capture.response), name


def _same_ids(response: bytes) -> bytes:
    """Statement ids count per server, not per connection: blank them out."""
    if response[:5] == b"\x0c\x00\x00\x01\x00":  # COM_STMT_PREPARE's OK
        response = response[:5] + b"\x00" * 4 + response[9:]
    if response[4:5] == b"\xff":  # an ERR naming the statement: compare the payload only
        return re.sub(rb"statement \(\d+\)", b"statement (N)", response[4:])
    return response


async def _raw(port: int) -> BackendClient:
    return await BackendClient.connect("127.0.0.1", port, "root")


async def _command(client: BackendClient, payload: bytes) -> bytes:
    await client.stream.send(frame(payload, 0))
    return (await client.stream.read_packet()).payload


@pytest.mark.parametrize(
    "command", [Command.BINLOG_DUMP, Command.REGISTER_SLAVE, Command.SLEEP, Command.TIME, 0x99]
)
async def test_unsupported_command_gets_an_error_and_the_session_goes_on(
    cli_proxy: ServiceProcess, command: int
) -> None:
    async with await _raw(cli_proxy.port) as client:
        reply = await _command(client, bytes((command,)) + b"\x00" * 8)
        err = ErrPacket.parse(reply)
        assert err.code == 1047 and err.sqlstate == "08S01"
        assert f"{command:#04x}" in err.message
        assert (await client.query("SELECT 7")).rows == [(b"7",)]


async def test_change_user_and_reset_connection(
    cli_proxy: ServiceProcess, mariadb: MariaDBServer
) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER 'cu'@'127.0.0.1' IDENTIFIED BY 'pw2'")
        cur.execute("GRANT SELECT ON mysql.* TO 'cu'@'127.0.0.1'")
    async with await _raw(cli_proxy.port) as client:
        await client.query("SET @x = 5")
        reply = await _command(client, bytes((Command.RESET_CONNECTION,)))
        assert reply[0] == 0x00
        assert (await client.query("SELECT @x")).rows == [(None,)]
        # COM_CHANGE_USER with a wrong scramble: the backend's own 1045, relayed.
        payload = bytes((Command.CHANGE_USER,)) + b"cu\x00" + b"\x14" + b"x" * 20 + b"mysql\x00"
        payload += b"\x2d\x00mysql_native_password\x00"
        await client.stream.send(frame(payload, 0))
        packet = await client.stream.read_packet()
        if packet.payload[0] == 0xFE:  # auth switch: answer it with another wrong scramble
            await client.stream.send(frame(b"y" * 20, packet.seq + 1))
            packet = await client.stream.read_packet()
        assert ErrPacket.parse(packet.payload).code == 1045


def test_wrong_password_gets_the_backends_1045(
    cli_proxy: ServiceProcess, mariadb: MariaDBServer
) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER 'app'@'127.0.0.1' IDENTIFIED BY 's3cret'")
    with pytest.raises(pymysql.err.OperationalError) as denied:
        connect(cli_proxy.port, user="app", password="wrong")
    assert denied.value.args[0] == 1045
    assert "app" in denied.value.args[1]
    with connect(cli_proxy.port, user="app", password="s3cret") as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == ("app@127.0.0.1",)


@pytest.fixture
def ed25519_user(mariadb: MariaDBServer) -> str:
    """An account that authenticates with client_ed25519 (password 'edpw')."""
    with mariadb.connect() as conn, conn.cursor() as cur:
        try:
            cur.execute("INSTALL SONAME 'auth_ed25519'")
        except pymysql.err.MySQLError as exc:  # already installed
            assert exc.args[0] in (1062, 1968), exc
        cur.execute(
            "CREATE OR REPLACE USER 'ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('edpw')"
        )
    return "ed"


def _mariadb_cli(
    port: int, user: str, password: str, *tls: str
) -> subprocess.CompletedProcess[str]:
    argv = ["mariadb", "-h127.0.0.1", f"-P{port}", f"-u{user}", f"-p{password}", "-N"]
    argv += [*(tls or ["--skip-ssl"]), "-e", "SELECT CURRENT_USER()"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_ed25519_account_through_auth_switch(cli_proxy: ServiceProcess, ed25519_user: str) -> None:
    """client_ed25519 is negotiated by an auth switch the proxy relays without knowing it."""
    ok = _mariadb_cli(cli_proxy.port, ed25519_user, "edpw")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "ed@127.0.0.1"
    bad = _mariadb_cli(cli_proxy.port, ed25519_user, "nope")
    assert bad.returncode != 0 and "1045" in bad.stderr


def test_tls_terminates_at_the_proxy(
    start_proxy, mariadb: MariaDBServer, tls_files, ed25519_user
) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls_files
    proxy = start_proxy(
        (mariadb.host, mariadb.port), "--tls-cert", str(cert), "--tls-key", str(key)
    )
    with connect(proxy.port, ssl_ca=str(cert), ssl_verify_cert=True) as conn:
        assert "SSL" in type(conn._sock).__name__  # the client really speaks TLS
        with conn.cursor() as cur:
            cur.execute("SELECT REPEAT('t', 100000), 1")
            assert cur.fetchone() == ("t" * 100000, 1)
    with connect(proxy.port) as plain, plain.cursor() as cur:  # TLS is offered, not forced
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    assert "over TLS" in proxy.log_text()
    # An auth switch over TLS: sequence ids renumbered both ways, for every round trip.
    tls = ("--ssl", f"--ssl-ca={cert}", "--ssl-verify-server-cert")
    ok = _mariadb_cli(proxy.port, ed25519_user, "edpw", *tls)
    assert ok.returncode == 0 and ok.stdout.strip() == "ed@127.0.0.1", ok.stderr
    bad = _mariadb_cli(proxy.port, ed25519_user, "nope", *tls)
    assert bad.returncode != 0 and "1045" in bad.stderr


def test_client_leaving_mid_result_ends_only_its_session(cli_proxy: ServiceProcess) -> None:
    with connect(cli_proxy.port) as bystander, bystander.cursor() as cur:
        with socket.create_connection(("127.0.0.1", cli_proxy.port), timeout=20) as raw:
            conn = connect(cli_proxy.port)
            conn._sock.sendall(frame(b"\x03SELECT REPEAT('r', 1000000) FROM seq_1_to_50", 0))
            conn._sock.recv(1000)  # the result has started streaming
            conn._sock.close()
            raw.close()
        for _ in range(3):
            cur.execute("SELECT 'ok'")
            assert cur.fetchone() == ("ok",)
    assert cli_proxy.alive


def test_connection_limit(start_proxy, mariadb: MariaDBServer) -> None:  # type: ignore[no-untyped-def]
    proxy = start_proxy((mariadb.host, mariadb.port), "--max-connections", "2")
    first, second = connect(proxy.port), connect(proxy.port)
    with pytest.raises(pymysql.err.OperationalError) as refused:
        connect(proxy.port)
    assert refused.value.args == (1040, "Too many connections")
    first.close()
    for _ in range(100):  # the proxy notices the close asynchronously
        try:
            third = connect(proxy.port)
            break
        except pymysql.err.OperationalError:
            time.sleep(0.05)
    else:
        pytest.fail("a freed connection slot was never reused")
    third.close()
    second.close()


def test_backend_down_at_connect(start_proxy) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as holder:  # a port nobody listens on
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        proxy = start_proxy(("127.0.0.1", port))
        with pytest.raises(pymysql.err.OperationalError) as refused:
            connect(proxy.port)
    assert refused.value.args[0] == 2003
    assert f"127.0.0.1:{port}" in refused.value.args[1]


def test_backend_killed_mid_query(start_proxy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = MariaDBServer(tmp_path / "victim", name="victim")
    server.start()
    try:
        proxy = start_proxy((server.host, server.port))
        conn = connect(proxy.port)
        bystander = connect(proxy.port)

        errors: list[BaseException] = []

        def run_long() -> None:
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT SLEEP(60)")
            except pymysql.err.MySQLError as exc:
                errors.append(exc)

        query = threading.Thread(target=run_long)
        query.start()
        time.sleep(0.5)  # let the query reach the server (if not, 2013 comes all the same)
        server.kill()
        query.join(30)
        assert not query.is_alive(), "the client hangs after its backend died"
        error = errors[0]
        assert isinstance(error, pymysql.err.OperationalError)
        assert error.args[0] == 2013
        with pytest.raises(pymysql.err.OperationalError):
            connect(proxy.port)  # backend gone: 2003 at connect
        bystander.close()
    finally:
        server.destroy()


def test_handshake_timeout(start_proxy, mariadb: MariaDBServer) -> None:  # type: ignore[no-untyped-def]
    proxy = start_proxy((mariadb.host, mariadb.port), "--handshake-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
        greeting = sock.recv(4096)
        assert greeting[4] == 10
        assert sock.recv(4096) == b""  # closed by the proxy, not by our 20 s timeout
    assert "no handshake within" in proxy.log_text()


def _raw_session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.recv(4096)  # greeting
    return sock


def test_malformed_and_oversized_packets_close_only_that_session(
    start_proxy, mariadb: MariaDBServer
) -> None:  # type: ignore[no-untyped-def]
    proxy = start_proxy((mariadb.host, mariadb.port), "--max-packet-size", "100000")
    with connect(proxy.port) as bystander, bystander.cursor() as cur:
        for junk in (
            b"\x05\x00\x00\x01hello",  # not a handshake response
            b"\x00\x00\x00\x01",  # empty
            (200000).to_bytes(3, "little") + b"\x01" + b"x" * 1000,  # oversized handshake
        ):
            with _raw_session(proxy.port) as sock:
                sock.sendall(junk)
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                reader = PacketReader()
                reader.feed(data)
                packet = reader.next_packet()
                assert packet is not None and packet.payload[0] == 0xFF, data
        victim = connect(proxy.port)
        with pytest.raises(pymysql.err.OperationalError) as too_big, victim.cursor() as vcur:
            vcur.execute("SELECT '" + "x" * 200000 + "'")
        assert too_big.value.args[0] in (1153, 2013)
        cur.execute("SELECT 'still here'")
        assert cur.fetchone() == ("still here",)
    log = proxy.log_text()
    assert "malformed packet" in log and "exceeds 100000" in log


async def test_backend_client_errors_keep_the_connection(cli_proxy: ServiceProcess) -> None:
    async with await _raw(cli_proxy.port) as client:
        with pytest.raises(BackendError) as err:
            await client.query_all("SELECT 1; SELECT * FROM nope.nope")
        assert (err.value.code, err.value.sqlstate) == (1146, "42S02")
        results = await client.query_all("SELECT 1 AS one, NULL; DO 1; SELECT LAST_INSERT_ID()")
        assert results[0].column_names == ("one", "NULL")
        assert results[0].rows == [(b"1", None)]
        assert len(results) == 3


async def test_send_long_data_then_execute(cli_proxy: ServiceProcess) -> None:
    """COM_STMT_SEND_LONG_DATA has no response: the next command's answer is the next one."""
    with trio.fail_after(60):
        await _long_data_then_execute(cli_proxy.port)


async def _long_data_then_execute(port: int) -> None:
    async with await _raw(port) as client:
        prepared = await _command(client, b"\x16SELECT MD5(?), MD5(?)")
        assert prepared[0] == 0x00
        stmt = prepared[1:5]
        for _ in range(4):  # 2 parameter and 2 column definitions (DEPRECATE_EOF: no EOFs)
            await client.stream.read_packet()
        chunk = bytes(range(256)) * 4096  # 1 MiB
        for param in (0, 1):
            for _ in range(3):
                long_data = b"\x18" + stmt + param.to_bytes(2, "little") + chunk
                await client.stream.send(frame(long_data, 0))
        execute = b"\x17" + stmt + b"\x00\x01\x00\x00\x00" + b"\x00" + b"\x01" + b"\xfc\x00" * 2
        await client.stream.send(frame(execute, 0))
        packets = [(await client.stream.read_packet()).payload for _ in range(5)]
        assert packets[0] == b"\x02"  # two columns; then 2 definitions, the row, the OK
        row = packets[3]  # binary row: header, NULL bitmap, two length-encoded strings
        expected = hashlib.md5(chunk * 3).hexdigest().encode()
        assert row[:2] == b"\x00\x00"
        first, pos = read_lenenc_bytes(row, 2)
        assert (first, read_lenenc_bytes(row, pos)[0]) == (expected, expected)
        assert (await client.query("SELECT 1")).rows == [(b"1",)]


async def test_backend_client_authenticates_with_ed25519(
    cli_proxy: ServiceProcess, mariadb: MariaDBServer, ed25519_user: str
) -> None:
    for port in (mariadb.port, cli_proxy.port):  # directly, and through the proxy
        async with await BackendClient.connect("127.0.0.1", port, ed25519_user, "edpw") as c:
            assert (await c.query("SELECT CURRENT_USER()")).rows == [(b"ed@127.0.0.1",)]
        with pytest.raises(BackendError) as denied:
            await BackendClient.connect("127.0.0.1", port, ed25519_user, "wrong")
        assert denied.value.code == 1045
