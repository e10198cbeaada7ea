"""Hypothesis: the gcache against a plain list, across reopens, purges and damage.

Property runs use `sync=False`: in one process a closed cache is exactly what a killed
process leaves (no user-space buffers), and fsync only matters for power loss.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from wsrep.gcache import GCache
from wsrep.group.log import Entry, HardState

from .logs import build, steps

SEG = 1024


def open_cache(path: Path, size: int = 1 << 30) -> GCache:
    return GCache(path, size=size, segment_size=SEG, sync=False, cache_bytes=2048)


class GCacheMachine(RuleBasedStateMachine):
    """Random appends, conflicts (truncate), deliveries with purge, and reopens."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="gcache-sm-"))
        self.size = 4 * SEG
        self.g = open_cache(self.dir, self.size)
        self.log: list[Entry] = []
        self.state = HardState()

    @initialize(purge=st.booleans())
    def pick_size(self, purge: bool) -> None:
        if not purge:
            self.g.size = self.size = 1 << 30

    def teardown(self) -> None:
        self.g.close()
        shutil.rmtree(self.dir)

    @rule(more=steps)
    def append(self, more: list) -> None:
        entries = build(more, self.log[-1] if self.log else None)
        self.g.append(entries)
        self.log += entries

    @precondition(lambda self: len(self.log) > self.state.delivered)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(self.state.delivered + 1, len(self.log)))
        self.g.truncate_from(index)
        del self.log[index - 1 :]

    @rule(data=st.data(), vote=st.sampled_from((None, "a", "b")))
    def deliver(self, data: st.DataObject, vote: str | None) -> None:
        delivered = data.draw(st.integers(self.state.delivered, len(self.log)))
        self.state = HardState(self.state.term + 1, vote, None, delivered)
        self.g.save_hard_state(self.state)

    @rule()
    def reopen(self) -> None:
        self.g.close()
        self.g = open_cache(self.dir, self.size)

    @invariant()
    def matches_the_model(self) -> None:
        g = self.g
        first = g.first_index()
        assert g.last_index() == len(self.log)
        assert g.hard_state() == self.state
        assert first <= self.state.delivered + 1  # nothing undelivered was purged
        assert g.entries(first, len(self.log) + 1) == self.log[first - 1 :]
        base = g.base()[0]
        assert (base.index if base else 0) == first - 1
        if base is not None:
            assert (base.term, base.seqno) == (self.log[first - 2].term, self.log[first - 2].seqno)


TestGCacheMachine = GCacheMachine.TestCase
TestGCacheMachine.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log_steps=steps.filter(lambda s: sum(k not in ("term",) for k, _ in s) > 0),
    more=steps,
    data=st.data(),
)
def test_damage_anywhere_recovers_a_valid_prefix(
    log_steps: list, more: list, data: st.DataObject
) -> None:
    """Cut or corrupt any segment file at any byte: the log reopens as a prefix of what
    was appended (never garbage), and it can be continued."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        log = build(log_steps)
        with open_cache(path) as g:
            g.append(log)
        files = sorted(path.glob("seg-*"))
        victim = data.draw(st.sampled_from(files))
        raw = bytearray(victim.read_bytes())
        pos = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            del raw[pos:]  # a torn write
        else:
            raw[pos] ^= data.draw(st.integers(1, 255))  # bit rot or a garbage sector
        victim.write_bytes(bytes(raw))
        with open_cache(path) as g:
            n = g.last_index()
            assert g.first_index() == 1
            assert g.entries(1, n + 1) == log[:n]
            damaged_from = int(victim.name[4:24])
            assert n >= damaged_from - 1  # what came before the damaged file is intact
            rest = build(more, log[n - 1] if n else None)
            g.append(rest)
        with open_cache(path) as g:
            assert g.entries(1, g.last_index() + 1) == log[:n] + rest


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=120),
    segments=st.integers(1, 6),
)
def test_size_bound_holds_under_a_long_stream(sizes: list[int], segments: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bound = segments * SEG
        g = open_cache(Path(tmp), bound)
        prev: Entry | None = None
        for n, size in enumerate(sizes, 1):
            (e,) = build([("a", b"x" * size)], prev)
            g.append([e])
            g.save_hard_state(HardState(1, None, None, n))
            prev = e
            assert g.disk_bytes <= bound or g.segment_count == 1
            assert g.entries(g.first_index(), n + 1)[-1] == e
        g.close()
