"""The wsrep interceptor in a real proxy in front of a real MariaDB, with real clients."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pymysql
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_testlib import synced_status

from proxy.managed_mariadb import MariaDBServer
from proxy.server import ProxyServer
from proxy.sql_text import TokenCursor
from proxy.wsrep_status import WsrepInterceptor, _WhereParser, like_regex, show_text
from wsrep.node_state import NodeState
from wsrep.status import NodeVariables

pytestmark = pytest.mark.mariadb

Proxy = tuple[WsrepInterceptor, int, ProxyServer]


def _connect(port: int) -> pymysql.connections.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root", password="", autocommit=True,
        connect_timeout=10, read_timeout=30,
    )  # fmt: skip


def _query(port: int, *sqls: str) -> list[tuple[tuple[object, ...], ...]]:
    with _connect(port) as conn, conn.cursor() as cur:
        out = []
        for sql in sqls:
            cur.execute(sql)
            out.append(tuple(cur.fetchall()))
        return out


async def run(fn: Callable[..., object], *args: object) -> object:
    return await trio.to_thread.run_sync(fn, *args)


async def test_show_status_through_pymysql(wsrep_proxy: Proxy, mariadb: MariaDBServer) -> None:
    _, port, _ = wsrep_proxy

    def both() -> tuple[object, ...]:
        with _connect(port) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%'")
            ours = cur.fetchall(), cur.description
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%'")  # Debian's server knows wsrep
            return ours, cur.description

    (rows, description), backend_description = await run(both)  # type: ignore[misc]
    expected = {name: show_text(v) for name, v in synced_status().status_variables().items()}
    assert dict(rows) == expected
    assert [r[0] for r in rows] == list(expected)
    assert description == backend_description  # names, types, lengths, flags


async def test_other_status_comes_from_the_backend(wsrep_proxy: Proxy) -> None:
    _, port, _ = wsrep_proxy
    threads, uptime, questions = await run(  # type: ignore[misc]
        _query,
        port,
        "SHOW STATUS LIKE 'Threads_conn%'",
        "SHOW GLOBAL STATUS WHERE Variable_name = 'Uptime'",
        "SHOW STATUS",
    )
    assert [r[0] for r in threads] == ["Threads_connected"]
    assert int(threads[0][1]) >= 1
    assert [r[0] for r in uptime] == ["Uptime"]
    names = {r[0] for r in questions}
    assert "Questions" in names and "Com_select" in names


async def test_set_sync_wait_round_trip(wsrep_proxy: Proxy, mariadb: MariaDBServer) -> None:
    interceptor, port, server = wsrep_proxy

    def session() -> tuple[object, ...]:
        with _connect(port) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 3")
            cur.execute("SELECT @@wsrep_sync_wait, @@session.wsrep_sync_wait AS s")
            selected = cur.fetchall(), cur.description
            cur.execute("SHOW VARIABLES LIKE 'wsrep_sync_wait'")
            shown = cur.fetchall()
            (proxy_session,) = server.sessions.values()
            assert interceptor.sync_wait(proxy_session) == 3  # what the relay will read
            with _connect(port) as other, other.cursor() as cur2:
                cur2.execute("SHOW VARIABLES WHERE Variable_name = 'wsrep_sync_wait'")
                other_shown = cur2.fetchall()
            try:
                cur.execute("SET wsrep_sync_wait = 99")
                error: tuple[object, ...] = ()
            except pymysql.err.MySQLError as exc:
                error = exc.args
            cur.execute("SELECT @@wsrep_sync_wait")
            return selected, shown, other_shown, error, cur.fetchall()

    def backend_description() -> object:
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT @@wsrep_sync_wait, @@session.wsrep_sync_wait AS s")
            return cur.description

    (rows, description), shown, other_shown, error, after = await run(session)  # type: ignore[misc]
    assert rows == ((3, 3),)
    assert description == await run(backend_description)
    assert shown == (("wsrep_sync_wait", "3"),)
    assert other_shown == (("wsrep_sync_wait", "0"),)
    assert error[0] == 1231 and "wsrep_sync_wait" in str(error[1])
    assert after == ((3,),)


async def test_mariadb_cli(wsrep_proxy: Proxy) -> None:
    _, port, _ = wsrep_proxy

    def cli(sql: str) -> list[list[str]]:
        out = subprocess.run(
            ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uroot", "--batch",
             "--skip-ssl", "-e", sql],
            capture_output=True, timeout=30, check=True,
        )  # fmt: skip
        return [line.split("\t") for line in out.stdout.decode().splitlines()]

    status = await run(cli, "SHOW STATUS LIKE 'wsrep%'")
    assert status[0] == ["Variable_name", "Value"]  # type: ignore[index]
    assert dict(status[1:]) == {  # type: ignore[index]
        name: show_text(v) for name, v in synced_status().status_variables().items()
    }
    assert await run(cli, "SELECT @@wsrep_node_name") == [["@@wsrep_node_name"], ["node1"]]
    variables = dict(await run(cli, "SHOW VARIABLES LIKE 'wsrep\\_cluster%'"))  # type: ignore[arg-type]
    assert variables["wsrep_cluster_name"] == "test_cluster"


async def test_not_ready_node_through_the_proxy(
    wsrep_proxy: Proxy, node_status: object, mariadb: MariaDBServer
) -> None:
    _, port, _ = wsrep_proxy
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS status_t")
        cur.execute("CREATE TABLE IF NOT EXISTS status_t.t (a INT PRIMARY KEY)")
        cur.execute("REPLACE INTO status_t.t VALUES (1)")
    node_status.status = synced_status(  # type: ignore[attr-defined]
        state=NodeState.OPEN, ready=False, cluster_status="non-Primary", cluster_size=1
    )

    def client() -> list[object]:
        seen: list[object] = []
        with _connect(port) as conn, conn.cursor() as cur:
            for sql in (
                "SELECT a FROM status_t.t",
                "INSERT INTO status_t.t VALUES (2)",
                "SELECT 1",
                "SHOW STATUS LIKE 'wsrep_cluster_status'",
                "SET wsrep_dirty_reads = ON",
                "SELECT a FROM status_t.t",
                "DELETE FROM status_t.t",
            ):
                try:
                    cur.execute(sql)
                    seen.append(tuple(cur.fetchall()))
                except pymysql.err.MySQLError as exc:
                    seen.append(exc.args)
        return seen

    refused = (1047, "WSREP has not yet prepared node for application use")
    assert await run(client) == [
        refused,
        refused,
        ((1,),),
        (("wsrep_cluster_status", "non-Primary"),),
        (),
        ((1,),),
        refused,
    ]
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT a FROM status_t.t")
        assert cur.fetchall() == ((1,),)  # nothing refused reached the backend
        cur.execute("DROP DATABASE status_t")


_NAME = st.text(alphabet="wsrep_aZ%\\.", min_size=1, max_size=10)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=_NAME, name=st.text(alphabet="wsrep_aZ.", max_size=10))
def test_like_agrees_with_mariadb(mariadb: MariaDBServer, pattern: str, name: str) -> None:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT CAST(%s AS CHAR) COLLATE utf8mb4_general_ci LIKE %s", (name, pattern))
        ((real,),) = cur.fetchall()
    assert bool(real) == (like_regex(pattern).fullmatch(name) is not None)


# Conditions over (Variable_name, Value) built from the forms the interceptor evaluates.
_LITERAL = st.sampled_from(
    ["wsrep_ready", "WSREP_READY", "wsrep_ready  ", "ON", "on", "Synced", "3", "0", "x", ""]
)
_PATTERN = st.sampled_from(["wsrep%", "wsrep\\_local%", "%_size", "%", "WSREP_C%", "o_", "%ed"])
_COLUMN = st.sampled_from(["Variable_name", "Value", "`VARIABLE_NAME`", "value"])


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _atom() -> st.SearchStrategy[str]:
    compare = st.builds(
        lambda c, op, v: f"{c} {op} {_quote(v)}", _COLUMN, st.sampled_from(["=", "<>", "!="]),
        _LITERAL,
    )  # fmt: skip
    like = st.builds(
        lambda c, neg, p: f"{c} {neg}LIKE {_quote(p).replace(chr(92) * 2, chr(92))}",
        _COLUMN, st.sampled_from(["", "NOT "]), _PATTERN,
    )  # fmt: skip
    member = st.builds(
        lambda c, neg, vs: f"{c} {neg}IN ({', '.join(map(_quote, vs))})",
        _COLUMN, st.sampled_from(["", "NOT "]), st.lists(_LITERAL, min_size=1, max_size=3),
    )  # fmt: skip
    return st.one_of(compare, like, member)


_CONDITION = st.recursive(
    _atom(),
    lambda inner: st.one_of(
        st.builds(
            lambda a, op, b: f"({a}) {op} ({b})",
            inner,
            st.sampled_from(["AND", "OR", "&&", "||"]),
            inner,
        ),
        st.builds(lambda a: f"NOT ({a})", inner),
        st.builds(lambda a, b: f"{a} AND {b} OR {a}", inner, inner),  # precedence
    ),
    max_leaves=5,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(condition=_CONDITION)
def test_where_filters_agree_with_mariadb(mariadb: MariaDBServer, condition: str) -> None:
    """Our evaluation of a WHERE over our rows = MariaDB's over the same rows in a table
    with SHOW's column types (utf8mb4_general_ci, PAD SPACE)."""
    rows = [(n, show_text(v)) for n, v in synced_status().status_variables().items()]
    cur_ = TokenCursor(f"WHERE {condition}")
    cur_.accept("WHERE")
    ours = _WhereParser(cur_).parse()
    with mariadb.connect(database="mysql") as conn, conn.cursor() as cur:  # temporary: no trace
        cur.execute(
            "CREATE TEMPORARY TABLE s (Variable_name VARCHAR(64) NOT NULL, Value VARCHAR(4096)"
            " NOT NULL) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        )
        cur.executemany("INSERT INTO s VALUES (%s, %s)", rows)
        cur.execute(f"SELECT Variable_name FROM s WHERE {condition}")
        real = {r[0] for r in cur.fetchall()}
    assert {r[0] for r in rows if ours.keep(r)} == real, condition


def test_every_variable_we_model_is_mariadbs(mariadb: MariaDBServer) -> None:
    """Debian's MariaDB is built with wsrep: our names must be among its own, and values
    that need no provider (defaults) must print the same way."""
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES LIKE 'wsrep%'")
        real = dict(cur.fetchall())
    ours = {n: show_text(v) for n, v in NodeVariables("n").system_variables().items()}
    assert set(ours) <= set(real), set(ours) - set(real)
    same_default = (
        "wsrep_auto_increment_control", "wsrep_causal_reads", "wsrep_certify_nonpk",
        "wsrep_dirty_reads", "wsrep_max_ws_rows", "wsrep_max_ws_size", "wsrep_osu_method",
        "wsrep_retry_autocommit", "wsrep_slave_threads", "wsrep_sync_wait", "wsrep_desync",
        "wsrep_log_conflicts", "wsrep_node_incoming_address", "wsrep_reject_queries",
        "wsrep_start_position", "wsrep_sst_method", "wsrep_cluster_name",
    )  # fmt: skip
    assert {n: ours[n] for n in same_default} == {n: real[n] for n in same_default}


async def test_causal_wait_times_out_through_the_proxy(wsrep_proxy: Proxy) -> None:
    """The fixture's barrier never answers (no group) and its timeout is 1 s: a causal
    read gets Galera's 1205, the session goes on, statements whose bit is unset run."""
    _, port, _ = wsrep_proxy

    def client() -> list[object]:
        seen: list[object] = []
        with _connect(port) as conn, conn.cursor() as cur:
            for sql in (
                "SELECT 1",
                "SET SESSION wsrep_sync_wait = 1",
                "SELECT 1",
                "SET SESSION wsrep_sync_wait = 2",  # UPDATE/DELETE only
                "SELECT 2",
                "SET SESSION wsrep_causal_reads = ON",
                "SELECT 3",
            ):
                try:
                    cur.execute(sql)
                    seen.append(tuple(cur.fetchall()))
                except pymysql.err.MySQLError as exc:
                    seen.append(exc.args[0])
        return seen

    assert await run(client) == [((1,),), (), 1205, (), ((2,),), (), 1205]


def _connector(port: int) -> Any:
    import mysql.connector

    return mysql.connector.connect(
        host="127.0.0.1", port=port, user="root", password="", autocommit=True,
        use_pure=True, ssl_disabled=True, connection_timeout=10,
    )  # fmt: skip


def _error(run_it: Callable[[], object]) -> object:
    import mysql.connector

    try:
        return run_it()
    except mysql.connector.Error as exc:
        return exc.errno


async def test_not_ready_node_refuses_prepared_statements(
    wsrep_proxy: Proxy, node_status: Any, mariadb: MariaDBServer
) -> None:
    _, port, _ = wsrep_proxy
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS status_p")
        cur.execute("CREATE TABLE IF NOT EXISTS status_p.t (a INT PRIMARY KEY)")
        cur.execute("REPLACE INTO status_p.t VALUES (1)")
    not_ready = synced_status(
        state=NodeState.OPEN, ready=False, cluster_status="non-Primary", cluster_size=1
    )

    def become(status: object) -> None:  # on the proxy's trio thread
        trio.from_thread.run_sync(setattr, node_status, "status", status)

    def client() -> list[object]:
        conn = _connector(port)
        read, delete = "SELECT a FROM status_p.t WHERE a = ?", "DELETE FROM status_p.t WHERE a = ?"

        def execute(sql: str, cursor: Any = None) -> object:
            cur = cursor or conn.cursor(prepared=True)
            cur.execute(sql, (1,))
            return cur.fetchall() if cur.description else None

        def text(sql: str) -> object:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall() if cur.description else None

        try:
            prepared = conn.cursor(prepared=True)
            seen = [execute(read, prepared)]
            become(not_ready)
            seen += [
                _error(lambda: execute(read, prepared)),  # COM_STMT_EXECUTE
                _error(lambda: execute(read)),  # COM_STMT_PREPARE
                _error(lambda: execute(delete)),
                conn.cmd_reset_connection(),  # False: refused (1047), as Galera's check does
                text("SET wsrep_dirty_reads = ON"),
                execute(read, prepared),
                execute(read),
                _error(lambda: execute(delete)),
            ]
            become(synced_status())
            conn.cmd_reset_connection()
            seen += [text("SELECT @@wsrep_dirty_reads"), execute(delete)]
            return seen
        finally:
            conn.close()

    assert await run(client) == [
        [(1,)], 1047, 1047, 1047, False, None, [(1,)], [(1,)], 1047, [(0,)], None
    ]  # fmt: skip
    with mariadb.connect() as check, check.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM status_p.t")
        assert cur.fetchall() == ((0,),)  # only the DELETE after the node was ready again
        cur.execute("DROP DATABASE status_p")
