"""The wsrep interceptor without a network: which statements it answers, and how."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from status_testlib import NODE_VARIABLES, session_with, synced_status

from proxy.protocol.constants import FieldType
from proxy.protocol.results import ErrPacket, OkPacket, ResultSet
from proxy.session import Session
from proxy.wsrep_status import WsrepInterceptor, like_regex, show_text
from wsrep.node_state import NodeState
from wsrep.status import NodeStatus, NodeVariables


def make(status: NodeStatus | None = None) -> WsrepInterceptor:
    snap = status or synced_status()
    return WsrepInterceptor(lambda: snap, lambda s: NODE_VARIABLES.system_variables())


def ask(icpt: WsrepInterceptor, sql: str, session: Session | None = None) -> object:
    if session is None:
        session = session_with(sql)
    else:
        session.begin_statement(sql)
    return icpt(session, sql)


def rows(reply: object) -> dict[str, str]:
    assert isinstance(reply, ResultSet), reply
    assert [c.name for c in reply.columns] == ["Variable_name", "Value"]
    return {str(name): str(value) for name, value in reply.rows}


def test_status_names_and_formats() -> None:
    got = rows(ask(make(), "SHOW STATUS LIKE 'wsrep%'"))
    expected = {
        "wsrep_cluster_state_uuid": "6b1f5ad2-ca4c-11f0-9a5c-0e6f2f0e7a11",
        "wsrep_cluster_conf_id": "3",
        "wsrep_cluster_size": "3",
        "wsrep_cluster_status": "Primary",
        "wsrep_connected": "ON",
        "wsrep_ready": "ON",
        "wsrep_local_state": "4",
        "wsrep_local_state_comment": "Synced",
        "wsrep_local_index": "0",
        "wsrep_last_committed": "1234",
        "wsrep_replicated": "10",
        "wsrep_replicated_bytes": "5120",
        "wsrep_received": "30",
        "wsrep_received_bytes": "15360",
        "wsrep_local_cert_failures": "2",
        "wsrep_local_bf_aborts": "1",
        "wsrep_local_recv_queue": "0",
        "wsrep_local_send_queue": "0",
        "wsrep_flow_control_paused": "0.125",
        "wsrep_flow_control_sent": "0",
        "wsrep_flow_control_recv": "0",
        "wsrep_cert_index_size": "42",
        "wsrep_incoming_addresses": "127.0.0.1:4001,127.0.0.1:4002,127.0.0.1:4003",
        "wsrep_provider_name": "wsrep-proxy",
        "wsrep_local_state_uuid": "6b1f5ad2-ca4c-11f0-9a5c-0e6f2f0e7a11",
    }
    assert {k: got[k] for k in expected} == expected
    galera = [name for name in GALERA_STATUS_ORDER if name in got]
    assert list(got) == galera  # every name is Galera's, in Galera's order


# SHOW STATUS LIKE 'wsrep%' of a Synced MariaDB 10.11 node with Debian's galera-4 (4.23).
GALERA_STATUS_ORDER = [
    "wsrep_local_state_uuid",
    "wsrep_protocol_version",
    "wsrep_protocol_application",
    "wsrep_protocol_replicator",
    "wsrep_protocol_gcs",
    "wsrep_last_committed",
    "wsrep_replicated",
    "wsrep_replicated_bytes",
    "wsrep_repl_keys",
    "wsrep_repl_keys_bytes",
    "wsrep_repl_data_bytes",
    "wsrep_repl_other_bytes",
    "wsrep_received",
    "wsrep_received_bytes",
    "wsrep_local_commits",
    "wsrep_local_cert_failures",
    "wsrep_local_replays",
    "wsrep_local_send_queue",
    "wsrep_local_send_queue_max",
    "wsrep_local_send_queue_min",
    "wsrep_local_send_queue_avg",
    "wsrep_local_recv_queue",
    "wsrep_local_recv_queue_max",
    "wsrep_local_recv_queue_min",
    "wsrep_local_recv_queue_avg",
    "wsrep_local_cached_downto",
    "wsrep_flow_control_paused_ns",
    "wsrep_flow_control_paused",
    "wsrep_flow_control_sent",
    "wsrep_flow_control_recv",
    "wsrep_flow_control_active",
    "wsrep_flow_control_requested",
    "wsrep_cert_deps_distance",
    "wsrep_apply_oooe",
    "wsrep_apply_oool",
    "wsrep_apply_window",
    "wsrep_apply_waits",
    "wsrep_commit_oooe",
    "wsrep_commit_oool",
    "wsrep_commit_window",
    "wsrep_local_state",
    "wsrep_local_state_comment",
    "wsrep_cert_index_size",
    "wsrep_causal_reads",
    "wsrep_cert_interval",
    "wsrep_open_transactions",
    "wsrep_open_connections",
    "wsrep_incoming_addresses",
    "wsrep_cluster_weight",
    "wsrep_desync_count",
    "wsrep_evs_delayed",
    "wsrep_evs_evict_list",
    "wsrep_evs_repl_latency",
    "wsrep_evs_state",
    "wsrep_gcomm_uuid",
    "wsrep_gmcast_segment",
    "wsrep_checkpoint_position",
    "wsrep_se_checkpoint",
    "wsrep_applier_thread_count",
    "wsrep_cluster_capabilities",
    "wsrep_cluster_conf_id",
    "wsrep_cluster_size",
    "wsrep_cluster_state_uuid",
    "wsrep_cluster_status",
    "wsrep_connected",
    "wsrep_local_bf_aborts",
    "wsrep_local_index",
    "wsrep_provider_capabilities",
    "wsrep_provider_name",
    "wsrep_provider_vendor",
    "wsrep_provider_version",
    "wsrep_ready",
    "wsrep_rollbacker_thread_count",
    "wsrep_thread_count",
]


def test_disconnected_node_reports_like_galera() -> None:
    got = rows(ask(make(NodeStatus("n1")), "SHOW GLOBAL STATUS LIKE 'wsrep_%'"))
    assert got["wsrep_cluster_status"] == "Disconnected"
    assert got["wsrep_connected"] == "OFF"
    assert got["wsrep_ready"] == "OFF"
    assert got["wsrep_cluster_conf_id"] == "18446744073709551615"
    assert got["wsrep_local_index"] == "18446744073709551615"
    assert got["wsrep_local_state_comment"] == "Disconnected"


def test_a_node_that_left_as_inconsistent_says_why() -> None:
    why = "TOI seqno 9 came out differently: error 1146 here, OK in the cluster"
    status = NodeStatus("n1", NodeState.OPEN, "non-Primary", connected=True, inconsistency=why)
    got = rows(ask(make(status), "SHOW STATUS LIKE 'wsrep_%'"))
    assert got["wsrep_cluster_status"] == "non-Primary" and got["wsrep_ready"] == "OFF"
    assert got["wsrep_local_state"] == "0"
    assert got["wsrep_local_state_comment"] == f"Inconsistent: {why}"


def test_bad_cluster_status_is_rejected() -> None:
    with pytest.raises(ValueError):
        NodeStatus("n1", cluster_status="primary")


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SHOW STATUS LIKE 'wsrep_ready'", {"wsrep_ready"}),
        ("show session status like 'WSREP_READY';", {"wsrep_ready"}),
        ("SHOW STATUS LIKE 'wsrep_cluster_s_ze'", {"wsrep_cluster_size"}),
        ("SHOW STATUS LIKE 'wsrep\\_local\\_state%'", {
            "wsrep_local_state", "wsrep_local_state_comment", "wsrep_local_state_uuid"}),
        ("SHOW STATUS WHERE Variable_name = 'wsrep_ready'", {"wsrep_ready"}),
        ("SHOW STATUS WHERE variable_name IN ('wsrep_ready', 'wsrep_connected')",
         {"wsrep_ready", "wsrep_connected"}),
        ("SHOW STATUS WHERE Variable_name LIKE 'wsrep_flow%' AND Value <> '0'",
         {"wsrep_flow_control_paused", "wsrep_flow_control_active",
          "wsrep_flow_control_requested"}),
        ("SHOW STATUS WHERE (`Variable_name` = 'wsrep_ready' OR Variable_name = "
         "'wsrep_cluster_size') AND NOT Value = 'OFF'", {"wsrep_ready", "wsrep_cluster_size"}),
        ("SHOW STATUS WHERE Variable_name LIKE 'wsrep%' && Value = 'synced'",
         {"wsrep_local_state_comment"}),
        ("SHOW STATUS LIKE 'wsrep_nothing%'", set()),
    ],
)  # fmt: skip
def test_show_status_filters(sql: str, names: set[str]) -> None:
    assert set(rows(ask(make(), sql))) == names


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW STATUS",  # every server variable: the backend's
        "SHOW STATUS LIKE 'Threads%'",
        "SHOW STATUS LIKE '%wsrep%'",  # may match non-wsrep names
        "SHOW STATUS WHERE Variable_name LIKE 'wsrep%' OR Value = '1'",
        "SHOW STATUS WHERE Variable_name <> 'wsrep_ready'",
        "SHOW STATUS WHERE Value > 'wsrep'",  # not a filter we evaluate
        "SHOW STATUS WHERE Variable_name = wsrep_ready",
        "SHOW TABLES LIKE 'wsrep%'",
        "SHOW VARIABLES LIKE 'wsrep%'; SELECT 1",
        "SELECT @@version, @@wsrep_on",
        "SELECT @@wsrep_gtid_mode",  # a wsrep variable we do not model: the backend's
        "SELECT wsrep FROM t",
        "SET autocommit = 1",
        "SELECT 1",
    ],
)
def test_everything_else_goes_to_the_backend(sql: str) -> None:
    assert ask(make(), sql) is None


def test_show_variables_session_and_global() -> None:
    icpt = make()
    session = session_with("SET wsrep_sync_wait = 3")
    assert isinstance(icpt(session, "SET wsrep_sync_wait = 3"), OkPacket)
    got = rows(ask(icpt, "SHOW VARIABLES LIKE 'wsrep%'", session))
    assert got["wsrep_sync_wait"] == "3"
    assert got["wsrep_causal_reads"] == "ON"
    assert got["wsrep_cluster_name"] == "test_cluster"
    assert got["wsrep_on"] == "ON"
    assert got["wsrep_provider_options"] == "evs.inactive_timeout = PT15S; gcache.size = 128M; "
    assert got["wsrep_max_ws_size"] == "2147483647"
    assert got["wsrep_auto_increment_control"] == "ON"
    assert rows(ask(icpt, "SHOW GLOBAL VARIABLES LIKE 'wsrep_sync_wait'", session)) == {
        "wsrep_sync_wait": "0"
    }
    other = session_with("SHOW VARIABLES LIKE 'wsrep_sync_wait'", session_id=2)
    assert rows(icpt(other, other.sql or "")) == {"wsrep_sync_wait": "0"}


@pytest.mark.parametrize(
    ("sql", "sync_wait", "dirty"),
    [
        ("SET wsrep_sync_wait = 1", 1, False),
        ("SET SESSION wsrep_sync_wait=15", 15, False),
        ("SET @@session.wsrep_sync_wait := 7", 7, False),
        ("SET LOCAL wsrep_sync_wait = 2, wsrep_dirty_reads = ON", 2, True),
        ("SET @@wsrep_dirty_reads = 'on'", 0, True),
        ("SET wsrep_dirty_reads = TRUE", 0, True),
        ("SET wsrep_causal_reads = 1", 1, False),
        ("SET wsrep_sync_wait = 6, wsrep_causal_reads = ON", 7, False),
        ("set `wsrep_sync_wait` = 4;", 4, False),
    ],
)
def test_set_is_recorded_per_session(sql: str, sync_wait: int, dirty: bool) -> None:
    icpt = make()
    session = session_with(sql)
    assert isinstance(icpt(session, sql), OkPacket)
    assert (icpt.sync_wait(session), icpt.dirty_reads(session)) == (sync_wait, dirty)
    assert icpt.sync_wait(session_with("SELECT 1", session_id=2)) == 0
    back = "SET wsrep_sync_wait = DEFAULT, wsrep_dirty_reads = DEFAULT"
    assert isinstance(ask(icpt, back, session), OkPacket)
    assert (icpt.sync_wait(session), icpt.dirty_reads(session)) == (0, False)


def test_causal_reads_off_clears_only_its_bit() -> None:
    icpt = make()
    session = session_with("SET wsrep_sync_wait = 3")
    icpt(session, "SET wsrep_sync_wait = 3")
    ask(icpt, "SET wsrep_causal_reads = OFF", session)
    assert icpt.sync_wait(session) == 2


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SET wsrep_sync_wait = 16", 1231),
        ("SET wsrep_sync_wait = -1", 1231),
        ("SET wsrep_sync_wait = 'x'", 1232),
        ("SET wsrep_dirty_reads = 2", 1231),
        ("SET wsrep_nonexistent = 1", 1193),
        ("SET GLOBAL wsrep_sync_wait = 1", 1238),
        ("SET wsrep_cluster_name = 'x'", 1229),
        ("SET GLOBAL wsrep_cluster_name = 'x'", 1238),
        ("SET wsrep_sync_wait = 1, autocommit = 0", 1235),
        ("SET wsrep_sync_wait = 1 + 1", 1235),
        ("SET wsrep_sync_wait = 1; SELECT 1", 1235),
    ],
)
def test_bad_set_gets_a_clear_error_and_changes_nothing(sql: str, code: int) -> None:
    icpt = make()
    session = session_with(sql)
    reply = icpt(session, sql)
    assert isinstance(reply, ErrPacket) and reply.code == code, reply
    assert "wsrep" in reply.message
    assert icpt.sync_wait(session) == 0


def test_select_system_variables_types_like_mariadb() -> None:
    icpt = make()
    sql = (
        "SELECT @@wsrep_sync_wait, @@session.wsrep_dirty_reads AS dr, "
        "@@GLOBAL.wsrep_cluster_name, @@wsrep_on"
    )
    reply = ask(icpt, sql)
    assert isinstance(reply, ResultSet)
    assert [c.name for c in reply.columns] == [
        "@@wsrep_sync_wait", "dr", "@@GLOBAL.wsrep_cluster_name", "@@wsrep_on"
    ]  # fmt: skip
    assert [c.type for c in reply.columns] == [
        FieldType.LONGLONG, FieldType.LONGLONG, FieldType.VAR_STRING, FieldType.LONGLONG
    ]  # fmt: skip
    assert list(reply.rows) == [(0, 0, "test_cluster", 1)]


def test_settings_live_in_the_session_and_reset_with_it() -> None:
    icpt = make()
    session = session_with("SET wsrep_sync_wait = 1")
    session.admitted = 5
    assert isinstance(icpt(session, "SET wsrep_sync_wait = 1"), OkPacket)
    assert session.admitted == -1  # admission looks at the session again
    assert icpt.sync_wait(session) == 1
    session.reset()  # COM_RESET_CONNECTION / COM_CHANGE_USER
    assert icpt.sync_wait(session) == 0


def test_values_render_like_show() -> None:
    # Galera's doubles: six decimals at most, trailing zeros dropped (seen: 0, 0.5).
    values = (True, False, 0.0, 0.5, 23.888889, 0.1843531, 7, "x")
    assert [show_text(v) for v in values] == [
        "ON", "OFF", "0", "0.5", "23.888889", "0.184353", "7", "x"
    ]  # fmt: skip


def test_node_variables_validate_sync_wait() -> None:
    with pytest.raises(ValueError):
        NodeVariables("n", sync_wait=16)


def _reference_like(pattern: str, text: str) -> bool:
    """A second, independent LIKE: dynamic programming over the pattern's units."""
    units: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            units.append(("lit", pattern[i + 1]))
            i += 2
            continue
        units.append(("any", "") if c == "%" else ("one", "") if c == "_" else ("lit", c))
        i += 1
    text = text.casefold()
    reach = {0}
    for kind, ch in units:
        nxt: set[int] = set()
        for pos in reach:
            if kind == "any":
                nxt.update(range(pos, len(text) + 1))
            elif pos < len(text) and (kind == "one" or text[pos] == ch.casefold()):
                nxt.add(pos + 1)
        reach = nxt
    return len(text) in reach


@given(st.text(alphabet="wsrep_%\\aX.", max_size=12), st.text(alphabet="wsrep_aX.%\\", max_size=12))
def test_like_matches_a_reference(pattern: str, text: str) -> None:
    assert (like_regex(pattern).fullmatch(text) is not None) == _reference_like(pattern, text)


@given(st.text(max_size=200))
def test_interceptor_never_crashes_on_any_text(sql: str) -> None:
    icpt = make(synced_status(ready=False, state=NodeState.OPEN))
    for text in (sql, "SHOW STATUS WHERE " + sql, "SET wsrep_sync_wait = " + sql,
                 "SELECT @@wsrep_on " + sql, "SHOW STATUS LIKE " + sql):  # fmt: skip
        reply = ask(icpt, text)
        assert reply is None or isinstance(reply, ResultSet | OkPacket | ErrPacket)


def test_like_escapes_regex_characters() -> None:
    assert like_regex("wsrep.x").fullmatch("wsrep.x")
    assert not like_regex("wsrep.x").fullmatch("wsrepYx")
    assert not like_regex("wsrep*").fullmatch("wsrepp")
    assert like_regex("wsrep(x)?").fullmatch("WSREP(X)?")


@pytest.mark.parametrize("value", ["¹", "٣", "1" * 5000, "0x1", "1e1"])
def test_odd_numbers_are_wrong_values(value: str) -> None:
    reply = ask(make(), f"SET wsrep_sync_wait = {value}")
    assert isinstance(reply, ErrPacket) and reply.code in (1231, 1235), reply
