"""The name rules the keys assume, checked against a real MariaDB (lower_case_table_names=0).

If the backend ever compares names differently, keys that should collide would not (lost
conflicts) or keys that should not would (needless aborts): these tests say so first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from certification import row_key, table_key
from proxy.managed_mariadb import MariaDBServer

pytestmark = pytest.mark.mariadb


@pytest.fixture
def cursor(mariadb: MariaDBServer) -> Iterator[pymysql.cursors.Cursor]:
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS cert_rules")
        cur.execute("CREATE DATABASE cert_rules")
        cur.execute("USE cert_rules")
        try:
            yield cur
        finally:
            cur.execute("DROP DATABASE cert_rules")


def test_table_names_are_case_sensitive(cursor: pymysql.cursors.Cursor) -> None:
    cursor.execute("SELECT @@lower_case_table_names")
    assert cursor.fetchone() == (0,)
    cursor.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    cursor.execute("CREATE TABLE T (id INT PRIMARY KEY)")  # another table, so another key
    cursor.execute("INSERT INTO t VALUES (1)")
    cursor.execute("INSERT INTO T VALUES (1)")  # no clash: the rows are independent
    assert table_key("cert_rules", "t") != table_key("cert_rules", "T")
    assert not row_key("cert_rules", "t", "PRIMARY", [b"1"]).conflicts_with(
        row_key("cert_rules", "T", "PRIMARY", [b"1"])
    )


def test_schema_names_are_case_sensitive(cursor: pymysql.cursors.Cursor) -> None:
    cursor.execute("DROP DATABASE IF EXISTS CERT_RULES")
    cursor.execute("CREATE DATABASE CERT_RULES")  # coexists with cert_rules
    cursor.execute("DROP DATABASE CERT_RULES")
    assert table_key("cert_rules", "t") != table_key("CERT_RULES", "t")


def test_index_names_are_case_insensitive(cursor: pymysql.cursors.Cursor) -> None:
    cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, UNIQUE KEY Uk_A (a))")
    with pytest.raises(pymysql.err.OperationalError, match="Duplicate key name"):
        cursor.execute("ALTER TABLE t ADD UNIQUE KEY uk_a (a)")
    cursor.execute("ALTER TABLE t DROP INDEX UK_A")  # the same index under any case
    assert row_key("cert_rules", "t", "Uk_A", [b"1"]) == row_key("cert_rules", "t", "uk_a", [b"1"])
