"""Our 3-node cluster with appliers applying SQL (A) vs binlog row events (B), taking turns.

    PYTHONPATH=. .venv/bin/python bench/binlog_cluster_ab.py [--pairs 2] [--time 60]

B runs the same tree with `bench/binlog_overlay` on the node processes' PYTHONPATH (its
`sitecustomize` swaps the applier's SQL for BINLOG statements on sysbench's tables; see
docs/design/capture.md, "Row events below SQL: measured"). Each run: `wsrepctl cluster up`
with the sysbench tables, `oltp_write_only` with --threads clients on each node, then the
CPU the cluster's processes used per committed transaction, split into mariadbd and the
node processes (Python), and `Com_binlog` per node (0 for A, the applied write sets for B).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pymysql

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cluster_bench import Address, ours_cluster, run_cell
from proxy.managed_mariadb import free_port_run

OVERLAY = Path(__file__).resolve().parent / "binlog_overlay"


def cpu_by_kind(home: Path) -> dict[str, float]:
    """CPU seconds so far of the processes whose command line names `home`."""
    marker, out = str(home).encode(), {"mariadbd": 0.0, "python": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if marker not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        kind = "mariadbd" if b"mariadbd" in cmdline else "python"
        out[kind] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def com_binlog(nodes: list[Address]) -> list[int]:
    counts = []
    for host, port in nodes:
        conn = pymysql.connect(host=host, port=port, user="root", password="")
        with conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Com_binlog'")
            counts.append(int(cur.fetchone()[1]))
    return counts


def run(label: str, events: bool, seconds: int, threads: int) -> None:
    saved = os.environ.get("PYTHONPATH")
    if events:  # the node processes inherit it (absolute: they may run elsewhere)
        paths = [os.path.abspath(p) for p in (saved or "").split(os.pathsep) if p]
        os.environ["PYTHONPATH"] = os.pathsep.join([str(OVERLAY), *paths])
    try:
        with tempfile.TemporaryDirectory(prefix="binlog-ab-") as tmp:
            home = Path(tmp) / "ours"
            with ours_cluster(home, 3, free_port_run(3)) as nodes:
                time.sleep(3)
                before = cpu_by_kind(home)
                cell = run_cell("ours", "oltp_write_only", nodes, threads, seconds, home)
                after = cpu_by_kind(home)
                applied = com_binlog(nodes)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    committed = max(sum(r.transactions for r in cell.runs), 1)
    per = {k: 1000 * (after[k] - before[k]) / committed for k in after}
    total = cell.cpu_ms_per_trx or 0.0
    print(
        f"{label:7} {cell.tps:7.1f} tps  cpu {total:.2f} ms/trx  mariadbd {per['mariadbd']:.2f}"
        f"  python {per['python']:.2f}  1213s {cell.errors}  Com_binlog {applied}"
        f"  load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--time", type=int, default=60, help="seconds per sysbench run")
    parser.add_argument("--threads", type=int, default=8, help="clients per node")
    args = parser.parse_args()
    for _ in range(args.pairs):
        run("sql", False, args.time, args.threads)
        run("binlog", True, args.time, args.threads)


if __name__ == "__main__":
    main()
