"""Helper processes that listen on a port: started, awaited, stopped by their pid.

Used by the test harness and the benches for `wsrepctl proxy`, the bare relay and
similar services: a process is ready when its log says `... listening on HOST:PORT`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from proxy.managed_mariadb import die_with_parent

_LISTENING = re.compile(r"listening on (\S+):(\d+)")


class ServiceError(RuntimeError):
    pass


@dataclass
class ServiceProcess:
    """A listening helper process (proxy or relay): started, awaited, stopped by its pid.

    Ready when its log (stdout+stderr, kept in `log_path`) says `... listening on HOST:PORT`.
    """

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    returncode: int | None = field(default=None, init=False)

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log_text())
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
                return
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            time.sleep(0.02)
        self.stop()
        raise ServiceError(f"{self.name} not listening after {timeout}s: {self.tail()}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM by pid, SIGKILL if it does not exit in time; returns the exit code."""
        if self.proc is None:
            return self.returncode
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.returncode = None  # did not honour SIGTERM
        self.proc = None
        return self.returncode

    def stop_cleanly(self) -> None:
        """Stop, and raise unless it exited 0 on SIGTERM (as `wsrepctl proxy` promises)."""
        rc = self.stop()
        if rc != 0:
            why = "needed SIGKILL" if rc is None else f"exited {rc}"
            raise ServiceError(f"{self.name} {why} on SIGTERM:\n{self.tail()}")

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
