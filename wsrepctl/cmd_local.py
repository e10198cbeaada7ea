"""`wsrepctl local up|down`: a managed MariaDB with the proxy in front, on loopback.

This is the README's "bring it up" command until the local multi-node cluster lands.
`up` runs in the foreground (Ctrl-C or SIGTERM stops proxy and server); with `--detach`
it starts itself in the background, returns once the proxy answers, and `down` stops it by
the pid it recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from proxy.server import ProxyConfig
from proxy.managed_mariadb import MariaDBServer

log = logging.getLogger("wsrep.local")

DEFAULT_DIR = Path("var/local")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = subparsers.add_parser("local", help="a local MariaDB behind the proxy")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start MariaDB and the proxy, print where to connect")
    up.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state directory")
    up.add_argument("--port", type=int, default=3306 + 10000, help="proxy port")
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop what `local up --detach` started")
    down.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    down.set_defaults(func=_down)


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "wsrepctl-local.pid"


def _banner(port: int) -> str:
    return (
        f"wsrep-proxy is up: connect with  mariadb -h 127.0.0.1 -P {port} -u root\n"
        f"  (root has an empty password and is reachable from 127.0.0.1 only)"
    )


def _up(args: argparse.Namespace) -> int:
    state_dir: Path = args.dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.detach:
        return _detach(args, state_dir)
    from proxy.server import ProxyConfig  # imported here: other sub-commands need no proxy

    server = MariaDBServer(state_dir / "db1", name="db1", die_with_parent=True)
    server.start()
    config = ProxyConfig(
        listen_host="127.0.0.1",
        listen_port=args.port,
        backend_host=server.host,
        backend_port=server.port,
    )
    _pid_file(state_dir).write_text(f"{os.getpid()}\n")
    try:
        trio.run(_serve_until_signal, config)
    finally:
        log.info("stopping MariaDB (pid %s)", server.pid)
        server.stop()
        with contextlib.suppress(FileNotFoundError):
            _pid_file(state_dir).unlink()
    return 0


async def _serve_until_signal(config: ProxyConfig) -> None:
    from proxy.server import serve_proxy

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_proxy, config)
            print(_banner(port), flush=True)
            async for sig in signals:
                log.info("got %s, shutting down", signal.Signals(sig).name)
                nursery.cancel_scope.cancel()
                break


def _detach(args: argparse.Namespace, state_dir: Path) -> int:
    logfile = state_dir / "wsrepctl-local.log"
    argv = [sys.executable, "-m", "wsrepctl", "local", "up", "--dir", str(state_dir)]
    argv += ["--port", str(args.port)]
    with open(logfile, "ab") as out:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"local up failed (exit {child.returncode}); see {logfile}", file=sys.stderr)
            return 1
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", args.port), 1):
            print(_banner(args.port))
            print(f"  logs: {logfile}; stop with: wsrepctl local down --dir {state_dir}")
            return 0
        time.sleep(0.2)
    print(f"local up: proxy did not answer in time; see {logfile}", file=sys.stderr)
    child.terminate()
    return 1


def _down(args: argparse.Namespace) -> int:
    pid_file = _pid_file(args.dir.resolve())
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        print(f"nothing running in {args.dir}", file=sys.stderr)
        return 1
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"stopped wsrepctl local (pid {pid})")
    return 0
