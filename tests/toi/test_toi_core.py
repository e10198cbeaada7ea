"""ProviderCore's ISOLATION handling: TOI write sets never fail, lock their tables against
concurrent row write sets and order everything after them; every node decides alike."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from certification.keys import row_key, table_key
from wsrep.group.types import MemberInfo, View
from wsrep.provider_core import Action, ProviderCore
from wsrep.writeset import WriteSet, WriteSetFlags, encode

TOI = WriteSetFlags.ISOLATION | WriteSetFlags.COMMIT
REPORT = WriteSetFlags.ISOLATION | WriteSetFlags.ROLLBACK
MEMBERS = tuple(MemberInfo(f"n{i}", f"127.0.0.1:{4000 + i}") for i in range(3))


def rows(origin: str, trx: int, last_seen: int, table: str, *ids: int) -> bytes:
    keys = tuple(row_key("s", table, "PRIMARY", [str(i).encode()]) for i in ids)
    return encode(WriteSet(origin, trx, last_seen, keys, b"rows"))


def toi(origin: str, trx: int, last_seen: int, *tables: str, flags: WriteSetFlags = TOI) -> bytes:
    keys = tuple(table_key("s", t) for t in tables)
    return encode(WriteSet(origin, trx, last_seen, keys, b"stmt", flags))


def test_toi_never_fails_and_runs_alone() -> None:
    core = ProviderCore("n0")
    assert core.deliver(1, rows("n1", 1, 0, "t", 1), set()).action is Action.APPLY
    # it did not see seqno 1, whose row is in its table: a row write set would fail
    ddl = core.deliver(2, toi("n1", 2, 0, "t"), set())
    assert ddl.action is Action.APPLY and ddl.verdict is not None
    assert ddl.verdict.passed and ddl.verdict.depends_seqno == 1
    own = core.deliver(3, toi("n0", 1, 0, "t"), {("n0", 1)})
    assert own.action is Action.RESOLVE and own.verdict is not None and own.verdict.passed


def test_toi_fails_concurrent_row_write_sets_on_its_tables_only() -> None:
    core = ProviderCore("n0")
    core.deliver(1, toi("n1", 1, 0, "t"), set())
    stale = core.deliver(2, rows("n2", 1, 0, "t", 5), set())  # executed before the DDL
    assert stale.action is Action.SKIP and stale.verdict is not None
    assert not stale.verdict.passed
    other = core.deliver(3, rows("n2", 2, 0, "u", 5), set())  # another table: passes
    assert other.action is Action.APPLY and other.verdict is not None
    assert other.verdict.depends_seqno == 1  # but applies after the DDL
    after = core.deliver(4, rows("n2", 3, 1, "t", 5), set())  # saw the DDL
    assert after.action is Action.APPLY and after.verdict is not None
    assert after.verdict.depends_seqno == 1


def test_outcome_report_locks_and_orders_nothing() -> None:
    core = ProviderCore("n0")
    core.deliver(1, toi("n1", 1, 0, "t"), set())
    report = core.deliver(2, toi("n1", 2, 1, flags=REPORT), set())
    assert report.action is Action.APPLY
    assert core.isolation_seqno == 1
    # its own report is handed to the appliers too (nobody waits for it)
    assert core.deliver(3, toi("n0", 9, 1, flags=REPORT), {("n0", 9)}).action is Action.APPLY


def test_inconsistent_node_stops_serving_for_good() -> None:
    core = ProviderCore("n0")
    core.view_changed(View(uuid.UUID(int=1), 1, MEMBERS, True, 0))
    assert core.ready
    core.mark_inconsistent()
    assert not core.ready
    core.view_changed(View(uuid.UUID(int=1), 2, MEMBERS, True, 0))
    assert not core.ready


events = st.lists(
    st.tuples(st.sampled_from(["rows", "toi", "report"]), st.sampled_from(["t", "u"]),
              st.integers(0, 3), st.integers(0, 4)),
    max_size=40,
)  # fmt: skip


@given(events)
def test_every_node_decides_alike(stream: list[tuple[str, str, int, int]]) -> None:
    cores = [ProviderCore(f"n{i}") for i in range(3)]
    decisions: list[list[tuple[object, ...]]] = [[] for _ in cores]
    for seqno, (kind, table, origin, back) in enumerate(stream, start=1):
        last_seen = max(0, seqno - 1 - back)
        name = f"n{origin}"
        if kind == "rows":
            payload = rows(name, seqno, last_seen, table, seqno % 3)
        else:
            payload = toi(name, seqno, last_seen, table, flags=TOI if kind == "toi" else REPORT)
        for core, out in zip(cores, decisions, strict=True):
            got = core.deliver(seqno, payload, set())
            verdict = got.verdict
            out.append((verdict.passed, verdict.depends_seqno) if verdict else None)
    assert decisions[0] == decisions[1] == decisions[2]
