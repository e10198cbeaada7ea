"""Admission (pure) and the causal wait (trio, on a mock clock)."""

from __future__ import annotations

import uuid
from typing import cast

import pytest
import trio
import trio.testing
from status_testlib import session_with

from proxy.admission import (
    LOCK_WAIT_TIMEOUT,
    NOT_READY,
    NodeAdmission,
    Verdict,
    admit,
    reads_no_table,
    wait_for_causality,
)
from proxy.auto_increment import AutoIncrementControl, auto_increment_for
from proxy.backend_client import BackendClient
from proxy.protocol.constants import Command, ServerStatus
from proxy.relay import Relay
from proxy.session import Session
from proxy.statement_class import classify
from wsrep.causal import CausalBarrierError
from wsrep.group.types import MemberInfo, View
from wsrep.ordering import OrderingGate

ALLOW, REFUSE, WAIT = Verdict.ALLOW, Verdict.REFUSE, Verdict.WAIT_FOR_CAUSALITY


# Observed on a non-primary MariaDB 10.11 + galera-4 node (the survivor of a 2-node
# cluster whose other node was SIGKILLed), with wsrep_dirty_reads OFF and then ON.
GALERA_NOT_PRIMARY = [
    ("SELECT 1", ALLOW, ALLOW),
    ("SELECT @@version", ALLOW, ALLOW),
    ("SELECT 1 FROM DUAL", ALLOW, ALLOW),
    ("SELECT NOW()", ALLOW, ALLOW),
    ("SELECT (SELECT 1 FROM DUAL)", ALLOW, ALLOW),
    ("USE adm", ALLOW, ALLOW),
    ("SHOW TABLES", ALLOW, ALLOW),
    ("DESCRIBE adm.t", ALLOW, ALLOW),
    ("SET autocommit=1", ALLOW, ALLOW),
    ("SELECT * FROM adm.t", REFUSE, ALLOW),
    ("SELECT * FROM adm.t FOR UPDATE", REFUSE, ALLOW),
    ("EXPLAIN SELECT * FROM adm.t", REFUSE, ALLOW),
    ("BEGIN", REFUSE, ALLOW),
    ("ROLLBACK", REFUSE, ALLOW),
    ("COMMIT", REFUSE, ALLOW),
    ("DO 1", REFUSE, ALLOW),
    ("INSERT INTO adm.t VALUES (2)", REFUSE, REFUSE),
]
# Ours where Galera's rule needs what a text classifier cannot know: refuse.
CONSERVATIVE = [
    ("CALL p()", REFUSE, REFUSE),  # Galera allows it with dirty reads; it may write
    ("SELECT * FROM information_schema.GLOBAL_STATUS", REFUSE, ALLOW),  # Galera: ALLOW
    ("LOCK TABLES t READ", REFUSE, REFUSE),
    ("UPDATE t SET a = 1", REFUSE, REFUSE),
    ("CREATE TABLE t (a INT)", REFUSE, REFUSE),
    ("GRANT SELECT ON *.* TO u", REFUSE, REFUSE),
    ("SET autocommit = 0; SELECT 1", ALLOW, ALLOW),
    ("SELECT 1; DELETE FROM t", REFUSE, REFUSE),
    ("EXPLAIN t a", ALLOW, ALLOW),
    ("DESC FORMAT=JSON SELECT 1", REFUSE, ALLOW),
    ("/* nothing */", ALLOW, ALLOW),
]


@pytest.mark.parametrize(("sql", "plain", "dirty"), GALERA_NOT_PRIMARY + CONSERVATIVE)
def test_not_ready(sql: str, plain: Verdict, dirty: Verdict) -> None:
    assert admit(classify(sql), sql, ready=False) is plain
    assert admit(classify(sql), sql, ready=False, dirty_reads=True) is dirty


def test_prepared_statement_without_text() -> None:
    assert admit(classify("SELECT 1"), None, ready=False) is REFUSE
    assert admit(classify("SELECT 1"), None, ready=False, dirty_reads=True) is ALLOW


@pytest.mark.parametrize(
    ("sql", "sync_wait", "verdict"),
    [
        ("SELECT * FROM t", 0, ALLOW),
        ("SELECT * FROM t", 1, WAIT),
        ("BEGIN", 1, WAIT),
        ("SELECT * FROM t", 2, ALLOW),
        ("UPDATE t SET a = 1", 2, WAIT),
        ("DELETE FROM t", 3, WAIT),
        ("INSERT INTO t VALUES (1)", 3, ALLOW),
        ("REPLACE INTO t VALUES (1)", 4, WAIT),
        ("SHOW TABLES", 7, ALLOW),
        ("SHOW TABLES", 8, WAIT),
        ("SET autocommit = 1", 15, ALLOW),
    ],
)
def test_ready_waits_by_sync_wait_bits(sql: str, sync_wait: int, verdict: Verdict) -> None:
    assert admit(classify(sql), sql, ready=True, sync_wait=sync_wait) is verdict


def test_reads_no_table() -> None:
    assert reads_no_table("SELECT NOW(), @@x")
    assert reads_no_table("(SELECT 1) UNION (SELECT 2 FROM DUAL)")
    assert not reads_no_table("SELECT a FROM t")
    assert reads_no_table("SELECT 'FROM t'")
    assert not reads_no_table("DO 1")


async def test_causal_wait_returns_once_the_node_caught_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = OrderingGate(10)
    asked = []

    async def cluster_seqno() -> int:
        asked.append(trio.current_time())
        await trio.sleep(0.01)  # a round trip through the group
        return 13

    async def applier() -> None:
        for seqno in (11, 12, 13, 14):
            await trio.sleep(1)
            gate.commit(seqno)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(applier)
        start = trio.current_time()
        assert await wait_for_causality(cluster_seqno, gate, timeout=30) is None
        assert gate.last_committed == 13
        assert trio.current_time() - start == pytest.approx(3, abs=0.1)
    assert len(asked) == 1


async def test_causal_wait_times_out_with_galeras_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = OrderingGate(10)

    async def cluster_seqno() -> int:
        return 11  # never committed here

    assert await wait_for_causality(cluster_seqno, gate, timeout=5) == LOCK_WAIT_TIMEOUT
    assert LOCK_WAIT_TIMEOUT.code == 1205 and LOCK_WAIT_TIMEOUT.sqlstate == "HY000"


async def test_causal_wait_bounds_an_unanswered_barrier(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def partitioned() -> int:
        await trio.sleep_forever()
        raise AssertionError

    assert await wait_for_causality(partitioned, OrderingGate(0), timeout=5) == LOCK_WAIT_TIMEOUT


async def test_already_caught_up_does_not_wait(autojump_clock: trio.testing.MockClock) -> None:
    async def cluster_seqno() -> int:
        return 5

    start = trio.current_time()
    assert await wait_for_causality(cluster_seqno, OrderingGate(7), timeout=5) is None
    assert trio.current_time() == start


class _Settings:
    def __init__(self, sync_wait: int = 0, dirty_reads: bool = False) -> None:
        self._sync_wait = sync_wait
        self._dirty = dirty_reads

    def sync_wait(self, session: Session) -> int:
        return self._sync_wait

    def dirty_reads(self, session: Session) -> bool:
        return self._dirty


class _Relay:
    """What `NodeAdmission.verdict` reads of a relay when no auto-increment is set."""

    def __init__(self, session: Session) -> None:
        self.session = session


def on(session: Session) -> Relay:
    return cast(Relay, _Relay(session))


QUERY, EXECUTE, PREPARE = Command.QUERY, Command.STMT_EXECUTE, Command.STMT_PREPARE


async def test_node_admission_refuses_waits_and_allows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ready = [False]
    gate = OrderingGate(0)

    async def cluster_seqno() -> int:
        return 2

    admission = NodeAdmission(lambda: ready[0], _Settings(sync_wait=1), cluster_seqno, gate, 10)
    verdict = admission.verdict
    assert await verdict(on(session_with("SELECT * FROM t")), QUERY) == NOT_READY
    assert await verdict(on(session_with("SELECT * FROM t")), PREPARE) == NOT_READY
    assert await verdict(on(session_with("SELECT @@version")), QUERY) is None
    for command in (Command.FIELD_LIST, Command.CHANGE_USER, Command.RESET_CONNECTION):
        assert await verdict(on(session_with("SELECT 1")), command) == NOT_READY
    for command in (Command.PING, Command.INIT_DB, Command.QUIT, Command.STMT_CLOSE):
        assert await verdict(on(session_with("SELECT * FROM t")), command) is None
    ready[0] = True
    assert await verdict(on(session_with("UPDATE t SET a = 1")), QUERY) is None  # bit 2 unset
    assert await verdict(on(session_with("SELECT * FROM t")), QUERY) == LOCK_WAIT_TIMEOUT
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_commit_later, gate, (1, 2))
        assert await verdict(on(session_with("SELECT * FROM t")), QUERY) is None
    executed = Session(9, "127.0.0.1:1")
    executed.prepared[1] = classify("SELECT * FROM t")
    executed.begin_execute(b"\x17" + (1).to_bytes(4, "little") + bytes(5))
    ready[0] = False
    assert await verdict(on(executed), EXECUTE) == NOT_READY  # a prepared read is a table read


async def test_a_leader_change_holds_statements_instead_of_refusing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Readiness lost (a leader change) and back within `not_ready_hold`: the statement
    waits and runs; not back in time, or lost longer ago, or never ready: 1047."""
    ready = [True]
    admission = NodeAdmission(
        lambda: ready[0], _Settings(), _no_causal_wait, OrderingGate(0), 10, not_ready_hold=1
    )

    def set_ready(value: bool) -> None:
        ready[0] = value
        admission.changed()

    async def back_after(seconds: float) -> None:
        await trio.sleep(seconds)
        set_ready(True)

    write = session_with("UPDATE t SET a = 1")
    set_ready(False)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(back_after, 0.2)
        assert await admission.verdict(on(write), QUERY) is None
    assert trio.current_time() - start == pytest.approx(0.2)
    set_ready(False)
    start = trio.current_time()
    assert await admission.verdict(on(write), QUERY) == NOT_READY
    assert trio.current_time() - start == pytest.approx(1)
    start = trio.current_time()
    assert await admission.verdict(on(write), QUERY) == NOT_READY  # lost 1 s ago: at once
    assert await admission.verdict(on(session_with("SET @a = 1")), QUERY) is None
    assert trio.current_time() == start
    never = NodeAdmission(
        lambda: False, _Settings(), _no_causal_wait, OrderingGate(0), 10, not_ready_hold=1
    )
    never.changed()
    assert await never.verdict(on(write), QUERY) == NOT_READY  # still joining: at once
    assert trio.current_time() == start


async def _no_causal_wait() -> int:
    raise AssertionError("no causal wait asked")


async def test_no_causal_wait_inside_a_transaction(autojump_clock: trio.testing.MockClock) -> None:
    async def never() -> int:
        raise AssertionError("waited inside a transaction")

    admission = NodeAdmission(lambda: True, _Settings(sync_wait=1), never, OrderingGate(0), 1)
    session = session_with("SELECT * FROM t")
    session.status_flags |= ServerStatus.IN_TRANS
    assert await admission.verdict(on(session), QUERY) is None


async def test_barrier_refused_is_not_ready(autojump_clock: trio.testing.MockClock) -> None:
    async def refused() -> int:
        raise CausalBarrierError("node3: not in a primary component")

    assert await wait_for_causality(refused, OrderingGate(0), timeout=5) == NOT_READY


async def test_sessions_are_stamped_until_the_node_changes() -> None:
    async def cluster_seqno() -> int:
        raise AssertionError("no causal wait asked")

    settings = _Settings()
    admission = NodeAdmission(lambda: True, settings, cluster_seqno, OrderingGate(0), 1)
    plain = session_with("SELECT * FROM t")
    assert await admission.verdict(on(plain), QUERY) is None
    assert plain.admitted == admission.epoch  # the relay skips admission from now on
    admission.changed()
    assert plain.admitted != admission.epoch
    settings._sync_wait = 2
    causal = session_with("SELECT * FROM t", session_id=2)
    assert await admission.verdict(on(causal), QUERY) is None
    assert causal.admitted != admission.epoch  # sync_wait set: checked on every statement


async def _commit_later(gate: OrderingGate, seqnos: tuple[int, ...]) -> None:
    for seqno in seqnos:
        await trio.sleep(1)
        gate.commit(seqno)


def _view(members: int, own: int, primary: bool = True) -> View:
    infos = tuple(MemberInfo(f"node{i}", f"127.0.0.1:{i}") for i in range(members))
    return View(uuid.UUID(int=1), 1, infos, primary, own)


def test_auto_increment_follows_primary_views_only() -> None:
    assert auto_increment_for(None) is None
    assert auto_increment_for(_view(3, 1, primary=False)) is None
    assert auto_increment_for(_view(3, -1)) is None
    assert [auto_increment_for(_view(3, i)) for i in range(3)] == [(3, 1), (3, 2), (3, 3)]
    current: list[View | None] = [None]

    async def never() -> BackendClient:
        raise AssertionError("the task is not running")

    control = AutoIncrementControl(lambda: current[0], never, "node2")
    for view, values in [
        (None, None),
        (_view(3, 1), (3, 2)),
        (_view(3, 1, primary=False), (3, 2)),  # outside a primary view the last values stay
        (_view(2, 0), (2, 1)),
    ]:
        current[0] = view
        control.view_changed()
        assert control.values == values
