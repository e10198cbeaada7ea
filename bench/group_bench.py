"""Group communication bench: 3 member processes on loopback, submitters on all of them.

Each member runs `wsrepctl group-member` with its built-in load generator (1 KiB payloads
by default): it submits with N in flight (optionally paced to a rate), and measures
submit -> local delivery latency of its own payloads and how many payloads (from anyone)
it delivered in the window. Two runs: a low paced load and a saturating one.

    .venv/bin/python bench/group_bench.py [--duration 10] [--low-rate 200]
        [--concurrency 256] [--payload-size 1024] [--max-batch 1024]

Prints progress, then per run: ordered payloads/s (as delivered by each member), p50/p99
latency per member, CPU per payload, and how long members waited for a CPU: on a shared
machine that wait, not the work, sets the numbers, so a CPU-bound ceiling estimated from
the CPU per payload is printed too. Numbers only, never asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
MEMBERS = ("b1", "b2", "b3")


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Member:
    name: str
    process: trio.Process
    summary: dict[str, Any] | None = None
    progress: list[dict[str, Any]] = field(default_factory=list)


async def read_member(member: Member) -> None:
    assert member.process.stdout is not None
    buf = b""
    async for chunk in member.process.stdout:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            doc = json.loads(line)
            if doc["event"] == "load-progress":
                member.progress.append(doc)
                print(
                    f"  {member.name} t={doc['elapsed']:>5}s submitted={doc['submitted']}"
                    f" delivered={doc['delivered']} failed={doc['failed']}",
                    flush=True,
                )
            elif doc["event"] == "load-summary":
                member.summary = doc


async def run_once(
    label: str, args: argparse.Namespace, rate: float, concurrency: int, workdir: Path
) -> list[dict[str, Any]]:
    secret = workdir / "secret"
    secret.write_text("bench secret\n")
    addresses = {name: free_address() for name in MEMBERS}
    group = "gcomm://" + ",".join(addresses.values())
    print(
        f"== {label}: 3 members, {args.payload_size} B payloads, rate/member="
        f"{rate or 'unlimited'}, in flight/member={concurrency}, {args.duration}s",
        flush=True,
    )
    members: list[Member] = []
    async with trio.open_nursery() as nursery:
        try:
            for i, name in enumerate(MEMBERS):
                argv = [
                    sys.executable,
                    "-m",
                    "wsrepctl",
                    "group-member",
                    "--name",
                    name,
                    "--listen",
                    addresses[name],
                    "--group",
                    group,
                    "--secret-file",
                    str(secret),
                    "--print",
                    "none",
                    "--load-members",
                    "3",
                    "--load-duration",
                    str(args.duration),
                    "--load-rate",
                    str(rate),
                    "--load-concurrency",
                    str(concurrency),
                    "--payload-size",
                    str(args.payload_size),
                    "--max-batch",
                    str(args.max_batch),
                ]
                if args.gcache != "memory":  # the log and term/vote on disk, as in a node
                    gcache_dir = workdir / f"{label}-{name}.gcache"
                    argv += ["--gcache-dir", str(gcache_dir), "--gcache-sync", args.gcache]
                if i == 0:
                    argv.append("--bootstrap")
                with open(workdir / f"{label}-{name}.log", "wb") as log:
                    process = await trio.lowlevel.open_process(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        cwd=REPO,
                    )
                member = Member(name, process)
                members.append(member)
                nursery.start_soon(read_member, member)
            with trio.fail_after(args.duration + 60):
                while not all(m.summary for m in members):
                    if any(m.process.returncode is not None for m in members):
                        raise RuntimeError("a member exited early")
                    await trio.sleep(0.2)
        finally:
            for m in members:
                if m.process.returncode is None:
                    os.kill(m.process.pid, signal.SIGTERM)
            with trio.move_on_after(5) as waited:
                for m in members:
                    await m.process.wait()
            if waited.cancelled_caught:
                for m in members:
                    if m.process.returncode is None:
                        m.process.kill()
    summaries = [m.summary for m in members if m.summary]
    for m in members:
        s = m.summary or {}
        print(
            f"  {m.name}: ordered {s.get('delivered_per_s')} payloads/s delivered here, "
            f"own submitted {s.get('submitted')} failed {s.get('failed')}, latency p50 "
            f"{s.get('latency_ms_p50')} ms p99 {s.get('latency_ms_p99')} ms "
            f"max {s.get('latency_ms_max')} ms, CPU {s.get('cpu_seconds')} s = "
            f"{s.get('cpu_us_per_delivered')} us per delivered payload, waited "
            f"{s.get('runqueue_wait_seconds')} s for a CPU",
            flush=True,
        )
    return summaries


def headline(label: str, summaries: list[dict[str, Any]]) -> str:
    rates = [s["delivered_per_s"] for s in summaries]
    p50 = sorted(s["latency_ms_p50"] for s in summaries if s["latency_ms_p50"] is not None)
    p99 = [s["latency_ms_p99"] for s in summaries if s["latency_ms_p99"] is not None]
    waited = max(s["runqueue_wait_seconds"] / s["duration"] for s in summaries)
    return (
        f"{label}: {min(rates):.0f} ordered payloads/s (min over members), latency p50 "
        f"{p50[len(p50) // 2] if p50 else '-'} ms (median member), p99 "
        f"{max(p99) if p99 else '-'} ms (worst member); members waited up to "
        f"{waited:.0%} of the time for a CPU; CPU-bound ceiling {ceiling(summaries)}"
    )


def ceiling(summaries: list[dict[str, Any]]) -> str:
    """Payloads/s if the members had this machine's CPUs to themselves (from CPU per payload).

    Each member needs its CPU time per payload; one member can use at most one core.
    """
    costs = [s["cpu_us_per_delivered"] / 1e6 for s in summaries if s["cpu_us_per_delivered"]]
    if not costs:
        return "-"
    cores = os.cpu_count() or 1
    return f"~{min(1 / max(costs), cores / sum(costs)):,.0f}/s on {cores} cores"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--payload-size", type=int, default=1024)
    parser.add_argument("--low-rate", type=float, default=200.0, help="payloads/s per member")
    parser.add_argument("--concurrency", type=int, default=256, help="in flight per member")
    parser.add_argument("--only", choices=("low", "saturating"), default=None)
    parser.add_argument("--max-batch", type=int, default=1024, help="GroupConfig.max_batch")
    parser.add_argument("--keep", action="store_true", help="keep the member logs")
    parser.add_argument(
        "--gcache",
        choices=("memory", "on", "off"),
        default="memory",
        help="members' log: in memory, or a gcache with per-append fdatasync on/off",
    )
    args = parser.parse_args()
    runs = {
        "low": ("low load", args.low_rate, 16),
        "saturating": ("saturating", 0.0, args.concurrency),
    }
    workdir = Path(tempfile.mkdtemp(prefix="group-bench-"))
    results = []
    for key, (label, rate, concurrency) in runs.items():
        if args.only in (None, key):
            try:
                summaries = trio.run(run_once, key, args, rate, concurrency, workdir)
            except BaseException:
                print(f"run {key} failed; member logs in {workdir}", file=sys.stderr)
                raise
            results.append((label, summaries))
    if args.keep:
        print(f"member logs in {workdir}")
    else:
        shutil.rmtree(workdir)
    print("== results")
    for label, summaries in results:
        print("  " + headline(label, summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
