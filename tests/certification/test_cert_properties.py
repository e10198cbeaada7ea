"""Property tests: the index against a brute-force reference, and its determinism."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from certification import (
    CertificationIndex,
    CertificationRequest,
    Key,
    KeyKind,
    Outcome,
    Verdict,
    decode_key,
    row_key,
    table_key,
)

no_deadline = settings(deadline=None)  # timing on a shared machine is no property


@dataclass(frozen=True)
class Purge:
    behind: int  # the safe point trails the last seqno by this much


@dataclass(frozen=True)
class WriteSet:
    gap: int  # seqnos are increasing, with gaps (other ordered events)
    lag: int  # last_seen = max(0, seqno - lag)
    keys: tuple[Key, ...]
    invalid: bool = False  # a broken origin: last_seen = seqno


def key_space(rows: int, shared_share: int) -> st.SearchStrategy[Key]:
    """Row keys over `rows` values (small = crowded, full of conflicts), 1 in
    `shared_share` of them SHARED, and 1 in 10 a whole-table key."""
    kinds = [KeyKind.SHARED] + [KeyKind.EXCLUSIVE] * (shared_share - 1)
    kinds = kinds * 3 + [KeyKind.TABLE] * (len(kinds) * 3 // 9)
    schemas, tables = st.sampled_from(["s", "s", "S"]), st.sampled_from(["t", "u"])
    values = st.integers(0, rows).map(lambda n: (None,) if n == 0 else (str(n).encode(),))

    def build(kind: KeyKind, schema: str, table: str, value: tuple[bytes | None]) -> Key:
        if kind is KeyKind.TABLE:
            return table_key(schema, table)
        return row_key(schema, table, "PRIMARY", value, kind)

    return st.builds(build, st.sampled_from(kinds), schemas, tables, values)


@st.composite
def streams(draw: st.DrawFn) -> list[WriteSet | Purge]:
    keys = key_space(draw(st.sampled_from([2, 6, 20])), draw(st.sampled_from([2, 5])))
    write_sets = st.builds(
        WriteSet,
        st.integers(1, 3),
        st.integers(1, 12),
        st.lists(keys, max_size=4).map(tuple),
        st.sampled_from([False] * 9 + [True]),
    )
    events = st.one_of(write_sets, write_sets, write_sets, st.builds(Purge, st.integers(0, 8)))
    return draw(st.lists(events, min_size=10, max_size=60))


@dataclass
class Reference:
    """Brute force: scan every earlier write set that passed."""

    passed: list[CertificationRequest] = field(default_factory=list)

    def certify(self, ws: CertificationRequest, purged_to: int) -> Verdict:
        if not 0 <= ws.last_seen < ws.seqno:
            return Verdict(Outcome.INVALID)
        if ws.last_seen < purged_to:
            return Verdict(Outcome.STALE)
        depends = max(
            (
                earlier.seqno
                for earlier in self.passed
                if any(key.conflicts_with(other) for key in ws.keys for other in earlier.keys)
            ),
            default=0,
        )
        for key in ws.keys:
            hits = [
                earlier.seqno
                for earlier in self.passed
                if ws.last_seen < earlier.seqno < ws.seqno
                and any(key.conflicts_with(other) for other in earlier.keys)
            ]
            if hits:
                return Verdict(Outcome.CONFLICT, key, max(hits))
        self.passed.append(ws)
        return Verdict(Outcome.PASSED, depends_seqno=depends)


def run(
    stream: list[WriteSet | Purge],
    index: CertificationIndex,
    *,
    purge: bool = True,
    start: int = 0,
) -> list[tuple[CertificationRequest, Verdict, int]]:
    """Feed the stream (seqnos after `start`); return each write set, its verdict and the
    purge point it met."""
    out = []
    seqno = start
    for event in stream:
        if isinstance(event, Purge):
            if purge:
                index.purge(max(0, seqno - event.behind))
            continue
        seqno += event.gap
        last_seen = seqno if event.invalid else max(0, seqno - event.lag)
        ws = CertificationRequest(seqno, last_seen, event.keys)
        out.append((ws, index.certify(ws), index.purged_to))
    return out


@no_deadline
@given(streams())
def test_agrees_with_brute_force(stream: list[WriteSet | Purge]) -> None:
    reference = Reference()
    for ws, verdict, _ in run(stream, CertificationIndex(), purge=False):
        assert verdict == reference.certify(ws, purged_to=0)


@no_deadline
@given(streams())
def test_purging_changes_no_verdict_above_the_safe_point(stream: list[WriteSet | Purge]) -> None:
    """With purges the index still agrees with the unpurged reference for every write set
    whose last_seen is at or above the purge point (dependencies below it are dropped);
    the rest fail as STALE (never pass)."""
    reference = Reference()
    for ws, verdict, purged_to in run(stream, CertificationIndex()):
        expected = reference.certify(ws, purged_to=0)
        if expected.passed and expected.depends_seqno <= purged_to:
            # dependencies at or below the purge point are committed everywhere: dropped
            expected = Verdict(Outcome.PASSED, depends_seqno=0)
        if ws.last_seen >= purged_to or expected.outcome is Outcome.INVALID:
            assert verdict == expected
        else:
            assert verdict == Verdict(Outcome.STALE)
            if expected.passed:
                reference.passed.pop()  # it failed for real: later write sets never saw it


@no_deadline
@given(streams())
def test_two_nodes_fed_the_same_stream_decide_the_same(stream: list[WriteSet | Purge]) -> None:
    """The second node gets its keys through the wire form: equal bytes, other objects."""
    rewired = [
        WriteSet(e.gap, e.lag, tuple(decode_key(k.to_bytes())[0] for k in e.keys), e.invalid)
        if isinstance(e, WriteSet)
        else e
        for e in stream
    ]
    node1, node2 = CertificationIndex(), CertificationIndex()
    verdicts1 = [v for _, v, _ in run(stream, node1)]
    verdicts2 = [v for _, v, _ in run(rewired, node2)]
    assert verdicts1 == verdicts2
    assert node1.stats == node2.stats


@no_deadline
@given(streams(), st.integers(0, 8))
def test_purge_keeps_exactly_the_keys_of_write_sets_above_the_safe_point(
    stream: list[WriteSet | Purge], behind: int
) -> None:
    index = CertificationIndex()
    results = run(stream, index)
    safe = max(index.last_seqno - behind, index.purged_to)
    index.purge(safe)
    held = {
        (key.kind, key.ident)
        for ws, verdict, _ in results
        if verdict.passed and ws.seqno > safe
        for key in ws.keys
    }
    assert index.stats.index_size == len(held)
    assert index.stats.log_length == sum(
        1 for ws, verdict, _ in results if verdict.passed and ws.seqno > safe
    )
    index.purge(index.last_seqno)
    assert (index.stats.index_size, index.stats.log_length) == (0, 0)


@no_deadline
@given(streams(), st.integers(0, 60))
def test_a_joiner_preloaded_from_the_purge_point_decides_like_the_others(
    stream: list[WriteSet | Purge], split: int
) -> None:
    """A node that joins at position P gets the purge point C and the write sets that passed
    in (C, P] (state transfer), preloads them and certifies the rest of the stream."""
    split = min(split, len(stream))
    node = CertificationIndex()
    history = run(stream[:split], node)
    joiner = CertificationIndex(initial_seqno=node.purged_to)
    for ws, verdict, _ in history:
        if verdict.passed and ws.seqno > node.purged_to:
            joiner.preload(ws)
    offset = node.last_seqno  # the rest of the stream continues after P on both nodes
    rest = stream[split:]
    assert [v for _, v, _ in run(rest, joiner, start=offset)] == [
        v for _, v, _ in run(rest, node, start=offset)
    ]
    assert node.stats.index_size == joiner.stats.index_size
