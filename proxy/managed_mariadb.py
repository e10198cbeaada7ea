"""Real `mariadbd` processes on loopback with throw-away data dirs.

Used by the test harness and by `wsrepctl local/cluster up`. Each server gets its own data
dir, socket, pid file and error log under one base dir, listens on a free 127.0.0.1 port
and has `root@localhost`/`root@127.0.0.1` with an empty password.

`mariadb-install-db` is slow (seconds), so a pristine template data dir is built once per
MariaDB version and copied for every new server.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

log = logging.getLogger("wsrep.mariadb")

# Options every managed server gets; callers add or override through `options`.
BASE_OPTIONS: dict[str, str | None] = {
    "bind-address": "127.0.0.1",
    "skip-name-resolve": None,
    "innodb-buffer-pool-size": "128M",
    "innodb-log-file-size": "48M",
    "max-connections": "500",
    "max-allowed-packet": "1G",
    "character-set-server": "utf8mb4",
    "collation-server": "utf8mb4_general_ci",
    "skip-log-bin": None,
    "log-warnings": "1",
}


class MariaDBError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel picks: in its ephemeral range (32768-60999 on Linux)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# Runs of fixed ports (a cluster's proxies on P, P+1, ...) come from below the kernel's
# ephemeral range, so no port the kernel hands out later (free_port(), the source port of
# an outgoing connection) can take one of them between the check and the bind.
_RUN_LOW, _RUN_HIGH = 20000, 32768


def free_port_run(count: int, host: str = "127.0.0.1", attempts: int = 100) -> int:
    """A first port P with P..P+count-1 all free right now, below the ephemeral range."""
    rng = random.Random()
    for _ in range(attempts):
        first = rng.randrange(_RUN_LOW, _RUN_HIGH - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + count):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind((host, port))
        except OSError:
            continue
        return first
    raise MariaDBError(f"no run of {count} free ports on {host}")


def _binary(name: str, *fallbacks: str) -> str:
    for cand in (name, *fallbacks):
        path = shutil.which(cand)
        if path:
            return path
        if os.path.exists(f"/usr/sbin/{cand}"):
            return f"/usr/sbin/{cand}"
    raise MariaDBError(f"{name} not found: install Debian's mariadb-server (./dev does)")


def mariadbd_version() -> str:
    argv = [_binary("mariadbd", "mysqld"), "--version"]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def die_with_parent() -> None:
    # Linux: the server gets SIGKILL if the process that started it dies, so an
    # interrupted test run leaves no mariadbd behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _template_dir() -> Path:
    words = mariadbd_version().split()
    version = words[2] if len(words) > 2 else "unknown"
    cache = Path(os.environ.get("WSREP_CACHE_DIR", "/tmp/wsrep-proxy-cache"))
    return cache / f"mariadb-template-{version}"


def _build_template() -> Path:
    tpl = _template_dir()
    if (tpl / "mysql" / "user.frm").exists() or (tpl / "mysql" / "global_priv.frm").exists():
        return tpl
    tpl.parent.mkdir(parents=True, exist_ok=True)
    tmp = tpl.with_name(tpl.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    log.info("building MariaDB template data dir %s", tpl)
    cmd = [
        _binary("mariadb-install-db", "mysql_install_db"),
        "--no-defaults",
        f"--datadir={tmp}",
        "--user=root",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--innodb-log-file-size=48M",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise MariaDBError(f"mariadb-install-db failed: {res.stderr[-2000:]}")
    try:
        tmp.rename(tpl)
    except OSError:  # another process won the race; theirs is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    return tpl


@dataclass
class MariaDBServer:
    """One managed mariadbd. `start()` returns when it accepts connections."""

    base_dir: Path
    name: str = "db"
    port: int = 0
    # `--key=value`; None for a bare `--key`; False leaves one of BASE_OPTIONS out.
    options: Mapping[str, str | bool | None] = field(default_factory=dict)
    die_with_parent: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_path(self) -> Path:
        return self.base_dir / "mysqld.sock"

    @property
    def tmp_dir(self) -> Path:
        return self.base_dir / "tmp"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "mysqld.pid"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().strip())
        return None

    def _argv(self) -> list[str]:
        opts: dict[str, str | bool | None] = dict(BASE_OPTIONS)
        opts.update(self.options)
        opts.update(
            {
                "datadir": str(self.datadir),
                "socket": str(self.socket_path),
                "port": str(self.port),
                "pid-file": str(self.pid_file),
                "log-error": str(self.error_log),
                # Its own tmpdir: internal temporary tables never meet another server's.
                "tmpdir": str(self.tmp_dir),
                "user": "root",
            }
        )
        argv = [_binary("mariadbd", "mysqld"), "--no-defaults"]
        for key, val in opts.items():
            if val is False:
                continue
            argv.append(f"--{key}" if val is None else f"--{key}={val}")
        return argv

    def prepare(self) -> None:
        """Create the data dir from the template unless it exists already."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        if not self.datadir.exists():
            shutil.copytree(_build_template(), self.datadir)
        if not self.port:
            self.port = free_port()

    def start(self, timeout: float = 60.0) -> None:
        self.prepare()
        if self.proc is not None and self.proc.poll() is None:
            return
        log.info("%s: starting mariadbd on 127.0.0.1:%d (%s)", self.name, self.port, self.base_dir)
        self.proc = subprocess.Popen(
            self._argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if self.die_with_parent else None,
            start_new_session=not self.die_with_parent,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise MariaDBError(
                    f"{self.name}: mariadbd exited with {self.proc.returncode}: {self._log_tail()}"
                )
            try:
                self.connect(connect_timeout=2).close()
                return
            except pymysql.err.MySQLError as exc:
                last = exc
                time.sleep(0.05)
        raise MariaDBError(f"{self.name}: not ready after {timeout}s ({last}): {self._log_tail()}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.error_log.read_text(errors="replace")[-2000:]
        return "(no error log)"

    def connect(self, **kw: object) -> pymysql.connections.Connection:
        params: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": "root",
            "password": "",
            "autocommit": True,
        }
        params.update(kw)
        return pymysql.connect(**params)  # type: ignore[arg-type]

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown by pid (SIGTERM), SIGKILL if it does not go in time."""
        pid = self.pid
        if pid is None:
            return
        self._signal_and_wait(pid, signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        pid = self.pid
        if pid is not None:
            self._signal_and_wait(pid, signal.SIGKILL, 10.0)

    def _signal_and_wait(self, pid: int, sig: signal.Signals, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s: mariadbd pid %d ignored %s, killing", self.name, pid, sig.name)
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        else:
            deadline = time.monotonic() + timeout
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][0] != "Z"
    return False


@contextlib.contextmanager
def running_servers(
    base_dir: Path, count: int, options: Mapping[str, str | None] | None = None
) -> Iterator[list[MariaDBServer]]:
    """Start `count` servers side by side; stop and delete them however the block exits."""
    servers = [
        MariaDBServer(base_dir / f"db{i + 1}", name=f"db{i + 1}", options=dict(options or {}))
        for i in range(count)
    ]
    try:
        for srv in servers:
            srv.start()
        yield servers
    finally:
        for srv in servers:
            try:
                srv.destroy()
            except Exception:  # keep stopping the others
                log.exception("%s: stop failed", srv.name)
