"""Accounts with passwords through the proxy: the backend authenticates the client itself
(mysql_native_password's scramble, ed25519), and a wrong password gets MariaDB's own 1045."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import MySQLdb
import pymysql
import pytest
from client_workload import Endpoint, error_code, error_message

from proxy.managed_mariadb import MariaDBServer

pytestmark = pytest.mark.mariadb

NATIVE = ("app_native", "s3cret-native")
ED25519 = ("app_ed25519", "s3cret-ed")


@pytest.fixture(scope="module")
def accounts(mariadb: MariaDBServer) -> Iterator[None]:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.plugins WHERE plugin_name='ed25519'")
        if cur.fetchone() == (0,):
            cur.execute("INSTALL SONAME 'auth_ed25519'")
        cur.execute(f"CREATE OR REPLACE USER '{NATIVE[0]}'@'127.0.0.1' IDENTIFIED BY '{NATIVE[1]}'")
        cur.execute(
            f"CREATE OR REPLACE USER '{ED25519[0]}'@'127.0.0.1'"
            f" IDENTIFIED VIA ed25519 USING PASSWORD('{ED25519[1]}')"
        )
    yield
    with mariadb.connect() as conn, conn.cursor() as cur:
        for user, _ in (NATIVE, ED25519):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def _cli(ep: Endpoint, user: str, password: str) -> tuple[int, str]:
    """(exit code, CURRENT_USER() or the error line) from the mariadb client."""
    res = subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=TCP", f"-h{ep.host}", f"-P{ep.port}",
         f"-u{user}", f"-p{password}", "-BN", "-e", "SELECT CURRENT_USER()"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return res.returncode, (res.stdout or res.stderr).strip()


def _mysqlclient(ep: Endpoint, user: str, password: str) -> tuple[int, str]:
    try:
        conn = MySQLdb.connect(host=ep.host, port=ep.port, user=user, password=password)
    except MySQLdb.OperationalError as exc:
        return error_code(exc), error_message(exc)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        return 0, cur.fetchone()[0]


def _pymysql(ep: Endpoint, user: str, password: str) -> tuple[int, str]:
    try:
        conn = pymysql.connect(host=ep.host, port=ep.port, user=user, password=password)
    except pymysql.err.OperationalError as exc:
        return error_code(exc), error_message(exc)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        return 0, cur.fetchone()[0]


# PyMySQL speaks ed25519 only with PyNaCl installed, which the project does not need.
CLIENTS = {"mariadb-cli": _cli, "mysqlclient": _mysqlclient, "pymysql": _pymysql}
CASES = [
    pytest.param(client, account, id=f"{client}-{account[0]}")
    for client in CLIENTS
    for account in (NATIVE, ED25519)
    if not (client == "pymysql" and account is ED25519)
]


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize(("client", "account"), CASES)
def test_password_accounts(client: str, account: tuple[str, str], target: Endpoint) -> None:
    user, password = account
    assert CLIENTS[client](target, user, password) == (0, f"{user}@127.0.0.1")


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize(("client", "account"), CASES)
def test_wrong_password_is_the_backends_1045(
    client: str, account: tuple[str, str], target: Endpoint, direct: Endpoint
) -> None:
    user, _ = account
    through_proxy = CLIENTS[client](target, user, "wrong")
    assert through_proxy == CLIENTS[client](direct, user, "wrong")
    code, message = through_proxy
    assert f"Access denied for user '{user}'@'127.0.0.1' (using password: YES)" in message
    if client == "mariadb-cli":
        assert (code, message[:24]) == (1, "ERROR 1045 (28000): Acce")
    else:
        assert code == 1045
