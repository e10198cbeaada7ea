"""The cluster bench without servers: arguments, sysbench reports, percentiles, the table."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import cluster_bench
from bench.cluster_bench import Cell, NodeRun, ServerCpu, WsrepCounters
from bench.proxy_bench import SysbenchError
from proxy.managed_mariadb import MariaDBServer, free_port_run

SAMPLE = (Path(__file__).parent / "sysbench_run_output.txt").read_text()


def test_defaults_are_the_issue_s_bench() -> None:
    args = cluster_bench.parse_args([])
    assert args.time == 60
    assert args.threads == 8
    assert args.nodes == 3
    assert args.direct_threads == 24  # the clusters' client count, on one server
    assert args.workloads == ["oltp_write_only", "oltp_read_write"]
    assert args.targets == ["ours", "galera", "direct"]
    assert args.base_port is None


def test_options() -> None:
    args = cluster_bench.parse_args(
        ["--time", "30", "--threads", "4", "--nodes", "5", "--targets", "galera, direct"]
    )
    assert (args.time, args.threads, args.nodes, args.direct_threads) == (30, 4, 5, 20)
    assert args.targets == ["galera", "direct"]
    assert cluster_bench.parse_args(["--direct-threads", "8"]).direct_threads == 8
    assert cluster_bench.parse_args(["--base-port", "16000"]).base_port == 16000
    assert cluster_bench.parse_args([]).appliers == 8  # both clusters, the same
    assert cluster_bench.parse_args(["--appliers", "4"]).appliers == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workloads", "oltp_point_select"], "oltp_write_only,oltp_read_write"),
        (["--targets", "ours,mysql"], "ours,galera,direct"),
        (["--targets", ","], "comma-separated"),
        (["--threads", "0"], "at least 1"),
        (["--time", "-5"], "at least 1"),
        (["--time", "soon"], "invalid"),
        (["--surprise"], "unrecognized"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cluster_bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_run_argv_ignores_conflict_errors_and_asks_for_the_histogram() -> None:
    argv = cluster_bench.run_argv("oltp_write_only", ("127.0.0.1", 4000), threads=8, seconds=30)
    assert argv[:2] == ["sysbench", "oltp_write_only"]
    assert argv[-1] == "run"
    for option in (
        "--mysql-port=4000",
        "--threads=8",
        "--time=30",
        "--histogram=on",
        "--mysql-ignore-errors=1213,1020,1205",
    ):
        assert option in argv


def test_parse_run_reads_a_real_sysbench_report() -> None:
    run = cluster_bench.parse_run(SAMPLE)
    assert run.transactions == 4407
    assert run.tps == pytest.approx(2196.89)
    assert run.ignored_errors == 0
    assert run.reconnects == 0
    assert sum(run.histogram.values()) == run.transactions
    # sysbench's own p95 of this run, from the same histogram:
    assert cluster_bench.percentile([run.histogram], 95) == pytest.approx(0.64, abs=0.005)


@pytest.mark.parametrize("cut", ["transactions:", "ignored errors:", "reconnects:"])
def test_parse_run_refuses_output_without_a_field(cut: str) -> None:
    broken = "\n".join(line for line in SAMPLE.splitlines() if cut not in line)
    with pytest.raises(SysbenchError, match="unexpected sysbench output"):
        cluster_bench.parse_run(broken)


def test_percentile_of_nothing_is_zero() -> None:
    assert cluster_bench.percentile([], 95) == 0.0
    assert cluster_bench.percentile([{}, {}], 95) == 0.0


histograms = st.lists(
    st.dictionaries(
        st.floats(min_value=0.01, max_value=1000, allow_nan=False),
        st.integers(min_value=1, max_value=50),
        max_size=20,
    ),
    min_size=1,
    max_size=4,
)


@given(histograms, st.integers(min_value=1, max_value=100))
def test_percentile_of_merged_histograms_is_that_of_all_events(
    hists: list[dict[float, int]], pct: int
) -> None:
    events = sorted(itertools.chain.from_iterable([v] * n for h in hists for v, n in h.items()))
    got = cluster_bench.percentile(hists, pct)
    if not events:
        assert got == 0.0
        return
    at_or_below = sum(1 for e in events if e <= got)
    assert at_or_below >= len(events) * pct / 100  # pct% of the events are at or below
    assert sum(1 for e in events if e < got) < len(events) * pct / 100  # and it is the least


def _cell(
    target: str,
    workload: str,
    tps: float,
    conflicts: WsrepCounters | None,
    cpu: ServerCpu | None = None,
) -> Cell:
    run = NodeRun(
        transactions=int(tps * 10), tps=tps, ignored_errors=10, reconnects=0, histogram={5.0: 1}
    )
    return Cell(target, workload, threads=8, seconds=10, runs=[run], conflicts=conflicts, cpu=cpu)


def test_table_has_ratios_and_conflict_rates() -> None:
    cells = [
        _cell(
            "ours",
            "oltp_write_only",
            300.0,
            WsrepCounters(cert_failures=31, bf_aborts=2),
            ServerCpu(seconds=4.5, processes=6),
        ),
        _cell("galera", "oltp_write_only", 600.0, WsrepCounters(cert_failures=0, bf_aborts=0)),
        _cell("direct", "oltp_write_only", 1200.0, None),
        _cell("galera", "oltp_read_write", 100.0, WsrepCounters(cert_failures=5, bf_aborts=1)),
    ]
    table = cluster_bench.format_table(cells)
    ours = next(line for line in table.splitlines() if line.startswith("ours"))
    assert ours.split() == [
        "ours", "oltp_write_only", "1x8", "300.0", "5.00", "1.00", "0.33", "31", "1.03", "2", "1.50"
    ]  # fmt: skip
    direct = next(line for line in table.splitlines() if line.startswith("direct"))
    assert direct.split()[-4:] == ["-", "-", "-", "-"]
    assert "oltp_write_only: ours/galera 0.50, ours/direct 0.25" in table
    assert "oltp_read_write: ours/galera -, ours/direct -" in table


def test_main_skips_ours_while_wsrepctl_cluster_does_not_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cluster_bench, "ours_available", lambda: False)
    assert cluster_bench.main(["--targets", "ours", "--time", "1"]) == 0
    out = capsys.readouterr().out
    assert "target ours skipped: `wsrepctl cluster` does not exist yet" in out
    assert "bench: oltp_write_only on" not in out  # nothing else ran


def test_ours_that_fails_to_come_up_is_skipped_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend `wsrepctl cluster` exists: the real wsrepctl then refuses the sub-command (or,
    # once it exists, refuses --nodes 0), and the bench says so instead of crashing.
    monkeypatch.setattr(cluster_bench, "ours_available", lambda: True)
    with (
        pytest.raises(cluster_bench.TargetUnavailable, match="exited 2"),
        cluster_bench.ours_cluster(
            tmp_path, nodes=0, base_port=free_port_run(1), with_tables=False
        ),
    ):
        pytest.fail("a cluster that did not come up must not be measured")


def test_server_cpu_of_a_dir_no_process_names_is_zero(tmp_path: Path) -> None:
    assert cluster_bench.server_cpu(tmp_path / "nobody-runs-here") == ServerCpu(0.0, 0)


def test_free_port_run_gives_consecutive_free_ports() -> None:
    first = free_port_run(3)
    assert 1024 < first < 65533


@pytest.mark.mariadb
def test_a_server_without_galera_counters_reports_none(mariadb: MariaDBServer) -> None:
    assert cluster_bench.wsrep_counters([(mariadb.host, mariadb.port)]) is None


def test_a_failed_run_is_reported_by_its_fatal_line() -> None:
    output = (
        "Threads started!\n"
        "FATAL: mysql_stmt_execute() returned error 1180 (... Not connected to Primary"
        " Component) for query 'COMMIT'\n"
        "FATAL: `thread_run' function failed\n"
    )
    assert cluster_bench.first_fatal(output).startswith("FATAL: mysql_stmt_execute() ")
    assert cluster_bench.first_fatal("x" * 600 + "the end") == "x" * 493 + "the end"
