"""What every Python MySQL driver does through the proxy, one step per application feature.

Each step runs against the address under test and returns what the application saw
(results, metadata, error codes); the tests compare that with the same step run directly
against MariaDB, so any difference the proxy makes shows up, and also check the values.

Drivers are imported lazily: the C extension of mysql-connector-python bundles an OpenSSL
newer than Debian's and only loads into a process that has not loaded OpenSSL yet (`ssl`,
`hashlib`), so its steps run in a fresh interpreter that imports it first (CEXT_BOOT).

mysql-connector-python's pure-Python binary-protocol decoder has bugs of its own, seen
directly against MariaDB: a YEAR column followed by other columns shifts the row
(`Unread result found`), a row over 16 MiB comes back truncated, BIGINT UNSIGNED max reads
as -1 (also the C extension). The steps avoid exactly those, for that driver only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

Conn = Any  # a DB-API connection of whichever driver
Observation = Any  # plain, comparable data (tuples, lists, ints, str, bytes)


class Endpoint(NamedTuple):
    host: str
    port: int


@dataclass(frozen=True)
class Driver:
    name: str
    open: Callable[[Endpoint, str], Conn]
    has_server_prepared: bool = False
    has_change_user: bool = False
    has_reset_connection: bool = False
    binary_row_bugs: bool = False  # see the module doc


def _open_pymysql(ep: Endpoint, schema: str) -> Conn:
    import pymysql
    from pymysql.constants import CLIENT

    return pymysql.connect(
        host=ep.host,
        port=ep.port,
        user="root",
        password="",
        database=schema,
        autocommit=True,
        charset="utf8mb4",
        client_flag=CLIENT.MULTI_STATEMENTS,
        local_infile=True,
        max_allowed_packet=64 << 20,
        connect_timeout=10,
        read_timeout=60,
    )


def _open_mysqlclient(ep: Endpoint, schema: str) -> Conn:
    import MySQLdb
    from MySQLdb.constants import CLIENT

    return MySQLdb.connect(
        host=ep.host,
        port=ep.port,
        user="root",
        password="",
        database=schema,
        autocommit=True,
        charset="utf8mb4",
        client_flag=CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS,
        local_infile=1,
        connect_timeout=10,
        read_timeout=60,
    )


def _open_connector(use_pure: bool) -> Callable[[Endpoint, str], Conn]:
    def open_(ep: Endpoint, schema: str) -> Conn:
        import mysql.connector

        conn = mysql.connector.connect(
            host=ep.host,
            port=ep.port,
            user="root",
            password="",
            database=schema,
            autocommit=True,
            charset="utf8mb4",
            use_pure=use_pure,
            allow_local_infile=True,
            allow_local_infile_in_path=tempfile.gettempdir(),
            ssl_disabled=True,
            connection_timeout=10,
        )
        assert (type(conn).__name__ == "CMySQLConnection") != use_pure, type(conn)
        return conn

    return open_


DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        Driver("pymysql", _open_pymysql),
        Driver("mysqlclient", _open_mysqlclient, has_change_user=True),
        Driver(
            "connector-pure",
            _open_connector(use_pure=True),
            has_server_prepared=True,
            has_change_user=True,
            has_reset_connection=True,
            binary_row_bugs=True,
        ),
        Driver(
            "connector-c",
            _open_connector(use_pure=False),
            has_server_prepared=True,
            has_change_user=True,
            has_reset_connection=True,
        ),
    )
}


def error_code(exc: BaseException) -> int:
    code = getattr(exc, "errno", None)
    return int(code if code is not None else exc.args[0])


def error_message(exc: BaseException) -> str:
    return str(getattr(exc, "msg", None) or exc.args[-1])


def set_autocommit(conn: Conn, on: bool) -> None:
    if callable(conn.autocommit):  # PyMySQL, mysqlclient
        conn.autocommit(on)
    else:  # mysql-connector-python: a property
        conn.autocommit = on


def _plain(value: Any) -> Any:
    # Same value to an application, whatever the container: connector returns bytearray
    # for binary columns and a set for SET columns (whose order repr does not fix).
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, set):
        return ",".join(sorted(value))
    return value


def _rows(cur: Any) -> list[tuple[Any, ...]]:
    return [tuple(_plain(v) for v in row) for row in cur]


def _result_sets(cur: Any) -> list[Observation]:
    """Every result of a multi-result command: rows with column names, or affected rows."""
    sets: list[Observation] = []
    while True:
        if cur.description:
            sets.append(([d[0] for d in cur.description], _rows(cur.fetchall())))
        else:
            sets.append(("affected", cur.rowcount))
        if not cur.nextset():
            return sets


# ---------------------------------------------------------------- the steps

TYPE_COLUMNS = {
    "id": "INT PRIMARY KEY", "ti": "TINYINT", "su": "SMALLINT UNSIGNED", "mi": "MEDIUMINT",
    "bi": "BIGINT", "ubi": "BIGINT UNSIGNED", "de": "DECIMAL(20,6)", "fl": "FLOAT",
    "dbl": "DOUBLE", "bt": "BIT(12)", "ch": "CHAR(4)", "vc": "VARCHAR(100)", "tx": "TEXT",
    "bn": "BINARY(4)", "vb": "VARBINARY(50)", "bl": "BLOB", "da": "DATE",
    "dtm": "DATETIME(6)", "ts": "TIMESTAMP(3) NULL", "tm": "TIME(3)", "yr": "YEAR",
    "en": "ENUM('a','b','c')", "st": "SET('x','y','z')", "js": "JSON",
}  # fmt: skip
TYPES_DDL = (
    "CREATE OR REPLACE TABLE types_t ("
    + ", ".join(f"{name} {sql_type}" for name, sql_type in TYPE_COLUMNS.items())
    + ") ENGINE=InnoDB"
)
TYPES_ROW = (
    1, -128, 65535, -8388608, -(2**63), 2**64 - 1, Decimal("12345678901234.123456"), 1.5,
    2.25e300, 0xABC, "ab", "héllo ✓ 😀 \\ ' \" end", "x" * 5000, b"\x00\x01\x02\x03",
    b"\xff\x00'\\\"", bytes(range(256)) * 4, dt.date(2024, 2, 29),
    dt.datetime(2024, 2, 29, 23, 59, 58, 123456), dt.datetime(2024, 1, 1, 0, 0, 0, 500000),
    dt.timedelta(hours=25, minutes=3, seconds=4, milliseconds=5), 2024, "b", "x,z",
    '{"k": [1, 2, "é"]}',
)  # fmt: skip
# Columns whose Python value every driver returns the same way (the others differ by driver).
PORTABLE_COLUMNS = (0, 1, 2, 3, 4, 5, 6, 11, 12, 16, 17)


def step_types(conn: Conn, driver: Driver) -> Observation:
    """DDL, an insert with every common type, and a text-protocol select of them."""
    with conn.cursor() as cur:
        cur.execute(TYPES_DDL)
        marks = ", ".join(["%s"] * len(TYPES_ROW))
        cur.execute(f"INSERT INTO types_t VALUES ({marks})", TYPES_ROW)
        cur.execute("INSERT INTO types_t (id) VALUES (2)")
        cur.execute("SELECT * FROM types_t ORDER BY id")
        meta = [tuple(d[:2]) for d in cur.description]
        rows = _rows(cur.fetchall())
    assert [rows[0][i] for i in PORTABLE_COLUMNS] == [TYPES_ROW[i] for i in PORTABLE_COLUMNS]
    assert bytes(rows[0][15]) == TYPES_ROW[15]
    assert rows[1] == (2, *[None] * (len(TYPES_ROW) - 1))
    return meta, rows


def step_types_prepared(conn: Conn, driver: Driver) -> Observation:
    """The same types through a server-side prepared statement (binary protocol)."""
    step_types(conn, driver)
    columns = ", ".join(c for c in TYPE_COLUMNS if not (driver.binary_row_bugs and c == "yr"))
    query = f"SELECT {columns} FROM types_t WHERE id >= ? ORDER BY id"
    with conn.cursor(prepared=True) as cur:
        cur.execute(query, (1,))
        meta = [tuple(d[:2]) for d in cur.description]
        rows = _rows(cur.fetchall())
        # Re-execute the same statement handle with another parameter.
        cur.execute(query, (2,))
        again = _rows(cur.fetchall())
    portable = [i for i in PORTABLE_COLUMNS if i != 5]  # BIGINT UNSIGNED max: see module doc
    assert [rows[0][i] for i in portable] == [TYPES_ROW[i] for i in portable]
    assert again == rows[1:]
    return meta, rows


def step_transactions(conn: Conn, driver: Driver) -> Observation:
    seen = []
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE trx_t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        set_autocommit(conn, False)
        cur.execute("INSERT INTO trx_t VALUES (1, 10)")
        cur.execute("SELECT @@in_transaction, @@autocommit")
        seen.append(_rows(cur.fetchall()))
        conn.rollback()
        cur.execute("SELECT COUNT(*) FROM trx_t")
        seen.append(_rows(cur.fetchall()))
        cur.execute("INSERT INTO trx_t VALUES (2, 20)")
        conn.commit()
        cur.execute("START TRANSACTION")
        cur.execute("UPDATE trx_t SET v = v + 1")
        cur.execute("COMMIT")
        cur.execute("SELECT * FROM trx_t")
        seen.append(_rows(cur.fetchall()))
        conn.rollback()
    assert seen == [[(1, 0)], [(0,)], [(2, 21)]], seen
    return seen


MULTI = (
    "CREATE OR REPLACE TABLE multi_t (id INT PRIMARY KEY);"
    "SELECT 1 AS a; SELECT 'x' AS b, 2 AS c UNION ALL SELECT 'y', 3;"
    "INSERT INTO multi_t VALUES (1), (2), (3); SELECT COUNT(*) AS n FROM multi_t"
)


def step_multi_statements(conn: Conn, driver: Driver) -> Observation:
    with conn.cursor() as cur:
        cur.execute(MULTI)
        sets = _result_sets(cur)
        cur.execute("SELECT 'after'")
        after = _rows(cur.fetchall())
    assert sets[1:] == [
        (["a"], [(1,)]),
        (["b", "c"], [("x", 2), ("y", 3)]),
        ("affected", 3),
        (["n"], [(3,)]),
    ], sets
    assert after == [("after",)]
    return sets


PROC = """
CREATE OR REPLACE PROCEDURE two_sets(IN n INT)
BEGIN
  SELECT n AS first;
  SELECT n + 1 AS second, 'two' AS label;
END
"""


def step_stored_procedure(conn: Conn, driver: Driver) -> Observation:
    with conn.cursor() as cur:
        cur.execute(PROC)
        cur.execute("CALL two_sets(41)")
        sets = _result_sets(cur)
        cur.execute("SELECT 'after'")
        after = _rows(cur.fetchall())
    assert sets[:2] == [(["first"], [(41,)]), (["second", "label"], [(42, "two")])], sets
    assert after == [("after",)]
    return sets


def step_errors(conn: Conn, driver: Driver) -> Observation:
    codes = []
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE err_t (id INT PRIMARY KEY, u INT UNIQUE)")
        cur.execute("INSERT INTO err_t VALUES (1, 1)")
        for bad in (
            "INSERT INTO err_t VALUES (1, 2)",
            "INSERT INTO err_t VALUES (2, 1)",
            "SELEC 1",
            "SELECT * FROM no_such_table",
        ):
            try:
                cur.execute(bad)
            except Exception as exc:  # each driver has its own exception classes
                codes.append((error_code(exc), error_message(exc)))
            else:
                raise AssertionError(f"{bad!r} did not fail")
        cur.execute("SELECT COUNT(*) FROM err_t")
        assert _rows(cur.fetchall()) == [(1,)]
    assert [c for c, _ in codes] == [1062, 1062, 1064, 1146], codes
    assert "Duplicate entry '1' for key 'PRIMARY'" in codes[0][1], codes[0]
    return codes


def step_load_data_local(conn: Conn, driver: Driver) -> Observation:
    lines = [f"{i},name {i} é\n" for i in range(1, 1001)]
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8") as f:
        f.writelines(lines)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE OR REPLACE TABLE load_t (id INT PRIMARY KEY, name VARCHAR(50))")
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{f.name}' INTO TABLE load_t CHARACTER SET utf8mb4"
                " FIELDS TERMINATED BY ','"
            )
            cur.execute("SELECT COUNT(*), MAX(id), MAX(name) FROM load_t")
            got = _rows(cur.fetchall())
    finally:
        os.unlink(f.name)
    assert got == [(1000, 1000, "name 999 é")], got
    return got


def _session_state(conn: Conn) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        cur.execute("SELECT @v, DATABASE(), CURRENT_USER()")
        return _rows(cur.fetchall())[0]


def step_session_commands(conn: Conn, driver: Driver) -> Observation:
    """COM_PING, COM_INIT_DB and, where the driver exposes them, COM_STATISTICS,
    COM_CHANGE_USER and COM_RESET_CONNECTION: each leaves the session as the server says."""
    seen: list[Any] = []
    is_connector = driver.name.startswith("connector")
    schema = _session_state(conn)[1]
    conn.ping()
    stats: list[str] = []
    if is_connector:
        stats = sorted(conn.cmd_statistics())  # the counters' names; their values move
        conn.cmd_init_db("mysql")
    else:
        conn.select_db("mysql")
    with conn.cursor() as cur:
        cur.execute("SET @v = 7")
    seen.append(_session_state(conn))
    if driver.has_change_user:
        if is_connector:
            conn.cmd_change_user(username="root", password="", database=schema)
        else:
            conn.change_user("root", "", schema)
        seen.append(_session_state(conn))
    if driver.has_reset_connection:
        with conn.cursor() as cur:
            cur.execute("SET @v = 8")
        conn.cmd_reset_connection()
        seen.append(_session_state(conn))
    assert "Uptime" in stats or not is_connector, stats
    assert seen[0] == (7, "mysql", "root@127.0.0.1"), seen
    assert all(s == (None, schema, "root@127.0.0.1") for s in seen[1:]), seen
    return stats, seen


def _blob(size: int) -> bytes:
    # Every byte value, including those the text protocol must escape, in a size that is
    # not a multiple of the 16 MiB packet limit.
    pattern = bytes(range(256)) + b"'\\\"\x00\x1a"
    return (pattern * (size // len(pattern) + 1))[:size]


def step_big_text_packet(conn: Conn, driver: Driver) -> Observation:
    """A statement larger than one 16 MiB protocol packet, and a row back just as large."""
    blob = _blob(17 * 1024 * 1024 + 123)
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE big_t (id INT PRIMARY KEY, b LONGBLOB)")
        cur.execute("INSERT INTO big_t VALUES (1, %s)", (blob,))
        cur.execute("SELECT LENGTH(b), SHA2(b, 256), b FROM big_t WHERE id = 1")
        length, digest, back = cur.fetchone()
    assert length == len(blob)
    assert digest == hashlib.sha256(blob).hexdigest()
    assert bytes(back) == blob
    return length, digest


def step_big_prepared_blob(conn: Conn, driver: Driver) -> Observation:
    """A 20 MiB parameter of a server-side prepared statement, and the same bytes back."""
    blob = _blob(20 * 1024 * 1024)
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE big_t (id INT PRIMARY KEY, b LONGBLOB)")
    with conn.cursor(prepared=True) as cur:
        cur.execute("INSERT INTO big_t VALUES (?, ?)", (1, blob))
        cur.execute("SELECT LENGTH(b), SHA2(b, 256) FROM big_t WHERE id = ?", (1,))
        length, digest = cur.fetchone()
    with conn.cursor(prepared=not driver.binary_row_bugs) as cur:
        cur.execute("SELECT b FROM big_t WHERE id = 1")
        (back,) = cur.fetchone()
    assert length == len(blob)
    assert digest == hashlib.sha256(blob).hexdigest()
    assert bytes(back) == blob
    return length, digest


STEPS: dict[str, Callable[[Conn, Driver], Observation]] = {
    "types": step_types,
    "types_prepared": step_types_prepared,
    "transactions": step_transactions,
    "multi_statements": step_multi_statements,
    "stored_procedure": step_stored_procedure,
    "errors": step_errors,
    "load_data_local": step_load_data_local,
    "session_commands": step_session_commands,
    "big_text_packet": step_big_text_packet,
    "big_prepared_blob": step_big_prepared_blob,
}
NEEDS_SERVER_PREPARED = {"types_prepared", "big_prepared_blob"}


def applies(driver: Driver, step: str) -> bool:
    return driver.has_server_prepared or step not in NEEDS_SERVER_PREPARED


def run_step(driver_name: str, ep: Endpoint, schema: str, step: str) -> Observation:
    driver = DRIVERS[driver_name]
    conn = driver.open(ep, schema)
    try:
        return STEPS[step](conn, driver)
    finally:
        conn.close()


if __name__ == "__main__":
    # Exit status and the traceback on stderr are the result; see the module doc.
    name, host, port, schema_name, step_name = sys.argv[1:]
    print(repr(run_step(name, Endpoint(host, int(port)), schema_name, step_name)))
