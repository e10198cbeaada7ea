"""Big write sets on a real 3-node cluster: tens of MiB replicate; one over the group's
`max_payload` (64 MiB, Galera's repl.max_ws_size) gets MariaDB Galera's clear error,
is rolled back at its origin, and the node goes on serving."""

from __future__ import annotations

import os

import pymysql
import pytest

from tests.cluster.conftest import NODES, Cluster

MIB = 1 << 20
ROWS = 33  # of 1 MiB: one write set of 33 MiB replicates


def _count(cluster: Cluster, i: int) -> int:
    with cluster.backend(i) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM app.big")
        return int(cur.fetchone()[0])


def test_a_write_set_over_the_limit_is_refused_clearly(cluster: Cluster) -> None:
    with cluster.proxy(0, read_timeout=300) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.big (id INT PRIMARY KEY, b LONGBLOB NOT NULL)")
        conn.begin()
        for row in range(ROWS):
            cur.execute("INSERT INTO app.big VALUES (%s, %s)", (row, os.urandom(MIB)))
        conn.commit()
        seqno = cluster.wait_same_position(timeout=120)
        assert [_count(cluster, i) for i in range(NODES)] == [ROWS] * NODES

        # Two copies of every row in one autocommit statement: 66 MiB.
        with pytest.raises(pymysql.err.MySQLError) as refused:
            cur.execute(
                "INSERT INTO app.big SELECT id + 1000, b FROM app.big "
                "UNION ALL SELECT id + 2000, b FROM app.big"
            )
        assert refused.value.args[0] == 1105
        assert "Maximum writeset size exceeded" in refused.value.args[1]
        cur.execute("SELECT @@in_transaction, COUNT(*) FROM app.big")
        assert cur.fetchone() == (0, ROWS)  # rolled back at the origin

        cur.execute("DELETE FROM app.big WHERE id = 0")  # the session and node go on
    assert cluster.wait_same_position(timeout=120) > seqno
    assert [_count(cluster, i) for i in range(NODES)] == [ROWS - 1] * NODES
    assert cluster.fresh_status(0)["state"] == "SYNCED"
    assert len(set(cluster.checksums("app.big"))) == 1
