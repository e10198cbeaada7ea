"""Deterministic simulation of a group: GroupMembers over an in-memory faulty network.

A plain discrete-event loop with a virtual clock and one seeded RNG drives the sans-I/O
cores: every message is a scheduled event (lost, delayed, duplicated or blocked by a
partition), members crash and restart from their storage, pause (SIGSTOP) and resume.
One seed decides everything, so a failing schedule replays exactly:

    WSREP_SIM_SEED=<seed> .venv/bin/python -m pytest tests/group/test_simulation.py -k replay
    .venv/bin/python -m tests.group.sim <seed>        # same, with the protocol's log
"""

from __future__ import annotations

import heapq
import logging
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from wsrep.group.log import InMemoryLogStorage
from wsrep.group.member import GroupMember
from wsrep.group.types import (
    Behind,
    Deliver,
    GroupConfig,
    MemberInfo,
    Send,
    Submitted,
    View,
    ViewChange,
)

TIMEOUTS = {
    "heartbeat_interval": 0.1,
    "election_timeout": 0.5,
    "suspect_timeout": 1.0,
    "inactive_timeout": 2.0,
}
FAULT_PHASE = 4.0  # seconds of virtual time with faults
LIVENESS_BOUND = 30.0  # after healing, everything must be back within this
LEAVE_WAIT = 1.0  # how long a leaving member waits to be removed before it just goes


class SimulationFailure(AssertionError):
    pass


def watch_behind(node: Node) -> list[Behind]:
    """The `Behind` actions the (started) `node`'s member emits from now on."""
    member = node.member
    assert member is not None, "start the node first"
    behind: list[Behind] = []
    original = member.take_actions

    def spy() -> list:
        actions = original()
        behind.extend(a for a in actions if isinstance(a, Behind))
        return actions

    member.take_actions = spy  # type: ignore[method-assign]
    return behind


@dataclass
class Node:
    info: MemberInfo
    storage: InMemoryLogStorage
    member: GroupMember | None = None
    lifetime: int = 0
    paused: bool = False
    tick_at: float = float("inf")
    view: View | None = None  # the last view this lifetime reported
    delivered: list[tuple[int, str, bytes]] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    # conf_id -> payloads delivered before this member first saw that primary view
    view_positions: dict[int, int] = field(default_factory=dict)
    # (lifetime, token) -> payload, and what came back for it
    submitted: dict[tuple[int, int], bytes] = field(default_factory=dict)
    answers: dict[tuple[int, int], list[Submitted]] = field(default_factory=dict)
    held: list[tuple[float, str, bytes]] = field(default_factory=list)  # messages while paused


@dataclass
class Schedule:
    """What one seed chose: the topology, the network's misbehaviour and the faults."""

    seed: int
    topology: str
    infos: list[MemberInfo]
    loss: float
    duplicate: float
    delay: tuple[float, float]
    faults: list[tuple[float, str, tuple]]  # (time, kind, args)
    seeded: bool = False  # the seed alone recreates it

    @classmethod
    def from_seed(cls, seed: int) -> Schedule:
        rng = random.Random(seed)
        topology = ("3", "5", "2+arbitrator", "3-weighted")[seed % 4]
        if topology == "3":
            infos = [MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}") for i in range(3)]
        elif topology == "5":
            infos = [MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}") for i in range(5)]
        elif topology == "3-weighted":
            infos = [
                MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}", weight=w)
                for i, w in enumerate((2, 1, 1))
            ]
        else:
            infos = [MemberInfo(f"n{i}", f"127.0.0.1:{4001 + i}") for i in range(2)]
            infos.append(MemberInfo("garb", "127.0.0.1:4010", arbitrator=True))
        ids = [m.id for m in infos]
        faults: list[tuple[float, str, tuple]] = []
        for _ in range(rng.randint(1, 5)):
            at = rng.uniform(0.5, FAULT_PHASE - 0.5)
            kind = rng.choice(("partition", "asymmetric", "crash", "pause", "isolate", "leave"))
            length = rng.choice((0.2, 0.5, 1.0, 2.0, 3.0))
            if kind == "partition":
                side = rng.sample(ids, rng.randint(1, len(ids) // 2))
                faults.append((at, "partition", (tuple(side), length)))
            elif kind == "asymmetric":
                a, b = rng.sample(ids, 2)
                faults.append((at, "block", (a, b, length)))
            elif kind == "isolate":
                faults.append((at, "partition", ((rng.choice(ids),), length)))
            else:
                faults.append((at, kind, (rng.choice(ids), length)))
        faults.sort()
        loss = rng.choice((0.0, 0.01, 0.05, 0.2))
        duplicate = rng.choice((0.0, 0.01, 0.05))
        delay = rng.choice(((0.001, 0.005), (0.001, 0.05), (0.01, 0.2)))
        return cls(seed, topology, infos, loss, duplicate, delay, faults, seeded=True)


class Simulation:
    def __init__(self, schedule: Schedule) -> None:
        self.s = schedule
        self.rng = random.Random(schedule.seed ^ 0x5EED)
        self.now = 0.0
        self._queue: list[tuple[float, int, str, tuple]] = []
        self._seq = 0
        self.nodes = {m.id: Node(m, InMemoryLogStorage()) for m in schedule.infos}
        self.blocked: set[tuple[str, str]] = set()
        self.loss = schedule.loss
        self.duplicate = schedule.duplicate
        self.payload_no = 0
        self.errors_delivered: set[bytes] = set()
        self.events = 0

    # ---- event loop -----------------------------------------------------------------------

    def at(self, when: float, kind: str, *args: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, kind, args))

    def run_until(self, end: float, stop: Callable[[], bool] | None = None) -> bool:
        while self._queue and self._queue[0][0] <= end:
            when, _, kind, args = heapq.heappop(self._queue)
            self.now = when
            self.events += 1
            getattr(self, "_on_" + kind)(*args)
            if stop is not None and stop():
                return True
        self.now = end
        return stop is not None and stop()

    # ---- members --------------------------------------------------------------------------

    def config_for(self, node: Node, bootstrap: bool) -> GroupConfig:
        seeds = tuple(m.address for m in self.s.infos if m.id != node.info.id)
        return GroupConfig(node.info, seeds=seeds, bootstrap=bootstrap, **TIMEOUTS)

    def start(self, node_id: str, bootstrap: bool = False) -> None:
        node = self.nodes[node_id]
        node.lifetime += 1
        node.view = None
        node.paused = False
        config = self.config_for(node, bootstrap)
        node.member = GroupMember(config, node.storage, self.now, self.rng.getrandbits(32))
        for other in self.nodes.values():
            if other is not node and other.member is not None:
                node.member.peer_up(other.info, self.now)
                other.member.peer_up(node.info, self.now)
                self.drain(other)
        self.drain(node)

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.member is None:
            return
        node.member = None
        node.paused = False
        node.held.clear()
        node.tick_at = float("inf")
        for other in self.nodes.values():
            if other.member is not None:
                other.member.peer_down(node_id, self.now)
                self.drain(other)

    def drain(self, node: Node) -> None:
        m = node.member
        if m is None:
            return
        for a in m.take_actions():
            if isinstance(a, Send):
                self.send(node.info.id, a.to, a.data)
            elif isinstance(a, Deliver):
                self.check_delivery(node, a)
            elif isinstance(a, ViewChange):
                node.view = a.view
                node.views.append(a.view)
                if a.view.primary:
                    node.view_positions.setdefault(a.view.conf_id, len(node.delivered))
            elif isinstance(a, Submitted):
                node.answers.setdefault((node.lifetime, a.token), []).append(a)
        deadline = m.next_deadline()
        if deadline < node.tick_at or node.tick_at <= self.now:
            node.tick_at = max(deadline, self.now)
            self.at(node.tick_at, "tick", node.info.id, node.lifetime)

    def check_delivery(self, node: Node, d: Deliver) -> None:
        if node.view is None or not node.view.primary:
            self.fail(f"{node.info.id} delivered seqno {d.seqno} outside a primary component")
        expected = len(node.delivered) + 1
        if d.seqno != expected:
            self.fail(f"{node.info.id} delivered seqno {d.seqno}, expected {expected}")
        node.delivered.append((d.seqno, d.origin, d.payload))

    def send(self, src: str, dst: str, data: bytes) -> None:
        if (src, dst) in self.blocked or dst not in self.nodes:
            return
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            return
        lo, hi = self.s.delay
        self.at(self.now + rng.uniform(lo, hi), "message", src, dst, data)
        if self.duplicate and rng.random() < self.duplicate:
            self.at(self.now + rng.uniform(lo, hi), "message", src, dst, data)

    def submit(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.member is None or node.paused:
            return
        self.payload_no += 1
        payload = f"{node_id}/{self.payload_no}".encode()
        token = node.member.submit(payload, self.now)
        node.submitted[(node.lifetime, token)] = payload
        self.drain(node)

    # ---- events ---------------------------------------------------------------------------

    def _on_tick(self, node_id: str, lifetime: int) -> None:
        node = self.nodes[node_id]
        if node.member is None or node.lifetime != lifetime or node.paused:
            return
        if self.now < node.tick_at:
            return
        node.tick_at = float("inf")
        node.member.tick(self.now)
        self.drain(node)

    def _on_message(self, src: str, dst: str, data: bytes) -> None:
        node = self.nodes[dst]
        if node.member is None:
            return
        if node.paused:
            node.held.append((self.now, src, data))
            return
        node.member.receive(src, data, self.now)
        self.drain(node)

    def _on_submit(self, node_id: str) -> None:
        self.submit(node_id)

    def _on_partition(self, side: tuple[str, ...], length: float) -> None:
        links = {(a, b) for a in side for b in self.nodes if b not in side}
        links |= {(b, a) for a, b in links}
        self.blocked |= links
        self.at(self.now + length, "unblock", frozenset(links))

    def _on_block(self, a: str, b: str, length: float) -> None:
        self.blocked.add((a, b))
        self.at(self.now + length, "unblock", frozenset({(a, b)}))

    def _on_unblock(self, links: frozenset[tuple[str, str]]) -> None:
        self.blocked -= links

    def _on_crash(self, node_id: str, length: float) -> None:
        if self.nodes[node_id].member is not None:
            self.crash(node_id)
            self.at(self.now + length, "restart", node_id)

    def _on_leave(self, node_id: str, length: float) -> None:
        """A clean stop: ask to leave, go once out or after a bound (as `run_node` does),
        come back `length` later."""
        node = self.nodes[node_id]
        if node.member is None or node.paused:
            return
        node.member.leave(self.now)
        self.drain(node)
        self.at(self.now + LEAVE_WAIT, "stop", node_id, node.lifetime, length)

    def _on_stop(self, node_id: str, lifetime: int, length: float) -> None:
        if self.nodes[node_id].lifetime == lifetime:
            self._on_crash(node_id, length)

    def _on_restart(self, node_id: str) -> None:
        if self.nodes[node_id].member is None:
            self.start(node_id)

    def _on_pause(self, node_id: str, length: float) -> None:
        node = self.nodes[node_id]
        if node.member is not None and not node.paused:
            node.paused = True
            self.at(self.now + length, "resume", node_id, node.lifetime)

    def _on_resume(self, node_id: str, lifetime: int) -> None:
        node = self.nodes[node_id]
        if node.lifetime != lifetime or not node.paused or node.member is None:
            return
        node.paused = False
        held, node.held = node.held, []
        node.member.tick(self.now)
        for _, src, data in held:
            node.member.receive(src, data, self.now)
        self.drain(node)

    # ---- the schedule ---------------------------------------------------------------------

    def run(self) -> None:
        ids = list(self.nodes)
        self.start(ids[0], bootstrap=True)
        for i, node_id in enumerate(ids[1:]):
            self.at(0.05 * (i + 1), "restart", node_id)
        for when, kind, args in self.s.faults:
            self.at(when, kind, *args)
        submitters = [m.id for m in self.s.infos if not m.arbitrator]
        t = 0.2
        while t < FAULT_PHASE:
            self.at(t, "submit", self.rng.choice(submitters))
            t += self.rng.expovariate(20.0)
        self.run_until(FAULT_PHASE)
        self.heal()
        if not self.run_until(FAULT_PHASE + LIVENESS_BOUND, self.converged):
            self.fail("not back in one primary component after healing: " + self.describe())
        # a new submission must reach every member within the bound
        origin = self.rng.choice(submitters)
        before = self.payload_no
        self.submit(origin)
        probe = f"{origin}/{before + 1}".encode()
        deadline = self.now + LIVENESS_BOUND
        if not self.run_until(deadline, lambda: self.delivered_everywhere(probe)):
            self.fail(
                f"{probe!r} submitted at {origin} not delivered everywhere: {self.describe()}"
            )
        self.settle()
        self.check()

    def heal(self) -> None:
        self.blocked.clear()
        self.loss = 0.0
        self.duplicate = 0.0
        self._queue = [e for e in self._queue if e[2] in ("message", "tick", "submit")]
        heapq.heapify(self._queue)
        for node_id, node in self.nodes.items():
            if node.member is not None and node.member._leaving:  # its stop was due
                self.crash(node_id)
            if node.member is None:
                self.start(node_id)
            elif node.paused:
                self._on_resume(node_id, node.lifetime)

    def converged(self) -> bool:
        views = set()
        leaders = set()
        for node in self.nodes.values():
            m = node.member
            if m is None or node.view is None or not node.view.primary:
                return False
            views.add((node.view.conf_id, node.view.members))
            leaders.add(m.leader)
        if len(views) != 1 or len(leaders) != 1:
            return False
        ((_, members),) = views
        return {m.id for m in members} == set(self.nodes)

    def delivered_everywhere(self, payload: bytes) -> bool:
        return all(
            any(p == payload for _, _, p in n.delivered[-50:])
            for n in self.nodes.values()
            if not n.info.arbitrator
        )

    def settle(self) -> None:
        """Let submissions still in flight finish (bounded), so every answer can be checked."""
        self.run_until(
            self.now + LIVENESS_BOUND,
            lambda: all(
                not n.member.pending_submissions
                for n in self.nodes.values()
                if n.member is not None
            ),
        )

    # ---- invariants -----------------------------------------------------------------------

    def check(self) -> None:
        appliers = [n for n in self.nodes.values() if not n.info.arbitrator]
        longest = max(appliers, key=lambda n: len(n.delivered))
        for n in appliers:
            if n.delivered != longest.delivered[: len(n.delivered)]:
                first = next(
                    i
                    for i, (a, b) in enumerate(zip(n.delivered, longest.delivered, strict=False))
                    if a != b
                )
                self.fail(
                    f"agreement: {n.info.id} and {longest.info.id} differ at seqno {first + 1}: "
                    f"{n.delivered[first]} vs {longest.delivered[first]}"
                )
        ordered = [p for _, _, p in longest.delivered]
        if len(ordered) != len(set(ordered)):
            self.fail("a payload was ordered twice")
        at_seqno = {s: p for s, _, p in longest.delivered}
        by_conf: dict[int, tuple] = {}
        positions: dict[int, int] = {}
        for n in appliers:
            for conf_id, at in n.view_positions.items():
                if positions.setdefault(conf_id, at) != at:
                    self.fail(
                        f"view {conf_id} came after {at} payloads at {n.info.id}, not "
                        f"after {positions[conf_id]} as elsewhere"
                    )
        for n in self.nodes.values():
            for v in n.views:
                if v.primary and by_conf.setdefault(v.conf_id, v.members) != v.members:
                    self.fail(f"two primary views with conf_id {v.conf_id}")
            for key, payload in n.submitted.items():
                answers = n.answers.get(key, [])
                if len(answers) > 1:
                    self.fail(f"{n.info.id} token {key} answered {len(answers)} times")
                if answers and answers[0].seqno is not None:
                    if at_seqno.get(answers[0].seqno) != payload:
                        self.fail(f"acknowledged {payload!r} at seqno {answers[0].seqno} lost")
                elif answers:
                    if payload in at_seqno.values():
                        self.fail(f"{payload!r} refused ({answers[0].error}) but ordered")
                elif key[0] == n.lifetime and n.member is not None:
                    self.fail(f"{n.info.id} never answered {payload!r}")

    def describe(self) -> str:
        parts = []
        for node_id, n in self.nodes.items():
            m = n.member
            state = "down" if m is None else f"{m.state.value} leader={m.leader} term={m._term}"
            view = "-" if n.view is None else f"conf={n.view.conf_id} primary={n.view.primary}"
            members = "" if n.view is None else ",".join(x.id for x in n.view.members)
            parts.append(f"{node_id}[{state} {view} ({members}) delivered={len(n.delivered)}]")
        return " ".join(parts)

    def fail(self, what: str) -> None:
        where = f"seed {self.s.seed} ({self.s.topology}) at t={self.now:.3f}: {what}"
        if not self.s.seeded:
            raise SimulationFailure(f"{where}\n  schedule: {self.s}")
        raise SimulationFailure(
            f"{where}\n"
            f"  replay: WSREP_SIM_SEED={self.s.seed} .venv/bin/python -m pytest "
            f"tests/group/test_simulation.py -k replay\n"
            f"  trace:  .venv/bin/python -m tests.group.sim {self.s.seed}"
        )


def run_seed(seed: int) -> Simulation:
    sim = Simulation(Schedule.from_seed(seed))
    sim.run()
    return sim


def main() -> None:
    schedule = Schedule.from_seed(int(sys.argv[1]))
    sim = Simulation(schedule)

    def stamp(record: logging.LogRecord) -> bool:
        record.simtime = sim.now
        return True

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(stamp)
    handler.setFormatter(logging.Formatter("%(simtime)8.3f %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    print(schedule, file=sys.stderr)
    sim.run()
    delivered = max(len(n.delivered) for n in sim.nodes.values())
    print(f"seed {schedule.seed}: ok, {sim.events} events, {delivered} payloads delivered")


if __name__ == "__main__":
    main()
