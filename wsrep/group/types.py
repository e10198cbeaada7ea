"""The contract between the group-communication core and everything around it.

The core (`GroupMember`, sans-I/O) is fed received message bytes, peer up/down notices,
submissions and ticks, and returns `Action`s. A trio driver carries `Send` bytes over the
transport, hands `Deliver`/`ViewChange` to the replication layer in order, and resolves
submitters' waits from `Submitted`.

Galera's words map onto these: a `View` is a configuration (conf_id = Galera's
`wsrep_cluster_conf_id`), `primary` says whether it is a primary component, `seqno` is the
global seqno of a delivered payload (the GTID is `cluster_uuid:seqno`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

MemberId = str  # a member's stable name, unique in the cluster


@dataclass(frozen=True)
class MemberInfo:
    id: MemberId
    address: str  # "host:port" where its group transport listens
    weight: int = 1
    arbitrator: bool = False  # votes, applies nothing, has no database


@dataclass(frozen=True)
class View:
    cluster_uuid: uuid.UUID
    conf_id: int
    members: tuple[MemberInfo, ...]
    primary: bool
    own_index: int  # index of this member in `members`, -1 if not a member


@dataclass(frozen=True)
class GroupConfig:
    member: MemberInfo
    seeds: tuple[str, ...] = ()  # addresses to join through ("gcomm://a:1,b:2" style)
    bootstrap: bool = False  # form a new cluster with a fresh cluster uuid
    cluster_uuid: uuid.UUID | None = None  # when set, refuse peers of any other cluster
    heartbeat_interval: float = 1.0  # Galera evs.keepalive_period
    suspect_timeout: float = 5.0  # Galera evs.suspect_timeout
    inactive_timeout: float = 15.0  # Galera evs.inactive_timeout: evict after this
    election_timeout: float = 3.0
    fc_limit: int = 16  # Galera gcs.fc_limit: pause the group when a queue passes this
    fc_factor: float = 1.0  # Galera gcs.fc_factor: resume below fc_limit * fc_factor
    max_payload: int = 64 << 20
    max_batch: int = 256  # payloads the orderer may pack in one round
    max_message_bytes: int = 1 << 20  # soft cap on one protocol message (one entry may exceed)


# ---- actions the core returns ----------------------------------------------------------


@dataclass(frozen=True)
class Send:
    to: MemberId
    data: bytes  # one encoded protocol message


@dataclass(frozen=True)
class Deliver:
    seqno: int
    origin: MemberId
    payload: bytes


@dataclass(frozen=True)
class ViewChange:
    view: View


@dataclass(frozen=True)
class Submitted:
    token: int  # returned by GroupMember.submit
    seqno: int | None  # global seqno when ordered
    error: str | None = None  # why it was not ordered (non-primary, evicted, ...)


@dataclass(frozen=True)
class FlowControl:
    paused: bool  # the group stopped/resumed taking new payloads


@dataclass(frozen=True)
class Connect:
    """Keep a connection to this member: it joined the configuration (or its address changed).

    The driver connects to `seeds` on its own; members it learns later come as `Connect`.
    """

    member: MemberInfo


@dataclass(frozen=True)
class Behind:
    """This member needs seqnos the group no longer holds in its log: a state transfer is due.

    `delivered_seqno` is the last seqno this member delivered, `oldest_seqno` the oldest
    seqno `donor` can still send from its log (IST); anything older needs a snapshot (SST).
    """

    delivered_seqno: int
    oldest_seqno: int
    donor: MemberId


Action = Send | Deliver | ViewChange | Submitted | FlowControl | Connect | Behind


@dataclass
class GroupStats:
    """Counters for `SHOW STATUS LIKE 'wsrep%'`."""

    replicated: int = 0
    replicated_bytes: int = 0
    received: int = 0
    received_bytes: int = 0
    flow_control_paused_seconds: float = 0.0
    flow_control_sent: int = 0
    flow_control_recv: int = 0
    dropped_messages: int = 0
    extra: dict[str, int] = field(default_factory=dict)
