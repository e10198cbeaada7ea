"""Snapshots and sessions the status tests share."""

from __future__ import annotations

from proxy.session import Session
from wsrep.node_state import NodeState
from wsrep.status import NodeStatus, NodeVariables

CLUSTER_UUID = "6b1f5ad2-ca4c-11f0-9a5c-0e6f2f0e7a11"


def synced_status(**changes: object) -> NodeStatus:
    fields: dict[str, object] = {
        "node_name": "node1",
        "state": NodeState.SYNCED,
        "cluster_status": "Primary",
        "connected": True,
        "ready": True,
        "cluster_state_uuid": CLUSTER_UUID,
        "cluster_conf_id": 3,
        "cluster_size": 3,
        "local_index": 0,
        "incoming_addresses": ("127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"),
        "last_committed": 1234,
        "replicated": 10,
        "replicated_bytes": 5120,
        "received": 30,
        "received_bytes": 15360,
        "local_cert_failures": 2,
        "local_bf_aborts": 1,
        "flow_control_paused": 0.125,
        "cert_index_size": 42,
    }
    fields.update(changes)
    return NodeStatus(**fields)  # type: ignore[arg-type]


NODE_VARIABLES = NodeVariables(
    node_name="node1",
    cluster_name="test_cluster",
    cluster_address="gcomm://127.0.0.1:4567,127.0.0.1:4568",
    provider_options={"gcache.size": "128M", "evs.inactive_timeout": "PT15S"},
)


def session_with(sql: str, session_id: int = 1) -> Session:
    session = Session(session_id, "127.0.0.1:5000")
    session.begin_statement(sql)
    return session
