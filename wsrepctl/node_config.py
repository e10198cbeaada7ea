"""A node's TOML config (stdlib `tomllib`), checked up front with clear messages.

[node]
name = "node1"                       # unique in the cluster (Galera wsrep_node_name)
proxy = "127.0.0.1:13306"            # where applications connect
health = "127.0.0.1:9200"            # optional: clustercheck-style HTTP health (200 Synced)
group = "127.0.0.1:14567"            # group transport listen address
peers = ["127.0.0.1:14568"]          # members to join through (wsrep_cluster_address)
weight = 1                           # pc.weight
secret_file = "secret"               # shared cluster secret (relative to this file)
appliers = 8                         # wsrep_slave_threads
init_sql = "init.sql"                # optional: run once on a fresh backend
sync_wait = 0                        # wsrep_sync_wait default for sessions (0..15; 1 = reads)
dirty_reads = false                  # wsrep_dirty_reads default: reads outside a primary component
auto_increment_control = true        # wsrep_auto_increment_control: increment = cluster size

[backend]                            # either a managed local MariaDB ...
managed_dir = "db"
# ... or an external server:  host = "127.0.0.1"  port = 3306  user = "root"  password = ""

[gcache]                             # the group log and Raft hard state (Galera gcache.*)
dir = "gcache"                       # gcache.dir, relative to this file (default: gcache)
size = "128M"                        # gcache.size: bytes, or with a K/M/G suffix
sync = true                          # fdatasync every log append batch (see docs/design/gcache.md)

[limits]                             # this node's own write sets, checked before ordering
max_ws_rows = 0                      # wsrep_max_ws_rows: rows changed; 0 = no limit (1180)
max_ws_size = 2147483647             # wsrep_max_ws_size: encoded bytes, or "64M" (1105);
                                     # the group's 64 MiB message limit applies too

[timeouts]                           # seconds
heartbeat = 1.0  suspect = 5.0  inactive = 15.0  election = 3.0
submit = 30.0  commit_turn = 5.0
causal_read = 30.0                   # repl.causal_read_timeout: a causal wait ends in 1205
not_ready_hold = 1.0                 # a statement just after the node lost its primary
                                     # component (a leader change) waits this long for it
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certification.limits import NO_LIMITS, WriteSetLimits
from wsrep import grastate
from wsrep.group.types import GroupConfig, MemberInfo
from wsrep.status import SYNC_WAIT_MAX
from wsrep.transport.address import parse_address


class NodeConfigError(ValueError):
    """The config file is missing, unreadable or wrong (the message says where)."""


GCACHE_SIZE = 128 << 20  # Galera's gcache.size default
MAX_WS_SIZE = NO_LIMITS.max_bytes  # Galera's wsrep_max_ws_size default
GCACHE_SYNC = True  # durable appends: see docs/design/gcache.md, "Durability policy"
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """Bytes from an int or Galera's size syntax ("128M", "1G"); ValueError if bad."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)B?\s*", str(text), re.IGNORECASE)
        if match is None:
            raise ValueError(f"invalid size {text!r} (bytes, or a number with K, M or G)")
        value = int(match[1]) * _SIZE_UNITS[match[2].upper()]
    if not 1 << 20 <= value <= 1 << 40:
        raise ValueError(f"size {text!r} must be between 1M and 1T")
    return value


@dataclass(frozen=True)
class BackendConfig:
    managed_dir: Path | None = None  # a managed mariadbd in this dir, else the external one
    host: str = "127.0.0.1"
    port: int = 0
    user: str = "root"
    password: str = ""


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    name: str
    proxy: tuple[str, int]
    group: str
    peers: tuple[str, ...]
    weight: int
    secret_file: Path
    appliers: int
    init_sql: Path | None
    backend: BackendConfig
    health: tuple[str, int] | None = None
    sync_wait: int = 0
    dirty_reads: bool = False
    auto_increment_control: bool = True
    heartbeat: float = GroupConfig.heartbeat_interval
    suspect: float = GroupConfig.suspect_timeout
    inactive: float = GroupConfig.inactive_timeout
    election: float = GroupConfig.election_timeout
    submit: float = 30.0
    commit_turn: float = 5.0
    causal_read: float = 30.0
    not_ready_hold: float = 1.0
    gcache_dir: Path | None = None  # default: <state dir>/gcache
    gcache_size: int = GCACHE_SIZE
    gcache_sync: bool = GCACHE_SYNC
    limits: WriteSetLimits = NO_LIMITS

    @property
    def state_dir(self) -> Path:
        """Where the node keeps its pid, status and logs: next to its config."""
        return self.path.parent

    @property
    def gcache_path(self) -> Path:
        return self.gcache_dir or self.state_dir / "gcache"

    @property
    def grastate_path(self) -> Path:
        return self.state_dir / grastate.FILE_NAME

    def group_config(self, bootstrap: bool) -> GroupConfig:
        return GroupConfig(
            member=MemberInfo(self.name, self.group, self.weight),
            seeds=self.peers,
            bootstrap=bootstrap,
            heartbeat_interval=self.heartbeat,
            suspect_timeout=self.suspect,
            inactive_timeout=self.inactive,
            election_timeout=self.election,
        )


_NODE_KEYS = {
    "name", "proxy", "health", "group", "peers", "weight", "secret_file", "appliers", "init_sql",
    "sync_wait", "dirty_reads", "auto_increment_control",
}  # fmt: skip
_BACKEND_KEYS = {"managed_dir", "host", "port", "user", "password"}
_GCACHE_KEYS = {"dir", "size", "sync"}
_TIMEOUT_KEYS = {
    "heartbeat", "suspect", "inactive", "election", "submit", "commit_turn", "causal_read",
    "not_ready_hold",
}  # fmt: skip


def load_node_config(path: Path) -> NodeConfig:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise NodeConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NodeConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_node_config(doc, path.resolve())


def parse_node_config(doc: dict[str, Any], path: Path) -> NodeConfig:
    base = path.parent
    node = _table(doc, "node", _NODE_KEYS, path)
    backend = _table(doc, "backend", _BACKEND_KEYS, path)
    timeouts = _table(doc, "timeouts", _TIMEOUT_KEYS, path)
    gcache = _table(doc, "gcache", _GCACHE_KEYS, path)
    limits = _table(doc, "limits", {"max_ws_rows", "max_ws_size"}, path)
    if unknown := set(doc) - {"node", "backend", "timeouts", "gcache", "limits"}:
        raise NodeConfigError(f"{path}: unknown section(s) {sorted(unknown)}")
    name = _get(node, "name", str, path)
    if not name or len(name.encode()) > 255:
        raise NodeConfigError(f"{path}: [node] name must be 1..255 bytes")
    proxy = _address(_get(node, "proxy", str, path), "proxy", path)
    health_text = _get(node, "health", str, path, "")
    health = _address(health_text, "health", path) if health_text else None
    group = _get(node, "group", str, path)
    _address(group, "group", path)
    peers = tuple(_get(node, "peers", list, path, []))
    for peer in peers:
        if not isinstance(peer, str):
            raise NodeConfigError(f"{path}: [node] peers must be strings, got {peer!r}")
        _address(peer, "peers", path)
    weight = _get(node, "weight", int, path, 1)
    appliers = _get(node, "appliers", int, path, 8)
    if weight < 0 or not 1 <= appliers <= 64:
        raise NodeConfigError(f"{path}: weight must be >= 0 and appliers 1..64")
    init_sql = _get(node, "init_sql", str, path, "")
    sync_wait = _get(node, "sync_wait", int, path, 0)
    if not 0 <= sync_wait <= SYNC_WAIT_MAX:
        raise NodeConfigError(f"{path}: [node] sync_wait must be in 0..{SYNC_WAIT_MAX}")
    managed = _get(backend, "managed_dir", str, path, "")
    backend_config = BackendConfig(
        managed_dir=base / managed if managed else None,
        host=_get(backend, "host", str, path, "127.0.0.1"),
        port=_get(backend, "port", int, path, 0),
        user=_get(backend, "user", str, path, "root"),
        password=_get(backend, "password", str, path, ""),
    )
    if not managed and not backend_config.port:
        raise NodeConfigError(f"{path}: [backend] needs managed_dir, or host and port")
    times = {key: _get(timeouts, key, (int, float), path, None) for key in _TIMEOUT_KEYS}
    for key, value in times.items():
        if value is not None and not 0 < value <= 3600:
            raise NodeConfigError(f"{path}: [timeouts] {key} must be in (0, 3600]")
    gcache_dir = _get(gcache, "dir", str, path, "")
    try:
        gcache_size = parse_size(_get(gcache, "size", (int, str), path, GCACHE_SIZE))
    except ValueError as exc:
        raise NodeConfigError(f"{path}: [gcache] {exc}") from None
    try:
        write_set_limits = WriteSetLimits(
            max_rows=_get(limits, "max_ws_rows", int, path, 0),
            max_bytes=parse_size(_get(limits, "max_ws_size", (int, str), path, MAX_WS_SIZE)),
        )
    except ValueError as exc:
        raise NodeConfigError(f"{path}: [limits] {exc}") from None
    return NodeConfig(
        path=path,
        name=name,
        proxy=proxy,
        group=group,
        peers=peers,
        weight=weight,
        secret_file=base / _get(node, "secret_file", str, path),
        appliers=appliers,
        init_sql=base / init_sql if init_sql else None,
        backend=backend_config,
        health=health,
        sync_wait=sync_wait,
        dirty_reads=_get(node, "dirty_reads", bool, path, False),
        auto_increment_control=_get(node, "auto_increment_control", bool, path, True),
        gcache_dir=base / gcache_dir if gcache_dir else None,
        gcache_size=gcache_size,
        gcache_sync=_get(gcache, "sync", bool, path, GCACHE_SYNC),
        limits=write_set_limits,
        **{key: float(value) for key, value in times.items() if value is not None},
    )


def _table(doc: dict[str, Any], name: str, keys: set[str], path: Path) -> dict[str, Any]:
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise NodeConfigError(f"{path}: [{name}] must be a table")
    if unknown := set(table) - keys:
        raise NodeConfigError(f"{path}: [{name}] unknown key(s) {sorted(unknown)}")
    return table


_MISSING = object()


def _get(table: dict[str, Any], key: str, kind: Any, path: Path, default: Any = _MISSING) -> Any:
    if key not in table:
        if default is _MISSING:
            raise NodeConfigError(f"{path}: missing required key {key!r}")
        return default
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise NodeConfigError(f"{path}: {key} has the wrong type ({type(value).__name__})")
    return value


def _address(text: str, key: str, path: Path) -> tuple[str, int]:
    try:
        host, port = parse_address(text)
    except ValueError as exc:
        raise NodeConfigError(f"{path}: {key}: {exc}") from None
    return host, port
