"""Multi-master write throughput: our 3-node cluster vs MariaDB Galera vs one direct MariaDB.

Targets, all on this machine and on loopback:
  ours    `wsrepctl cluster up --nodes N --dir D --base-port P --detach` (node i's proxy on
          P+i-1, root with an empty password), `wsrepctl cluster down --dir D` afterwards;
          skipped with a message while `wsrepctl cluster` does not exist;
  galera  a real N-node MariaDB Galera cluster from Debian's galera-4 (bench/galera_cluster.py);
  direct  one managed MariaDB.

Each target gets the sysbench tables prepared through its first node (and waits until every
node has them), then every workload runs for `--time` seconds with `--threads` clients on
EACH node at once (one sysbench process per node, in parallel) and with `--direct-threads`
clients (default: threads x nodes, the same client count) on the direct server. Deadlocks
and lock-wait timeouts (1213, 1020, 1205: certification failures and BF aborts) are ignored
and counted, not fatal. The targets take turns workload by workload, so a noisy spell on a
shared machine hits them alike.

    .venv/bin/python bench/cluster_bench.py [--time 60] [--threads 8] [--nodes 3]
        [--workloads oltp_write_only,oltp_read_write] [--targets ours,galera,direct]
        [--direct-threads 24] [--base-port P]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pymysql

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.galera_cluster import GaleraCluster, missing_prerequisites
from bench.proxy_bench import SB_TABLE_SIZE, SB_TABLES, SysbenchError, sysbench_argv
from proxy.managed_mariadb import MariaDBServer, die_with_parent, free_port_run

WORKLOADS = ("oltp_write_only", "oltp_read_write")
TARGETS = ("ours", "galera", "direct")
IGNORED_ERRORS = "1213,1020,1205"
# Appliers per node, both clusters: ours are connections waiting on round trips, so more
# of them overlap more (4 -> 8 gave ~+30% on oltp_write_only here); Galera gets the same.
APPLIERS = 8
Address = tuple[str, int]


class TargetUnavailable(RuntimeError):
    """A target that cannot run on this checkout or machine; the bench goes on without it."""


# ---- sysbench output ------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRun:
    """One sysbench process's report."""

    transactions: int
    tps: float
    ignored_errors: int
    reconnects: int
    histogram: dict[float, int]  # latency ms -> count


_TRANSACTIONS = re.compile(r"^\s*transactions:\s+(\d+)\s+\(([\d.]+) per sec\.\)", re.M)
_IGNORED = re.compile(r"^\s*ignored errors:\s+(\d+)", re.M)
_RECONNECTS = re.compile(r"^\s*reconnects:\s+(\d+)", re.M)
_HISTOGRAM_ROW = re.compile(r"^\s*([\d.]+)\s+\|\**\s+(\d+)\s*$", re.M)


def parse_run(output: str) -> NodeRun:
    found = [rx.search(output) for rx in (_TRANSACTIONS, _IGNORED, _RECONNECTS)]
    trx, ignored, reconnects = found
    if not (trx and ignored and reconnects):
        raise SysbenchError(f"unexpected sysbench output:\n{output[-3000:]}")
    histogram = Counter[float]()
    for value, count in _HISTOGRAM_ROW.findall(output):
        histogram[float(value)] += int(count)
    return NodeRun(
        transactions=int(trx.group(1)),
        tps=float(trx.group(2)),
        ignored_errors=int(ignored.group(1)),
        reconnects=int(reconnects.group(1)),
        histogram=dict(histogram),
    )


def percentile(histograms: Sequence[dict[float, int]], pct: float) -> float:
    """The `pct` percentile of all events of several sysbench latency histograms together
    (sysbench's own rule: the smallest bucket value with pct% of the events at or below)."""
    merged = Counter[float]()
    for hist in histograms:
        merged.update(hist)
    values = sorted(merged)
    if not values:
        return 0.0
    cumulative = []
    total = 0
    for value in values:
        total += merged[value]
        cumulative.append(total)
    return values[bisect.bisect_left(cumulative, total * pct / 100)]


# ---- one cell: a workload on a target -------------------------------------------------


@dataclass(frozen=True)
class WsrepCounters:
    """Galera's conflict counters summed over a cluster's nodes."""

    cert_failures: int  # wsrep_local_cert_failures: local write sets that failed certification
    bf_aborts: int  # wsrep_local_bf_aborts: local transactions aborted by replicated ones

    def __sub__(self, other: WsrepCounters) -> WsrepCounters:
        return WsrepCounters(
            self.cert_failures - other.cert_failures, self.bf_aborts - other.bf_aborts
        )


@dataclass(frozen=True)
class ServerCpu:
    """CPU time (user + system) of a target's processes."""

    seconds: float
    processes: int

    def __sub__(self, earlier: ServerCpu) -> ServerCpu:
        return ServerCpu(self.seconds - earlier.seconds, self.processes)


@dataclass(frozen=True)
class Cell:
    target: str
    workload: str
    threads: int  # per node
    seconds: int
    runs: list[NodeRun]
    conflicts: WsrepCounters | None  # None: not a cluster, or it does not count them
    cpu: ServerCpu | None = None  # the target's processes during the run

    @property
    def cpu_ms_per_trx(self) -> float | None:
        committed = sum(r.transactions for r in self.runs)
        if self.cpu is None or not committed:
            return None
        return 1000 * self.cpu.seconds / committed

    @property
    def tps(self) -> float:
        return sum(r.tps for r in self.runs)

    @property
    def p95_ms(self) -> float:
        return percentile([r.histogram for r in self.runs], 95)

    @property
    def errors(self) -> int:
        return sum(r.ignored_errors for r in self.runs)

    @property
    def attempts(self) -> int:
        """Transactions tried: committed ones plus those a (retried) error ended."""
        return sum(r.transactions for r in self.runs) + self.errors

    @property
    def cert_failure_pct(self) -> float | None:
        if self.conflicts is None:
            return None
        return 100 * self.conflicts.cert_failures / max(self.attempts, 1)


def run_argv(
    workload: str, address: Address, threads: int, seconds: int, ignored: str = IGNORED_ERRORS
) -> list[str]:
    argv = sysbench_argv(workload, "run", *address, threads=threads, seconds=seconds)
    extra = ["--histogram=on", f"--mysql-ignore-errors={ignored}"]
    return [*argv[:-1], *extra, argv[-1]]


def run_on_nodes(
    workload: str,
    nodes: Sequence[Address],
    threads: int,
    seconds: int,
    ignored: str = IGNORED_ERRORS,
) -> list[NodeRun]:
    """One sysbench process per node, all at once; raises if any of them fails (an
    error not in `ignored` fails a sysbench run)."""
    procs = [
        subprocess.Popen(
            run_argv(workload, node, threads, seconds, ignored),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent,  # an interrupted bench leaves no load running
        )
        for node in nodes
    ]
    outputs = []
    try:
        for proc in procs:
            try:
                out, _ = proc.communicate(timeout=seconds + 120)
            except subprocess.TimeoutExpired:
                raise SysbenchError(
                    f"FATAL: sysbench {workload} still running {seconds + 120}s after its "
                    f"{seconds}s (a connection that never answered?)"
                ) from None
            if proc.returncode != 0:
                raise SysbenchError(f"sysbench {workload} exited {proc.returncode}:\n{out[-3000:]}")
            outputs.append(out)
    finally:
        for proc in procs:  # only if something above failed: they are ours, stop them
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [parse_run(out) for out in outputs]


def wsrep_counters(nodes: Sequence[Address]) -> WsrepCounters | None:
    """Summed over `nodes`; None if a node does not report both counters."""
    names = ("wsrep_local_cert_failures", "wsrep_local_bf_aborts")
    total = Counter[str]()
    for host, port in nodes:
        conn = pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=5)
        with conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_local_%'")
            status = {str(k): str(v) for k, v in cur.fetchall()}
        if not all(status.get(name, "").isdigit() for name in names):
            return None
        total.update({name: int(status[name]) for name in names})
    return WsrepCounters(*(total[name] for name in names))


def server_cpu(home: Path) -> ServerCpu:
    """CPU used so far by the processes whose command line names `home`, a target's own
    dir: its servers and node processes, not the sysbench clients."""
    marker = str(home).encode()
    ticks = procs = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: stat fields 14 and 15
        procs += 1
    return ServerCpu(ticks / os.sysconf("SC_CLK_TCK"), procs)


def run_cell(
    target: str,
    workload: str,
    nodes: Sequence[Address],
    threads: int,
    seconds: int,
    home: Path | None = None,
) -> Cell:
    """One workload on one target; with `home`, also the CPU its processes used."""
    before = None if target == "direct" else wsrep_counters(nodes)
    cpu_before = None if home is None else server_cpu(home)
    runs = run_on_nodes(workload, nodes, threads, seconds)
    cpu = None if home is None or cpu_before is None else server_cpu(home) - cpu_before
    after = None if before is None else wsrep_counters(nodes)
    conflicts = None if before is None or after is None else after - before
    return Cell(target, workload, threads, seconds, runs, conflicts, cpu)


# ---- targets --------------------------------------------------------------------------


def prepare_tables(nodes: Sequence[Address], timeout: float = 180.0) -> None:
    """sysbench tables through the first node; returns once every node has all the rows."""
    host, port = nodes[0]
    conn = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True)
    with conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS sbtest")
        cur.execute("CREATE DATABASE sbtest")
    argv = sysbench_argv("oltp_write_only", "prepare", host, port)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise SysbenchError(f"sysbench prepare on {host}:{port} failed:\n{res.stdout[-3000:]}")
    wait_for_tables(nodes, timeout)


def wait_for_tables(nodes: Sequence[Address], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        while _rows(node, f"sbtest.sbtest{SB_TABLES}") != SB_TABLE_SIZE:
            if time.monotonic() > deadline:
                raise SysbenchError(f"sysbench tables did not reach {node} in {timeout}s")
            time.sleep(0.2)


def sysbench_dump(home: Path) -> Path:
    """The sysbench tables as SQL (`home/sbtest.sql`), made on a scratch MariaDB: our
    cluster loads it on every backend at start (`--init-sql`), as it cannot replicate the
    CREATE TABLEs (no total order isolation yet)."""
    dump = home / "sbtest.sql"
    with direct_server(home / "scratch") as (node,):
        prepare_tables([node])
        argv = ["mariadb-dump", "--no-defaults", f"--host={node[0]}", f"--port={node[1]}"]
        argv += ["--user=root", "--skip-comments", "--single-transaction", "--databases"]
        with dump.open("wb") as out:
            subprocess.run([*argv, "sbtest"], stdout=out, check=True, timeout=120)
    return dump


def _rows(node: Address, table: str) -> int | None:
    try:
        conn = pymysql.connect(host=node[0], port=node[1], user="root", password="")
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            return int(cur.fetchone()[0])
    except pymysql.err.MySQLError:  # not there yet
        return None


def ours_available() -> bool:
    return importlib.util.find_spec("wsrepctl.cmd_cluster") is not None


@contextlib.contextmanager
def ours_cluster(
    home: Path,
    nodes: int,
    base_port: int,
    with_tables: bool = True,
    appliers: int = APPLIERS,
) -> Iterator[list[Address]]:
    """`wsrepctl cluster up` in `home`; `with_tables`: every backend starts with the sysbench
    tables, loaded from a dump (`--init-sql`)."""
    if not ours_available():
        raise TargetUnavailable(
            "`wsrepctl cluster` does not exist yet (no wsrepctl/cmd_cluster.py)"
        )
    wsrepctl = [sys.executable, "-m", "wsrepctl", "cluster"]
    up = [*wsrepctl, "up", "--nodes", str(nodes), "--dir", str(home)]
    up += ["--base-port", str(base_port), "--appliers", str(appliers), "--detach"]
    up += ["--owner-pid", str(os.getpid())]  # an interrupted bench leaves no cluster running
    if with_tables:
        up += ["--init-sql", str(sysbench_dump(home.parent / "sysbench-seed"))]
    try:
        res = subprocess.run(up, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise TargetUnavailable(
                f"`{' '.join(up[1:])}` exited {res.returncode}:\n{res.stderr[-3000:]}"
            )
        print(res.stdout.strip(), flush=True)
        yield [("127.0.0.1", base_port + i) for i in range(nodes)]
    finally:
        down = [*wsrepctl, "down", "--dir", str(home)]
        subprocess.run(down, capture_output=True, timeout=120)


@contextlib.contextmanager
def galera_cluster(home: Path, nodes: int, appliers: int = APPLIERS) -> Iterator[list[Address]]:
    missing = missing_prerequisites()
    if missing:
        raise TargetUnavailable("missing " + ", ".join(missing))
    with GaleraCluster(home, size=nodes, appliers=appliers) as cluster:
        yield cluster.addresses()


@contextlib.contextmanager
def direct_server(home: Path) -> Iterator[list[Address]]:
    db = MariaDBServer(home, name="direct")
    try:
        db.start()
        yield [(db.host, db.port)]
    finally:
        db.destroy()


# ---- report ---------------------------------------------------------------------------


def _ratio(cells: dict[tuple[str, str], Cell], workload: str, den: str) -> str:
    ours, other = cells.get(("ours", workload)), cells.get((den, workload))
    if ours is None or other is None or not other.tps:
        return "-"
    return f"{ours.tps / other.tps:.2f}"


def format_table(cells: Sequence[Cell]) -> str:
    head = (
        f"{'target':<7} {'workload':<16} {'clients':>9} {'tps':>8} {'p95 ms':>8} "
        f"{'err/s':>7} {'err %':>6} {'cert fails':>10} {'cert %':>6} {'bf aborts':>9} "
        f"{'cpu ms/trx':>10}"
    )
    lines = [head, "-" * len(head)]
    for c in cells:
        clients = f"{len(c.runs)}x{c.threads}"
        certs, cert_pct, bf_aborts = "-", "-", "-"
        if c.conflicts is not None:
            certs, bf_aborts = str(c.conflicts.cert_failures), str(c.conflicts.bf_aborts)
            cert_pct = f"{c.cert_failure_pct:.2f}"
        cpu = "-" if c.cpu_ms_per_trx is None else f"{c.cpu_ms_per_trx:.2f}"
        lines.append(
            f"{c.target:<7} {c.workload:<16} {clients:>9} {c.tps:>8.1f} {c.p95_ms:>8.2f} "
            f"{c.errors / c.seconds:>7.2f} {100 * c.errors / max(c.attempts, 1):>6.2f} "
            f"{certs:>10} {cert_pct:>6} {bf_aborts:>9} {cpu:>10}"
        )
    by_key = {(c.target, c.workload): c for c in cells}
    lines.append("")
    for workload in dict.fromkeys(c.workload for c in cells):
        lines.append(
            f"{workload}: ours/galera {_ratio(by_key, workload, 'galera')}, "
            f"ours/direct {_ratio(by_key, workload, 'direct')}"
        )
    return "\n".join(lines)


# ---- main -----------------------------------------------------------------------------


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        unknown = [t for t in items if t not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(choices)}, got {text!r}"
            )
        return items

    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=_positive, default=60, help="seconds per sysbench run")
    parser.add_argument("--threads", type=_positive, default=8, help="clients per cluster node")
    parser.add_argument("--nodes", type=_positive, default=3, help="cluster size")
    parser.add_argument(
        "--direct-threads",
        type=_positive,
        default=None,
        help="clients on the direct server (default: threads x nodes)",
    )
    parser.add_argument("--workloads", type=_csv(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--targets", type=_csv(TARGETS), default=list(TARGETS))
    parser.add_argument(
        "--base-port", type=_positive, default=None, help="ours: first proxy port (default: free)"
    )
    parser.add_argument(
        "--appliers",
        type=_positive,
        default=APPLIERS,
        help="applier connections per node (ours) and wsrep_slave_threads (galera)",
    )
    args = parser.parse_args(argv)
    if args.direct_threads is None:
        args.direct_threads = args.threads * args.nodes
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp, contextlib.ExitStack() as up:
        work = Path(tmp)
        # Each target lives in its own dir, which names its processes (see server_cpu).
        starters = {
            "ours": lambda: ours_cluster(
                work / "ours",
                args.nodes,
                args.base_port or free_port_run(args.nodes),
                appliers=args.appliers,
            ),
            "galera": lambda: galera_cluster(work / "galera", args.nodes, args.appliers),
            "direct": lambda: direct_server(work / "direct"),
        }
        targets: dict[str, list[Address]] = {}
        for name in args.targets:
            print(f"bench: starting {name}", flush=True)
            try:
                targets[name] = up.enter_context(starters[name]())
            except TargetUnavailable as exc:
                print(f"bench: target {name} skipped: {exc}", flush=True)
                continue
            print(f"bench: {name} on {targets[name]}, preparing sysbench tables", flush=True)
            try:
                # ours has the tables from the start (--init-sql); the others get them now
                (wait_for_tables if name == "ours" else prepare_tables)(targets[name])
            except (SysbenchError, pymysql.err.MySQLError) as exc:
                print(f"bench: target {name} skipped: preparing its tables failed: {exc}")
                del targets[name]
        failed: dict[str, str] = {}
        for workload in args.workloads:
            for name, nodes in targets.items():
                if name in failed:
                    continue
                threads = args.direct_threads if name == "direct" else args.threads
                print(
                    f"bench: {workload} on {name}: {len(nodes)} x {threads} clients "
                    f"for {args.time}s",
                    flush=True,
                )
                try:
                    cell = run_cell(name, workload, nodes, threads, args.time, home=work / name)
                except (SysbenchError, pymysql.err.MySQLError) as exc:
                    # A cluster that fails under load (say, it lost its primary component)
                    # is a result too: report it and measure the others.
                    failed[name] = f"{workload}: {first_fatal(str(exc))}"
                    print(f"bench: {workload} on {name} FAILED: {failed[name]}", flush=True)
                    continue
                cells.append(cell)
                print(
                    f"bench: {workload} on {name}: tps={cell.tps:.1f} p95={cell.p95_ms:.2f}ms "
                    f"errors={cell.errors} conflicts={cell.conflicts} server_cpu={cell.cpu}",
                    flush=True,
                )
    print("\n" + format_table(cells), flush=True)
    for name, why in failed.items():
        print(f"{name} failed on {why}", flush=True)
    return 1 if failed else 0


def first_fatal(message: str) -> str:
    """The line of a sysbench failure that says why (its first FATAL line), else the end."""
    fatal = [line for line in message.splitlines() if line.startswith("FATAL:")]
    return fatal[0] if fatal else message[-500:]


if __name__ == "__main__":
    sys.exit(main())
