"""`wsrepctl cluster up|down`: a local N-node cluster on loopback, one OS process per node.

`up --nodes N --dir DIR --base-port P` writes DIR/secret and DIR/node<i>/node.toml (node
i's proxy on P+i-1, its group transport on a free port, a managed MariaDB in
DIR/node<i>/db), starts node1 with `bootstrap`, then the others with `join` through
node1, and prints where to connect once every node is Synced. In the foreground it stops
the nodes on Ctrl-C/SIGTERM; with `--detach` it returns and `down --dir DIR` stops them by
the pids they recorded, one at a time, node1 last (each leaves the group cleanly).
`--init-sql FILE` is loaded on every fresh backend before capture is installed (all nodes
start from the same data: there is no state transfer yet).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from proxy.managed_mariadb import free_port, process_alive
from wsrepctl.cmd_node import read_status

UP_TIMEOUT = 180.0
DOWN_TIMEOUT = 30.0
LEAVE_TIMEOUT = 15.0  # per node, before the next one is stopped anyway
EXIT_LOG_LINES = 5  # of a node's log, shown when it exits during up


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = subparsers.add_parser("cluster", help="a local multi-node cluster on loopback")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start N nodes, each with its own managed MariaDB")
    up.add_argument("--nodes", type=int, default=3, help="number of nodes (1..9)")
    up.add_argument("--dir", type=Path, required=True, help="state directory")
    up.add_argument("--base-port", type=int, default=13306, help="node i's proxy: P+i-1")
    up.add_argument("--appliers", type=int, default=8, help="applier connections per node")
    up.add_argument("--init-sql", type=Path, help="SQL loaded on every fresh backend")
    up.add_argument("--detach", action="store_true", help="return once every node is Synced")
    up.add_argument(
        "--owner-pid", type=int, help="every node stops cleanly when this process exits"
    )
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop the nodes of `cluster up`")
    down.add_argument("--dir", type=Path, required=True)
    down.set_defaults(func=_down)


def node_dirs(state_dir: Path) -> list[Path]:
    return sorted(p.parent for p in state_dir.glob("node*/node.toml"))


def write_configs(args: argparse.Namespace, state_dir: Path) -> list[Path]:
    secret = state_dir / "secret"
    if not secret.exists():
        secret.write_text(secrets.token_hex(32) + "\n")
        secret.chmod(0o600)
    init = ""
    if args.init_sql is not None:
        shutil.copyfile(args.init_sql, state_dir / "init.sql")
        init = 'init_sql = "../init.sql"\n'
    proxy_ports = range(args.base_port, args.base_port + args.nodes)
    ports: list[int] = []  # group transports, then health endpoints
    while len(ports) < 2 * args.nodes:  # distinct, and never one of the proxies' ports
        port = free_port()
        if port not in proxy_ports and port not in ports:
            ports.append(port)
    groups = [f"127.0.0.1:{port}" for port in ports[: args.nodes]]
    healths = [f"127.0.0.1:{port}" for port in ports[args.nodes :]]
    paths = []
    for i in range(1, args.nodes + 1):
        node_dir = state_dir / f"node{i}"
        node_dir.mkdir(exist_ok=True)
        peers = ", ".join(f'"{g}"' for j, g in enumerate(groups, 1) if j != i)
        path = node_dir / "node.toml"
        path.write_text(
            "[node]\n"
            f'name = "node{i}"\n'
            f'proxy = "127.0.0.1:{args.base_port + i - 1}"\n'
            f'health = "{healths[i - 1]}"\n'
            f'group = "{groups[i - 1]}"\n'
            f"peers = [{peers if i > 1 else ''}]\n"
            'secret_file = "../secret"\n'
            f"appliers = {args.appliers}\n"
            f"{init}"
            "\n[backend]\n"
            'managed_dir = "db"\n'
            "\n[timeouts]\n"
            "heartbeat = 0.5\nsuspect = 3.0\ninactive = 10.0\nelection = 1.5\n"
        )
        paths.append(path)
    return paths


def _up(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= 9:
        print("cluster up: --nodes must be 1..9", file=sys.stderr)
        return 2
    state_dir: Path = args.dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if any(read_status(d) for d in node_dirs(state_dir)):
        print(f"cluster up: nodes in {state_dir} are running already", file=sys.stderr)
        return 1
    configs = write_configs(args, state_dir)
    deadline = time.monotonic() + UP_TIMEOUT
    try:
        started = [_start(configs[0], "bootstrap", args.owner_pid)]
        _wait_synced(configs[:1], started, 1, deadline)
        started += [_start(config, "join", args.owner_pid) for config in configs[1:]]
        _wait_synced(configs, started, len(configs), deadline)
    except (TimeoutError, NodeExited, OSError) as exc:
        print(f"cluster up: {exc}", file=sys.stderr)
        _stop(state_dir)
        return 1
    for i in range(1, len(configs) + 1):
        print(f"node{i}: mariadb -h 127.0.0.1 -P {args.base_port + i - 1} -u root")
    print(f"all {len(configs)} nodes Synced; logs in {state_dir}/node*/node.log")
    if args.detach:
        print(f"stop with: wsrepctl cluster down --dir {state_dir}", flush=True)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    _stop(state_dir)
    return 0


class NodeExited(RuntimeError):
    """A node process ended before its cluster was up (its own error is in node.log)."""


def _start(config: Path, how: str, owner_pid: int | None) -> subprocess.Popen[bytes]:
    log = config.parent / "node.log"
    argv = [sys.executable, "-m", "wsrepctl", how, "--config", str(config)]
    if owner_pid is not None:
        argv += ["--owner-pid", str(owner_pid)]
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )


def _wait_synced(
    configs: list[Path], started: list[subprocess.Popen[bytes]], size: int, deadline: float
) -> None:
    while time.monotonic() < deadline:
        for config, process in zip(configs, started, strict=True):
            if process.poll() is not None:  # say why now rather than time out later
                tail = (config.parent / "node.log").read_text(errors="replace").splitlines()
                raise NodeExited(
                    f"{config.parent.name} exited with status {process.returncode}:\n  "
                    + "\n  ".join(tail[-EXIT_LOG_LINES:])
                )
        docs = [read_status(c.parent) for c in configs]
        if all(d and d.get("state") == "SYNCED" and d.get("cluster_size") == size for d in docs):
            return
        time.sleep(0.2)
    late = [
        c.parent.name for c in configs if (read_status(c.parent) or {}).get("state") != "SYNCED"
    ]
    raise TimeoutError(f"not Synced after {UP_TIMEOUT:.0f}s: {', '.join(late)} (see node.log)")


def _down(args: argparse.Namespace) -> int:
    state_dir: Path = args.dir.resolve()
    if not node_dirs(state_dir):
        print(f"cluster down: no cluster in {state_dir}", file=sys.stderr)
        return 1
    stopped = _stop(state_dir)
    print(f"stopped {stopped} node(s) in {state_dir}")
    return 0


def _stop(state_dir: Path) -> int:
    """SIGTERM the nodes by their recorded pids one at a time, node1 last: each leaves the
    group before the next is told, so the others keep a primary component and node1, the
    last to leave, is the one whose grastate.dat says safe_to_bootstrap (so `up` on the
    same dir bootstraps from it). SIGKILL what is left after the timeout."""
    nodes = []
    for node_dir in reversed(node_dirs(state_dir)):
        with contextlib.suppress(OSError, ValueError):
            nodes.append((node_dir, int((node_dir / "node.pid").read_text().strip())))
    for node_dir, pid in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        # out of the group once it says CLOSED (its backend may still be stopping)
        leave_by = time.monotonic() + LEAVE_TIMEOUT
        while time.monotonic() < leave_by and read_status(node_dir) is not None:
            time.sleep(0.05)
    pids = [pid for _, pid in nodes]
    deadline = time.monotonic() + DOWN_TIMEOUT
    while time.monotonic() < deadline and any(process_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return len(pids)
