"""Total order isolation on a real 3-node cluster: DDL and account statements sent to any
node run on every node at their seqno; tables, users and capture follow."""

from __future__ import annotations

from tests.cluster.conftest import NODES, Cluster


def _on_all(cluster: Cluster, sql: str) -> list[tuple[tuple[object, ...], ...]]:
    cluster.wait_same_position()
    result = []
    for i in range(NODES):
        with cluster.backend(i) as conn, conn.cursor() as cur:
            cur.execute(sql)
            result.append(tuple(cur.fetchall()))
    return result


def _same_everywhere(cluster: Cluster, *tables: str) -> None:
    """CHECKSUM TABLE and SHOW CREATE TABLE identical on all backends."""
    assert len(set(cluster.checksums(*tables))) == 1
    for table in tables:
        shown = _on_all(cluster, f"SHOW CREATE TABLE {table}")
        assert len(set(shown)) == 1, shown


def _write_on_each_node(cluster: Cluster, sql: str, rows: list[tuple[object, ...]]) -> None:
    for i, row in enumerate(rows):
        with cluster.proxy(i % NODES) as conn, conn.cursor() as cur:
            cur.execute(sql, row)


def test_create_table_on_one_node_then_writes_everywhere(cluster: Cluster) -> None:
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.made (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
    _write_on_each_node(
        cluster, "INSERT INTO app.made VALUES (%s, %s)", [(i, f"n{i}") for i in range(6)]
    )
    assert _on_all(cluster, "SELECT COUNT(*) FROM app.made") == [((6,),)] * NODES
    _same_everywhere(cluster, "app.made")
