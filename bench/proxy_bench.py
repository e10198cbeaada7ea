"""What the proxy costs: sysbench directly against MariaDB, through a bare relay, through the proxy.

Starts its own managed MariaDB, the bare trio relay (bench/bare_relay.py, the baseline) and
the proxy (`wsrepctl proxy`, a subprocess), prepares the sysbench tables, then runs
`oltp_point_select` and `oltp_read_only` (default --db-ps-mode, so server-side prepared
statements) at 1, 8 and 32 threads against each of the three, interleaved so that noise on
a shared machine hits them alike. Prints QPS, p95 latency and the ratios.

    .venv/bin/python bench/proxy_bench.py [--time 20] [--threads 1,8,32] [--repeat 1]
        [--workloads oltp_point_select,oltp_read_only] [--profile [--top 30]]

`run_sysbench` and the process helpers are also used by the client tests (tests/clients).
"""

from __future__ import annotations

import argparse
import contextlib
import pstats
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from proxy.managed_mariadb import MariaDBServer, free_port
from wsrepctl.service_process import ServiceProcess

BENCH_DIR = Path(__file__).resolve().parent
WORKLOADS = ("oltp_point_select", "oltp_read_only")
TARGETS = ("direct", "relay", "proxy")
SB_TABLES = 4
SB_TABLE_SIZE = 10000


def proxy_process(
    backend: tuple[str, int],
    log_path: Path,
    *,
    extra_args: Sequence[str] = (),
    profile_to: Path | None = None,
) -> ServiceProcess:
    """`wsrepctl proxy` on a free loopback port, optionally under cProfile."""
    launcher = [sys.executable]
    if profile_to is not None:
        launcher += ["-m", "cProfile", "-o", str(profile_to)]
    argv = [
        *launcher,
        "-m",
        "wsrepctl",
        "proxy",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--backend",
        f"{backend[0]}:{backend[1]}",
        *extra_args,
    ]
    return ServiceProcess("proxy", argv, log_path)


def relay_process(backend: tuple[str, int], log_path: Path) -> ServiceProcess:
    argv = [
        sys.executable,
        str(BENCH_DIR / "bare_relay.py"),
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--backend",
        f"{backend[0]}:{backend[1]}",
    ]
    return ServiceProcess("relay", argv, log_path)


@dataclass(frozen=True)
class SysbenchResult:
    queries: int
    qps: float
    p95_ms: float
    errors: int
    reconnects: int
    output: str


_QUERIES = re.compile(r"^\s*queries:\s+(\d+)\s+\(([\d.]+) per sec\.\)", re.M)
_ERRORS = re.compile(r"^\s*ignored errors:\s+(\d+)", re.M)
_RECONNECTS = re.compile(r"^\s*reconnects:\s+(\d+)", re.M)
_P95 = re.compile(r"^\s*95th percentile:\s+([\d.]+)", re.M)


class SysbenchError(RuntimeError):
    pass


def parse_sysbench(output: str) -> SysbenchResult:
    found = [rx.search(output) for rx in (_QUERIES, _ERRORS, _RECONNECTS, _P95)]
    queries, errors, reconnects, p95 = found
    if not (queries and errors and reconnects and p95):
        raise SysbenchError(f"unexpected sysbench output:\n{output[-3000:]}")
    return SysbenchResult(
        queries=int(queries.group(1)),
        qps=float(queries.group(2)),
        p95_ms=float(p95.group(1)),
        errors=int(errors.group(1)),
        reconnects=int(reconnects.group(1)),
        output=output,
    )


def sysbench_argv(
    workload: str, command: str, host: str, port: int, *, threads: int = 1, seconds: int = 10
) -> list[str]:
    return [
        "sysbench",
        workload,
        "--db-driver=mysql",
        f"--mysql-host={host}",
        f"--mysql-port={port}",
        "--mysql-user=root",
        "--mysql-password=",
        "--mysql-db=sbtest",
        f"--tables={SB_TABLES}",
        f"--table-size={SB_TABLE_SIZE}",
        f"--threads={threads}",
        f"--time={seconds}",
        "--report-interval=0",
        command,
    ]


def run_sysbench(
    workload: str, host: str, port: int, *, threads: int, seconds: int
) -> SysbenchResult:
    """One `sysbench <workload> run`; raises on a non-zero exit or unreadable output."""
    argv = sysbench_argv(workload, "run", host, port, threads=threads, seconds=seconds)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if res.returncode != 0:
        raise SysbenchError(
            f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        )
    return parse_sysbench(res.stdout)


def prepare_sysbench(db: MariaDBServer) -> None:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS sbtest")
        cur.execute("CREATE DATABASE sbtest")
    argv = sysbench_argv("oltp_read_only", "prepare", db.host, db.port)
    subprocess.run(argv, check=True, capture_output=True, timeout=300)


@dataclass(frozen=True)
class Row:
    workload: str
    threads: int
    results: dict[str, SysbenchResult]

    def ratio(self, num: str, den: str) -> float:
        return self.results[num].qps / self.results[den].qps if self.results[den].qps else 0.0


def format_table(rows: Sequence[Row]) -> str:
    head = (
        f"{'workload':<18} {'thr':>3} "
        + " ".join(f"{t + ' qps':>11} {'p95 ms':>7}" for t in TARGETS)
        + f" {'prx/dir':>7} {'rel/dir':>7} {'prx/rel':>7}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = " ".join(
            f"{row.results[t].qps:>11.0f} {row.results[t].p95_ms:>7.2f}" for t in TARGETS
        )
        lines.append(
            f"{row.workload:<18} {row.threads:>3} {cells} "
            f"{row.ratio('proxy', 'direct'):>7.2f} {row.ratio('relay', 'direct'):>7.2f} "
            f"{row.ratio('proxy', 'relay'):>7.2f}"
        )
    return "\n".join(lines)


def print_profile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        print(f"\n== proxy profile: top {top} by {key} ==", flush=True)
        stats.sort_stats(key).print_stats(top)


@contextlib.contextmanager
def bench_services(work: Path, profile_to: Path | None) -> Iterator[dict[str, tuple[str, int]]]:
    """MariaDB with sysbench tables, the relay and the proxy; yields each target's address."""
    db = MariaDBServer(work / "mariadb", name="bench-db", die_with_parent=True)
    try:
        db.start()
        print(f"bench: MariaDB on {db.host}:{db.port}, preparing sysbench tables", flush=True)
        prepare_sysbench(db)
        backend = (db.host, db.port)
        relay = relay_process(backend, work / "relay.log")
        proxy = proxy_process(backend, work / "proxy.log", profile_to=profile_to)
        with relay, proxy:
            print(f"bench: relay on :{relay.port}, proxy on :{proxy.port}", flush=True)
            yield {
                "direct": backend,
                "relay": (relay.host, relay.port),
                "proxy": (proxy.host, proxy.port),
            }
        if proxy.returncode != 0:
            print(f"bench: warning: proxy exited {proxy.returncode} on SIGTERM", flush=True)
    finally:
        db.destroy()


def run_bench(
    workloads: Sequence[str],
    seconds: int,
    threads: Sequence[int],
    repeat: int,
    profile_to: Path | None,
    work: Path,
) -> list[Row]:
    """Each cell is the run with the median QPS of `repeat` runs; the targets take turns
    run by run, so a noisy spell on the shared machine hits them alike."""
    rows: list[Row] = []
    with bench_services(work, profile_to) as targets:
        for workload in workloads:
            for n in threads:
                runs: dict[str, list[SysbenchResult]] = {t: [] for t in TARGETS}
                for _ in range(repeat):
                    for target in TARGETS:
                        host, port = targets[target]
                        res = run_sysbench(workload, host, port, threads=n, seconds=seconds)
                        runs[target].append(res)
                        print(
                            f"bench: {workload} threads={n} {target:<6} qps={res.qps:.0f} "
                            f"p95={res.p95_ms:.2f}ms errors={res.errors}",
                            flush=True,
                        )
                rows.append(Row(workload, n, {t: _median(r) for t, r in runs.items()}))
    return rows


def _median(runs: list[SysbenchResult]) -> SysbenchResult:
    return sorted(runs, key=lambda r: r.qps)[len(runs) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=int, default=20, help="seconds per sysbench run")
    parser.add_argument("--threads", default="1,8,32", help="comma-separated thread counts")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated sysbench workloads"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median QPS)")
    parser.add_argument("--profile", action="store_true", help="run the proxy under cProfile")
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        work = Path(tmp)
        profile_to = work / "proxy.prof" if args.profile else None
        rows = run_bench(
            args.workloads.split(","), args.time, threads, args.repeat, profile_to, work
        )
        print("\n" + format_table(rows), flush=True)
        if profile_to is not None and profile_to.exists():
            print_profile(profile_to, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
