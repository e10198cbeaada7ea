"""Group members as real OS processes (`python -m wsrepctl group-member`) on loopback.

Each member's stdout (JSON lines) is read by a task that keeps what it saw: views,
deliveries, answers to submissions. Its stderr goes to a log file printed when a test
fails. Processes die with the test run (PR_SET_PDEATHSIG) and are killed by pid at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from proxy.managed_mariadb import die_with_parent

REPO = Path(__file__).resolve().parents[2]
# Waits are generous: the machine is shared, and they only make a failing test slower.
WAIT = 45.0
# Small group timeouts, yet roomy enough for a shared 2-core machine.
TIMEOUTS = ("--heartbeat", "0.1", "--suspect", "0.8", "--inactive", "2.0", "--election", "0.8")


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@dataclass
class MemberProcess:
    name: str
    address: str
    argv: list[str]
    log_path: Path
    process: trio.Process | None = None
    processes: list[trio.Process] = field(default_factory=list)  # every incarnation
    views: list[dict[str, Any]] = field(default_factory=list)
    delivered: dict[int, tuple[str, int]] = field(default_factory=dict)  # seqno -> origin, crc
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    behind: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    _submits: int = 0
    _stdin_lock: trio.Lock = field(default_factory=trio.Lock)

    @property
    def view(self) -> dict[str, Any] | None:
        return self.views[-1] if self.views else None

    def primary_with(self, members: set[str]) -> bool:
        view = self.view
        return view is not None and view["primary"] and set(view["members"]) == members

    @property
    def last_seqno(self) -> int:
        return max(self.delivered, default=0)

    async def start(self, nursery: trio.Nursery) -> None:
        self.views.clear()
        log = self.log_path.open("ab")
        self.process = await trio.lowlevel.open_process(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=REPO,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.processes.append(self.process)
        nursery.start_soon(self._read_stdout, self.process)

    async def _read_stdout(self, process: trio.Process) -> None:
        assert process.stdout is not None
        buf = b""
        async for chunk in process.stdout:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._on_event(json.loads(line))

    def _on_event(self, doc: dict[str, Any]) -> None:
        kind = doc["event"]
        if kind == "view":
            self.views.append(doc)
        elif kind == "deliver":
            got = (doc["origin"], doc["crc"])
            seen = self.delivered.setdefault(doc["seqno"], got)
            if seen != got:
                self.conflicts.append(f"{self.name}: seqno {doc['seqno']}: {seen} then {got}")
        elif kind in ("submitted", "submit-failed"):
            self.answers[doc["id"]] = doc
        elif kind == "status":
            self.statuses.append(doc)
        elif kind == "behind":
            self.behind.append(doc)

    async def command(self, line: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        async with self._stdin_lock:
            await self.process.stdin.send_all(line.encode() + b"\n")

    async def submit(self, text: str, timeout: float = WAIT) -> dict[str, Any]:
        """Submit `text`; the member's answer (`submitted` with a seqno, or `submit-failed`)."""
        self._submits += 1
        ident = f"{self.name}-{self._submits}"
        await self.command(f"submit {ident} {text}")
        await wait_until(lambda: ident in self.answers, timeout)
        return self.answers[ident]

    async def status(self) -> dict[str, Any]:
        count = len(self.statuses)
        await self.command("status")
        await wait_until(lambda: len(self.statuses) > count)
        return self.statuses[-1]

    def send_signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Ask the member to leave; its exit code."""
        assert self.process is not None
        self.send_signal(signum)
        with trio.fail_after(10):
            return await self.process.wait()

    async def kill_all(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await process.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Cluster:
    def __init__(self, tmp_path: Path, nursery: trio.Nursery, secret_file: Path) -> None:
        self.tmp_path = tmp_path
        self.nursery = nursery
        self.secret_file = secret_file
        self.members: dict[str, MemberProcess] = {}

    def add(
        self,
        name: str,
        *,
        bootstrap: bool = False,
        join: list[str] | None = None,
        command: str = "group-member",
        secret_file: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> MemberProcess:
        address = free_address()
        seeds = ",".join(self.members[j].address for j in join or [])
        argv = [
            sys.executable,
            "-m",
            "wsrepctl",
            command,
            "--name",
            name,
            "--listen",
            address,
            "--secret-file",
            str(secret_file or self.secret_file),
            "--gcache-dir",
            str(self.gcache_dir(name)),
            *TIMEOUTS,
            *extra,
        ]
        if seeds:
            argv += ["--group", f"gcomm://{seeds}"]
        if bootstrap:
            argv.append("--bootstrap")
        member = MemberProcess(name, address, argv, self.tmp_path / f"{name}.log")
        self.members[name] = member
        return member

    def gcache_dir(self, name: str) -> Path:
        return self.tmp_path / f"{name}.gcache"

    async def start(self, *names: str) -> None:
        for name in names:
            await self.members[name].start(self.nursery)

    async def restart(self, name: str) -> None:
        """Start `name` again on the same address, joining through the others."""
        member = self.members[name]
        others = [m.address for m in self.members.values() if m.name != name]
        argv = [a for a in member.argv if a != "--bootstrap"]
        if "--group" in argv:
            i = argv.index("--group")
            del argv[i : i + 2]
        member.argv = [*argv, "--group", "gcomm://" + ",".join(others)]
        await member.start(self.nursery)

    def check_agreement(self) -> None:
        """No two members delivered different payloads at the same seqno, ever."""
        merged: dict[int, tuple[str, tuple[str, int]]] = {}
        for m in self.members.values():
            assert not m.conflicts, m.conflicts
            for seqno, got in m.delivered.items():
                first = merged.setdefault(seqno, (m.name, got))
                assert first[1] == got, f"seqno {seqno}: {first} vs {m.name} {got}"

    def logs(self) -> str:
        return "\n".join(
            f"--- {m.name} {m.address} pids={[p.pid for p in m.processes]} "
            f"states={[_state(p.pid) for p in m.processes]} "
            f"exit={[p.returncode for p in m.processes]} views={len(m.views)} "
            f"delivered={len(m.delivered)}\n{m.log_tail()}"
            for m in self.members.values()
        )


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


def _state(pid: int) -> str:
    """The kernel's run state of a process (R, S, T = stopped, Z, ...)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat.rpartition(")")[2].split()[0]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_bytes(b"process test secret\n")
    return path


@pytest.fixture
async def cluster(tmp_path: Path, secret_file: Path) -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(tmp_path, nursery, secret_file)
        try:
            yield cluster
        finally:
            print(cluster.logs())  # shown by pytest only when the test failed
            with trio.CancelScope(shield=True):
                for member in cluster.members.values():
                    await member.kill_all()
            nursery.cancel_scope.cancel()
