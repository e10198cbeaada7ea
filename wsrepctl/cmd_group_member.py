"""`wsrepctl group-member`: a group member with no database, for tests and the bench.

With `--gcache-dir DIR` its log and Raft hard state (term, vote) live on disk there, so a
restart with the same name and directory keeps them (and never votes twice in a term);
without it they are kept in memory, which is for benches only: such a member must not be
restarted under the same name while it is still in the configuration.

It joins (or bootstraps) a group and prints one JSON object per line on stdout: `ready`,
`view`, `deliver` (seqno, origin, size, crc32c of the payload), answers to commands read
from stdin (`submit ID TEXT`, `status`), and with `--load-*` the progress and summary of
a built-in load generator (1 KiB payloads by default, submit -> local delivery latency).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import signal
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from crc32c import crc32c

from wsrep.gcache import GCache, GCacheError
from wsrep.group.log import InMemoryLogStorage, LogStorage
from wsrep.group.types import Behind, Deliver, GroupConfig, MemberInfo, View, ViewChange
from wsrep.group_node import GroupError, GroupEvent, GroupNode, open_group_node
from wsrep.transport.address import parse_address, parse_group
from wsrepctl.node_config import GCACHE_SIZE, GCACHE_SYNC, parse_size

log = logging.getLogger("wsrep.group_member")

_LOAD_HEADER = struct.Struct(">Qd")  # counter, submit time: identifies our own payloads


# ---- shared with `wsrepctl arbitrator` ---------------------------------------------------


def add_member_arguments(parser: argparse.ArgumentParser, gcache_required: bool) -> None:
    parser.add_argument("--name", required=True, help="member name, unique in the cluster")
    parser.add_argument("--listen", required=True, help="host:port of the group transport")
    parser.add_argument("--group", default="", help="gcomm://host:port,... members to join through")
    parser.add_argument("--bootstrap", action="store_true", help="form a new cluster")
    parser.add_argument(
        "--secret-file", required=True, help="file holding the shared cluster secret"
    )
    parser.add_argument("--weight", type=int, default=1, help="vote weight (Galera pc.weight)")
    timeouts = parser.add_argument_group("timeouts (seconds, Galera evs.* defaults)")
    timeouts.add_argument("--heartbeat", type=float, default=GroupConfig.heartbeat_interval)
    timeouts.add_argument("--suspect", type=float, default=GroupConfig.suspect_timeout)
    timeouts.add_argument("--inactive", type=float, default=GroupConfig.inactive_timeout)
    timeouts.add_argument("--election", type=float, default=GroupConfig.election_timeout)
    parser.add_argument(
        "--fc-limit", type=int, default=GroupConfig.fc_limit, help="Galera gcs.fc_limit"
    )
    parser.add_argument(
        "--fc-factor",
        type=float,
        default=GroupConfig.fc_factor,
        help="Galera gcs.fc_factor: resume below fc_limit * fc_factor",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=GroupConfig.max_batch,
        help="payloads the leader packs in one message",
    )
    gcache = parser.add_argument_group("gcache: the log and the term/vote on disk")
    gcache.add_argument(
        "--gcache-dir",
        required=gcache_required,
        help="directory of this member's gcache (one process at a time; keep it across "
        "restarts: it holds the term and vote)",
    )
    gcache.add_argument(
        "--gcache-size",
        type=_size_argument,
        default=GCACHE_SIZE,
        help="Galera gcache.size: bytes or 128M, 1G (default 128M)",
    )
    gcache.add_argument(
        "--gcache-sync",
        choices=("on", "off"),
        default="on" if GCACHE_SYNC else "off",
        help="fdatasync each log append batch (hard state is always synced)",
    )


def _size_argument(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def open_gcache(path: Path, size: int, sync: bool) -> GCache:
    """The member's gcache in `path`; GCacheError (clear message) if it cannot be used."""
    segment_size = max(1 << 20, min(16 << 20, size // 8))  # the bound overshoots <= 1/8
    return GCache(path, size=size, segment_size=segment_size, sync=sync)


def _open_storage(args: argparse.Namespace) -> LogStorage:
    if args.gcache_dir is None:
        log.warning(
            "%s: no --gcache-dir: term, vote and log are in memory only; do not restart "
            "this member under the same name while it is in the configuration",
            args.name,
        )
        return InMemoryLogStorage()
    return open_gcache(Path(args.gcache_dir), args.gcache_size, args.gcache_sync == "on")


def member_config(args: argparse.Namespace, arbitrator: bool) -> GroupConfig:
    """GroupConfig from the parsed arguments; ValueError with a clear message if bad."""
    parse_address(args.listen)
    if args.weight < 0:
        raise ValueError(f"--weight must be >= 0, got {args.weight}")
    return GroupConfig(
        member=MemberInfo(args.name, args.listen, args.weight, arbitrator),
        seeds=parse_group(args.group),
        bootstrap=args.bootstrap,
        heartbeat_interval=args.heartbeat,
        suspect_timeout=args.suspect,
        inactive_timeout=args.inactive,
        election_timeout=args.election,
        fc_limit=args.fc_limit,
        fc_factor=args.fc_factor,
        max_batch=args.max_batch,
    )


def read_secret(path: str) -> bytes:
    """The cluster secret: the file's content without a trailing newline; never empty."""
    with open(path, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    if not secret:
        raise ValueError(f"secret file {path} is empty")
    return secret


def run_member(
    args: argparse.Namespace,
    arbitrator: bool,
    body: Callable[[GroupNode, trio.Nursery], Awaitable[None]],
) -> int:
    """Run a member until SIGTERM/SIGINT (exit 0) with `body` running next to it."""
    try:
        config = member_config(args, arbitrator)
        secret = read_secret(args.secret_file)
        storage = _open_storage(args)
    except (OSError, ValueError, GCacheError) as exc:
        print(f"wsrepctl {args.command}: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with (
                open_group_node(config, storage, secret, leave_on_exit=True) as node,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(body, node, nursery)
                async for signum in signals:
                    log.info("%s: %s: leaving", config.member.id, signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except OSError as exc:  # e.g. the listen address is taken
        print(f"wsrepctl {args.command}: {exc}", file=sys.stderr)
        return 1
    finally:
        if isinstance(storage, GCache):
            storage.close()
    return 0


def view_doc(view: View) -> dict[str, Any]:
    return {
        "event": "view",
        "conf_id": view.conf_id,
        "primary": view.primary,
        "members": [m.id for m in view.members],
        "own_index": view.own_index,
        "cluster": str(view.cluster_uuid),
    }


# ---- group-member ------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "group-member",
        help="run a group member with no database (tests, bench)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_member_arguments(parser, gcache_required=False)
    parser.add_argument(
        "--print",
        dest="print_events",
        choices=("all", "views", "none"),
        default="all",
        help="which events to print on stdout (deliveries are many under load)",
    )
    parser.add_argument(
        "--apply-delay",
        type=float,
        default=0.0,
        help="seconds to 'apply' each payload (a slow member, for flow control)",
    )
    parser.add_argument(
        "--submit-timeout", type=float, default=30.0, help="seconds to wait for a seqno"
    )
    load = parser.add_argument_group("load generator")
    load.add_argument(
        "--load-members",
        type=int,
        default=0,
        help="start the load once a primary view has this many members",
    )
    load.add_argument("--load-duration", type=float, default=10.0)
    load.add_argument("--load-rate", type=float, default=0.0, help="payloads/s, 0 = flat out")
    load.add_argument(
        "--load-concurrency", type=int, default=64, help="submitters, one payload in flight each"
    )
    load.add_argument("--payload-size", type=int, default=1024)
    parser.set_defaults(func=lambda args: run_member(args, False, _Member(args).run))


@dataclass
class _LoadStats:
    started: float = float("inf")
    ended: float = float("inf")
    cpu_seconds: float = 0.0  # this process's CPU time during the window
    runqueue_seconds: float = 0.0  # time it was ready to run but waited for a CPU
    submitted: int = 0
    failed: int = 0
    delivered_in_window: int = 0
    latencies: list[float] = field(default_factory=list)


class _Member:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.load = _LoadStats()
        self._primary_size = trio.Event()

    async def run(self, node: GroupNode, nursery: trio.Nursery) -> None:
        emit({"event": "ready", "name": self.args.name, "listen": self.args.listen})
        nursery.start_soon(self._read_commands, node, nursery)
        if self.args.load_members:
            nursery.start_soon(self._run_load, node)
        await self._consume(node)

    async def _consume(self, node: GroupNode) -> None:
        while True:
            try:
                batch = await node.next_events()
            except trio.EndOfChannel:
                return
            delay = self.args.apply_delay
            for i, event in enumerate(batch):
                self._on_event(node, event)
                if delay and isinstance(event, Deliver):
                    # a slow applier: flow control must hold the group back for it
                    await trio.sleep(delay)
                    node.set_apply_queue(len(batch) - i - 1 + node.pending_events)

    def _on_event(self, node: GroupNode, event: GroupEvent) -> None:
        printing = self.args.print_events
        if isinstance(event, Deliver):
            self._count(node, event)
            if printing == "all":
                emit(
                    {
                        "event": "deliver",
                        "seqno": event.seqno,
                        "origin": event.origin,
                        "size": len(event.payload),
                        "crc": crc32c(event.payload),
                    }
                )
        elif isinstance(event, ViewChange):
            view = event.view
            if view.primary and len(view.members) >= self.args.load_members > 0:
                self._primary_size.set()
            if printing != "none":
                emit(view_doc(view))
        elif isinstance(event, Behind):
            emit(
                {
                    "event": "behind",
                    "delivered_seqno": event.delivered_seqno,
                    "oldest_seqno": event.oldest_seqno,
                    "donor": event.donor,
                }
            )

    def _count(self, node: GroupNode, event: Deliver) -> None:
        now = trio.current_time()
        load = self.load
        if not load.started <= now <= load.ended:
            return
        load.delivered_in_window += 1
        if event.origin == node.config.member.id and len(event.payload) >= _LOAD_HEADER.size:
            _, sent = _LOAD_HEADER.unpack_from(event.payload)
            load.latencies.append(now - sent)

    async def _read_commands(self, node: GroupNode, nursery: trio.Nursery) -> None:
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buf = b""
        while chunk := await stdin.receive_some(65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._command(node, nursery, line.decode("utf-8", "replace").strip())

    def _command(self, node: GroupNode, nursery: trio.Nursery, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "submit":
            ident, _, text = rest.partition(" ")
            nursery.start_soon(self._submit, node, ident, text.encode())
        elif word == "status":
            view = node.view
            emit(
                {
                    "event": "status",
                    "view": view_doc(view) if view else None,
                    "role": node.role,
                    "leader": node.leader,
                    "connected": sorted(node.connected),
                    "stats": vars(node.stats),
                    "flow_control_paused": node.flow_control_paused,
                }
            )
        elif word:
            emit({"event": "error", "error": f"unknown command {word!r}"})

    async def _submit(self, node: GroupNode, ident: str, payload: bytes) -> None:
        try:
            seqno = await node.submit(payload, timeout=self.args.submit_timeout)
        except GroupError as exc:
            emit({"event": "submit-failed", "id": ident, "error": str(exc)})
        else:
            emit({"event": "submitted", "id": ident, "seqno": seqno})

    async def _run_load(self, node: GroupNode) -> None:
        args = self.args
        await self._primary_size.wait()
        load = self.load
        load.started = trio.current_time()
        load.ended = load.started + args.load_duration
        cpu_at_start = time.process_time()
        waited_at_start = _runqueue_wait()
        padding = b"x" * max(0, args.payload_size - _LOAD_HEADER.size)
        workers = args.load_concurrency
        # each submitter has one payload in flight; paced ones share the rate evenly
        interval = workers / args.load_rate if args.load_rate > 0 else 0.0

        async def submitter(first: int) -> None:
            for counter in itertools.count(first, workers):
                due = load.started + (counter // workers) * interval
                if due >= load.ended or trio.current_time() >= load.ended:
                    return
                if interval:
                    await trio.sleep_until(due + first / workers * interval)
                try:
                    await node.submit(_LOAD_HEADER.pack(counter, trio.current_time()) + padding)
                    load.submitted += 1
                except GroupError as exc:
                    load.failed += 1
                    log.debug("load: submit failed: %s", exc)

        async with trio.open_nursery() as submitters:
            submitters.start_soon(self._report_progress)
            for first in range(workers):
                submitters.start_soon(submitter, first)
            await trio.sleep_until(load.ended)
            load.cpu_seconds = time.process_time() - cpu_at_start
            load.runqueue_seconds = _runqueue_wait() - waited_at_start
            submitters.cancel_scope.deadline = load.ended + 5.0
        emit(self._summary())

    async def _report_progress(self) -> None:
        load = self.load
        while trio.current_time() < load.ended:
            await trio.sleep(1.0)
            elapsed = trio.current_time() - load.started
            emit(
                {
                    "event": "load-progress",
                    "elapsed": round(elapsed, 1),
                    "submitted": load.submitted,
                    "failed": load.failed,
                    "delivered": load.delivered_in_window,
                }
            )

    def _summary(self) -> dict[str, Any]:
        load = self.load
        lat = sorted(load.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None

        return {
            "event": "load-summary",
            "duration": self.args.load_duration,
            "submitted": load.submitted,
            "failed": load.failed,
            "delivered": load.delivered_in_window,
            "delivered_per_s": round(load.delivered_in_window / self.args.load_duration, 1),
            "cpu_seconds": round(load.cpu_seconds, 2),
            "cpu_us_per_delivered": (
                round(load.cpu_seconds / load.delivered_in_window * 1e6, 1)
                if load.delivered_in_window
                else None
            ),
            "runqueue_wait_seconds": round(load.runqueue_seconds, 2),
            "own_latency_samples": len(lat),
            "latency_ms_p50": pct(0.50),
            "latency_ms_p99": pct(0.99),
            "latency_ms_max": round(lat[-1] * 1000, 3) if lat else None,
        }


def _runqueue_wait() -> float:
    """Seconds this process has spent ready but waiting for a CPU (Linux schedstat; 0 else).

    On a shared machine this, not the work, can be what limits the bench.
    """
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def emit(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, separators=(",", ":")), flush=True)
