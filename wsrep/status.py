"""What a node reports about itself, with Galera's names: `wsrep_%` status and variables.

`NodeStatus` is the provider's snapshot (filled by `wsrep.provider`, read by the proxy's
`SHOW STATUS`, admission and the health endpoint); `NodeVariables` is the node's
configuration as `SHOW VARIABLES` shows it. Both are plain data: values are Python
`bool`/`int`/`float`/`str`, and the application side renders them the way MariaDB does
(ON/OFF, decimal, six-decimal floats).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wsrep.node_state import NodeState

VarValue = bool | int | float | str

CLUSTER_STATUSES = ("Primary", "non-Primary", "Disconnected")
# conf_id and local_index are unsigned in Galera: -1 (no view) shows as 2**64 - 1.
_UNSIGNED = (1 << 64) - 1
NIL_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One consistent snapshot of the node's replication state and counters."""

    node_name: str
    state: NodeState = NodeState.CLOSED
    cluster_status: str = "Disconnected"  # one of CLUSTER_STATUSES
    connected: bool = False  # member of a group (any component)
    ready: bool = False  # accepts application queries (wsrep_ready)
    cluster_state_uuid: str = ""
    local_state_uuid: str = ""  # the node's own position uuid; differs while joining
    cluster_conf_id: int = -1  # view number; -1: no view yet
    cluster_size: int = 0
    cluster_weight: int = 0
    local_index: int = -1  # this node's index in the view
    gcomm_uuid: str = ""  # this node's member id in group communication
    incoming_addresses: tuple[str, ...] = ()  # client addresses of every member
    last_committed: int = -1
    replicated: int = 0  # write sets this node originated and ordered
    replicated_bytes: int = 0
    received: int = 0  # write sets delivered from the group (own ones included)
    received_bytes: int = 0
    local_commits: int = 0
    local_cert_failures: int = 0
    local_bf_aborts: int = 0
    local_replays: int = 0
    local_recv_queue: int = 0
    local_send_queue: int = 0
    local_cached_downto: int = -1  # lowest seqno still in the gcache
    flow_control_paused: float = 0.0  # fraction of time paused since the last reset
    flow_control_paused_ns: int = 0
    flow_control_sent: int = 0
    flow_control_recv: int = 0
    flow_control_active: bool = False  # this node asks the group to pause now
    inconsistency: str = ""  # why the node left the cluster as inconsistent ("" if it did not)
    flow_control_requested: bool = False  # the group is paused now
    cert_index_size: int = 0
    cert_deps_distance: float = 0.0
    open_transactions: int = 0
    causal_reads: int = 0  # causal waits done (a counter, unlike the variable)
    applier_thread_count: int = 0
    desync_count: int = 0
    protocol_version: int = 1
    provider_name: str = "wsrep-proxy"
    provider_vendor: str = "wsrep-proxy"
    provider_version: str = "0.1"

    def __post_init__(self) -> None:
        if self.cluster_status not in CLUSTER_STATUSES:
            raise ValueError(f"cluster_status must be one of {CLUSTER_STATUSES}")

    @property
    def local_state(self) -> int:
        return self.state.local_state

    @property
    def local_state_comment(self) -> str:
        if self.inconsistency:
            return f"Inconsistent: {self.inconsistency}"
        return self.state.comment

    @property
    def synced(self) -> bool:
        return self.state is NodeState.SYNCED

    def status_variables(self) -> dict[str, VarValue]:
        """The `wsrep_%` status variables with Galera's names, in the order a MariaDB
        Galera node lists them (the provider's first, then the server's)."""
        return {
            "wsrep_local_state_uuid": self.local_state_uuid or self.cluster_state_uuid,
            "wsrep_protocol_version": self.protocol_version,
            "wsrep_last_committed": self.last_committed,
            "wsrep_replicated": self.replicated,
            "wsrep_replicated_bytes": self.replicated_bytes,
            "wsrep_received": self.received,
            "wsrep_received_bytes": self.received_bytes,
            "wsrep_local_commits": self.local_commits,
            "wsrep_local_cert_failures": self.local_cert_failures,
            "wsrep_local_replays": self.local_replays,
            "wsrep_local_send_queue": self.local_send_queue,
            "wsrep_local_recv_queue": self.local_recv_queue,
            "wsrep_local_cached_downto": self.local_cached_downto,
            "wsrep_flow_control_paused_ns": self.flow_control_paused_ns,
            "wsrep_flow_control_paused": self.flow_control_paused,
            "wsrep_flow_control_sent": self.flow_control_sent,
            "wsrep_flow_control_recv": self.flow_control_recv,
            # Galera prints these two as words, not ON/OFF.
            "wsrep_flow_control_active": "true" if self.flow_control_active else "false",
            "wsrep_flow_control_requested": "true" if self.flow_control_requested else "false",
            "wsrep_cert_deps_distance": self.cert_deps_distance,
            "wsrep_local_state": self.local_state,
            "wsrep_local_state_comment": self.local_state_comment,
            "wsrep_cert_index_size": self.cert_index_size,
            "wsrep_causal_reads": self.causal_reads,
            "wsrep_open_transactions": self.open_transactions,
            "wsrep_incoming_addresses": ",".join(self.incoming_addresses),
            "wsrep_cluster_weight": self.cluster_weight,
            "wsrep_desync_count": self.desync_count,
            "wsrep_gcomm_uuid": self.gcomm_uuid,
            "wsrep_applier_thread_count": self.applier_thread_count,
            "wsrep_cluster_conf_id": self.cluster_conf_id & _UNSIGNED,
            "wsrep_cluster_size": self.cluster_size,
            "wsrep_cluster_state_uuid": self.cluster_state_uuid,
            "wsrep_cluster_status": self.cluster_status,
            "wsrep_connected": self.connected,
            "wsrep_local_bf_aborts": self.local_bf_aborts,
            "wsrep_local_index": self.local_index & _UNSIGNED,
            "wsrep_provider_name": self.provider_name,
            "wsrep_provider_vendor": self.provider_vendor,
            "wsrep_provider_version": self.provider_version,
            "wsrep_ready": self.ready,
        }


# Session-scope variables a client may SET through the proxy, with their kind.
SESSION_SETTABLE: Mapping[str, type] = {
    "wsrep_sync_wait": int,
    "wsrep_dirty_reads": bool,
    "wsrep_causal_reads": bool,  # deprecated alias of bit 1 of wsrep_sync_wait
}
SYNC_WAIT_MAX = 15  # every bit MariaDB 10.11 knows: 1 read, 2 update/delete, 4 insert, 8 show


@dataclass(frozen=True, slots=True)
class NodeVariables:
    """The node's `wsrep_%` system variables (global values), from its configuration."""

    node_name: str
    cluster_name: str = "my_wsrep_cluster"
    cluster_address: str = ""  # gcomm://host:port,host:port
    node_address: str = ""
    node_incoming_address: str = "AUTO"
    on: bool = True
    provider: str = "wsrep-proxy"
    provider_options: Mapping[str, str] = field(default_factory=dict)
    sync_wait: int = 0
    dirty_reads: bool = False
    max_ws_rows: int = 0
    max_ws_size: int = 2147483647
    auto_increment_control: bool = True
    slave_threads: int = 1
    certify_nonpk: bool = True
    osu_method: str = "TOI"
    retry_autocommit: int = 1
    sst_method: str = "rsync"
    start_position: str = f"{NIL_UUID}:-1"
    reject_queries: str = "NONE"
    desync: bool = False
    log_conflicts: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.sync_wait <= SYNC_WAIT_MAX:
            raise ValueError(f"wsrep_sync_wait must be in 0..{SYNC_WAIT_MAX}")

    def system_variables(self) -> dict[str, VarValue]:
        """Galera's names and values; `wsrep_provider_options` in its `k = v; ...` form."""
        options = "".join(f"{k} = {v}; " for k, v in sorted(self.provider_options.items()))
        return {
            "wsrep_auto_increment_control": self.auto_increment_control,
            "wsrep_causal_reads": bool(self.sync_wait & 1),
            "wsrep_certify_nonpk": self.certify_nonpk,
            "wsrep_cluster_address": self.cluster_address,
            "wsrep_cluster_name": self.cluster_name,
            "wsrep_desync": self.desync,
            "wsrep_dirty_reads": self.dirty_reads,
            "wsrep_log_conflicts": self.log_conflicts,
            "wsrep_max_ws_rows": self.max_ws_rows,
            "wsrep_max_ws_size": self.max_ws_size,
            "wsrep_node_address": self.node_address,
            "wsrep_node_incoming_address": self.node_incoming_address,
            "wsrep_node_name": self.node_name,
            "wsrep_on": self.on,
            "wsrep_osu_method": self.osu_method,
            "wsrep_provider": self.provider,
            "wsrep_provider_options": options,
            "wsrep_reject_queries": self.reject_queries,
            "wsrep_retry_autocommit": self.retry_autocommit,
            "wsrep_slave_threads": self.slave_threads,
            "wsrep_sst_method": self.sst_method,
            "wsrep_start_position": self.start_position,
            "wsrep_sync_wait": self.sync_wait,
        }
