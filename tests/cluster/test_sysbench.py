"""sysbench oltp_read_write with clients on all three nodes at once for 60 s (Debian's
sysbench, server-side prepared statements), on tables sysbench made through the cluster:
no error other than 1213 (any other ends a sysbench run with FATAL, which fails the
test); every node's tables identical after."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from bench.cluster_bench import prepare_tables, run_on_nodes
from bench.proxy_bench import SB_TABLES
from tests.cluster.conftest import NODES, Cluster, running_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sysbench") is None, reason="needs Debian's sysbench"),
]

SECONDS = int(os.environ.get("WSREP_SYSBENCH_SECONDS", "60"))
THREADS = 4  # per node: 12 clients; the 6 processes of the cluster and sysbench share 2 cores
TABLES = [f"sbtest.sbtest{n}" for n in range(1, SB_TABLES + 1)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """sysbench's tables made by `sysbench prepare` through node 1 (DDL under total order
    isolation, rows as write sets), present on every node before the run."""
    with running_cluster(tmp_path_factory.mktemp("sysbench")) as running:
        prepare_tables([("127.0.0.1", running.base_port + i) for i in range(NODES)])
        yield running


def test_oltp_read_write_on_every_node_sees_only_conflicts(cluster: Cluster) -> None:
    nodes = [("127.0.0.1", cluster.base_port + i) for i in range(NODES)]
    runs = run_on_nodes("oltp_read_write", nodes, THREADS, SECONDS, ignored="1213")
    print(  # shown when the test fails
        "per node: " + ", ".join(f"{r.transactions} trx {r.ignored_errors} x 1213" for r in runs)
    )
    assert all(r.transactions > 0 for r in runs)
    assert all(r.reconnects == 0 for r in runs)
    assert len(set(cluster.checksums(*TABLES))) == 1
    for i in range(NODES):
        status = cluster.fresh_status(i)
        assert status["state"] == "SYNCED" and status["cluster_size"] == NODES, status
