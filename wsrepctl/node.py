"""A node: managed (or external) MariaDB, capture, the provider, appliers and the proxy.

`run_node(config, bootstrap)` is what `wsrepctl bootstrap|join` run. Start-up order: the
backend; `init_sql` once on a fresh backend (joiners start from the same initial data:
there is no state transfer yet); capture installed on every table; then the group, the
provider, the appliers and last the proxy, so no client write can go uncaptured. The node
writes `status.json` next to its config twice a second (what `wsrepctl status` and
`cluster up --detach` read) and `node.pid` while it runs. Its group log and term/vote live
in `<state dir>/gcache` (so a restarted node never votes twice in a term), and
`grastate.dat` says `seqno: -1` while it runs and the committed position after a clean stop.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from proxy.admission import NodeAdmission, SessionSettings
from proxy.auto_increment import AutoIncrementControl
from proxy.backend_client import BackendClient
from proxy.capture import Catalog, Position, install, read_position
from proxy.health import HealthConfig, serve_health
from proxy.managed_mariadb import MariaDBServer
from proxy.replication import Appliers, Replication
from proxy.server import ProxyConfig, serve_proxy
from proxy.wsrep_status import status_interceptor
from wsrep import grastate
from wsrep.gcache import GCache, GCacheError
from wsrep.group_node import open_group_node
from wsrep.provider import Provider
from wsrep.status import NodeStatus, NodeVariables
from wsrepctl.cmd_group_member import open_gcache, read_secret
from wsrepctl.node_config import NodeConfig
from wsrepctl.profiling import profiled

log = logging.getLogger("wsrep.node")

STATUS_INTERVAL = 0.5
GCACHE_HOLD_INTERVAL = 0.5


class NodeError(RuntimeError):
    """The node cannot start (the message says why)."""


def status_path(state_dir: Path) -> Path:
    return state_dir / "status.json"


async def _stop_with_owner(name: str, pid: int, scope: trio.CancelScope) -> None:
    """`--owner-pid`: a clean stop once that process is gone (a test run killed before its
    `cluster down`, the shell of a script), as if it had sent SIGTERM."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    if fd >= 0:
        try:
            await trio.lowlevel.wait_readable(fd)  # a pidfd turns readable when it exits
        finally:
            os.close(fd)
    log.info("%s: owner process %d is gone: leaving", name, pid)
    scope.cancel()


def pid_path(state_dir: Path) -> Path:
    return state_dir / "node.pid"


def run_node(config: NodeConfig, bootstrap: bool, owner_pid: int | None = None) -> None:
    """Run until SIGTERM/SIGINT (or until process `owner_pid` exits); the managed backend
    is stopped on the way out (and dies with this process if it is killed)."""
    secret = read_secret(str(config.secret_file))
    try:  # first: a second process on this state dir is refused before it touches anything
        gcache = open_gcache(config.gcache_path, config.gcache_size, config.gcache_sync)
    except GCacheError as exc:
        raise NodeError(f"{config.name}: {exc}") from None
    server = None
    backend = config.backend
    host, port = backend.host, backend.port
    try:
        _check_grastate(config, bootstrap)
        if backend.managed_dir is not None:
            server = MariaDBServer(backend.managed_dir, name=config.name, port=backend.port)
            server.start()
            host, port = server.host, server.port
        pid_path(config.state_dir).write_text(f"{os.getpid()}\n")
        with profiled(config.state_dir):
            trio.run(_serve, config, bootstrap, secret, host, port, gcache, owner_pid)
    finally:
        gcache.close()
        _write_status(config.state_dir, {"name": config.name, "state": "CLOSED", "ready": False})
        if server is not None:
            log.info("%s: stopping MariaDB (pid %s)", config.name, server.pid)
            server.stop()
        with contextlib.suppress(FileNotFoundError):
            pid_path(config.state_dir).unlink()


def _check_grastate(config: NodeConfig, bootstrap: bool) -> None:
    """Before anything is touched: a readable grastate.dat, and Galera's safe_to_bootstrap."""
    try:
        saved = grastate.read(config.grastate_path)
    except grastate.GraStateError as exc:
        raise NodeError(f"{config.name}: {exc}: fix or remove it") from None
    if bootstrap:
        try:
            grastate.check_bootstrap(saved, str(config.grastate_path))
        except grastate.UnsafeBootstrap as exc:
            raise NodeError(f"{config.name}: {exc}") from None


def _gcache_delivered_seqno(gcache: GCache) -> int:
    """The last payload seqno this member's group log handed out (0: none)."""
    delivered = gcache.hard_state().delivered
    base = gcache.base()[0]
    if base is not None and base.index >= delivered:
        return base.seqno
    return gcache.entry(delivered).seqno if delivered else 0


async def prepare_backend(admin: BackendClient, config: NodeConfig, gcache: GCache) -> Catalog:
    """Initial data on a fresh backend, then capture on every table."""
    fresh = not (
        await admin.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'wsrep'")
    ).rows
    if fresh and config.init_sql is not None:
        log.info("%s: loading initial data from %s", config.name, config.init_sql)
        await admin.query_all(config.init_sql.read_text())
    catalog = await install(admin)
    position = await read_position(admin)
    if position.seqno > 0:
        raise NodeError(
            f"{config.name}: the backend is at {position}; rejoining with data needs a state "
            "transfer, which does not exist yet: start from a fresh data dir"
        )
    delivered = _gcache_delivered_seqno(gcache)
    if delivered > 0:
        # the group would go on after `delivered`: the backend would miss 1..delivered
        raise NodeError(
            f"{config.name}: gcache {gcache.path} has delivered up to seqno {delivered} "
            f"but the backend is at {position}: it belongs to this node's previous data; "
            "rejoining needs a state transfer, which does not exist yet"
        )
    return catalog


async def _serve(
    config: NodeConfig,
    bootstrap: bool,
    secret: bytes,
    host: str,
    port: int,
    gcache: GCache,
    owner_pid: int | None,
) -> None:
    user, password = config.backend.user, config.backend.password
    async with await BackendClient.connect(host, port, user, password) as admin:
        catalog = await prepare_backend(admin, config, gcache)
    # Galera's `seqno: -1` while running (a crash leaves it so); a refused start keeps the file
    cluster = gcache.hard_state().cluster_uuid or grastate.NIL_UUID
    grastate.write(config.grastate_path, grastate.GraState(cluster).running())
    connect = functools.partial(BackendClient.connect, host, port, user, password)
    appliers = Appliers(connect, config.appliers)
    gcache.purge_floor = gcache.last_index() + 1  # nothing new is committed yet
    group_config = config.group_config(bootstrap)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with (
            open_group_node(
                group_config, gcache, secret, submit_timeout=config.submit, leave_on_exit=True
            ) as group,
            trio.open_nursery() as nursery,
        ):
            provider = Provider(group, appliers.enqueue, limits=config.limits)
            provider.not_ready_hold = config.not_ready_hold
            appliers.attach(provider)
            replication = Replication(provider, appliers, catalog, config.commit_turn)
            await nursery.start(provider.run)
            await nursery.start(replication.isolation.run)
            await nursery.start(provider.causal.run)
            await nursery.start(appliers.run)
            variables = NodeVariables(
                node_name=config.name,
                cluster_address="gcomm://" + ",".join(config.peers),
                node_address=config.group,
                node_incoming_address=f"{config.proxy[0]}:{config.proxy[1]}",
                slave_threads=config.appliers,
                sync_wait=config.sync_wait,
                dirty_reads=config.dirty_reads,
                auto_increment_control=config.auto_increment_control,
                max_ws_rows=config.limits.max_rows,
                max_ws_size=config.limits.max_bytes,
            ).system_variables()
            interceptor = status_interceptor(
                lambda: node_snapshot(config, provider), lambda _session: variables
            )
            admission = await _start_admission(config, provider, interceptor, connect, nursery)
            proxy = ProxyConfig(
                listen_host=config.proxy[0],
                listen_port=config.proxy[1],
                backend_host=host,
                backend_port=port,
                commit_hook=replication,
                interceptor=interceptor,
                admission=admission,
            )
            await nursery.start(serve_proxy, proxy)
            if config.health is not None:
                health = HealthConfig(host=config.health[0], port=config.health[1])
                await nursery.start(serve_health, lambda: node_snapshot(config, provider), health)
            nursery.start_soon(_report_status, config, provider, f"{host}:{port}")
            nursery.start_soon(_hold_gcache, gcache, provider)
            if owner_pid is not None:
                nursery.start_soon(_stop_with_owner, config.name, owner_pid, nursery.cancel_scope)
            log.info(
                "%s: node up (%s), proxy on %s:%d, backend %s:%d, group %s",
                config.name,
                "bootstrap" if bootstrap else "join",
                *config.proxy,
                host,
                port,
                config.group,
            )
            async for signum in signals:
                log.info("%s: %s: leaving", config.name, signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    # a clean stop: the position the backend committed (appliers and clients are stopped)
    view = provider.view
    last_in_primary = view is not None and view.primary and len(view.members) == 1
    async with await BackendClient.connect(host, port, user, password) as admin:
        position = await read_position(admin)
    saved = grastate.clean_shutdown(_cluster_uuid(position), position.seqno, last_in_primary)
    grastate.write(config.grastate_path, saved)
    log.info("%s: stopped at %s, safe_to_bootstrap %d", config.name, position, last_in_primary)


def _cluster_uuid(position: Position) -> uuid.UUID:
    try:
        return uuid.UUID(position.cluster_uuid)
    except ValueError:
        return grastate.NIL_UUID


async def _hold_gcache(gcache: GCache, provider: Provider) -> None:
    """Galera's seqno_release: the gcache may purge only what the backend has committed
    (delivered is ahead of it), so a restart can resume from the backend's position."""
    while True:
        try:
            gcache.purge_floor = gcache.index_of_seqno(provider.gate.last_committed + 1)
        except KeyError:  # not delivered yet: everything held is committed
            gcache.purge_floor = gcache.last_index() + 1
        await trio.sleep(GCACHE_HOLD_INTERVAL)


async def _start_admission(
    config: NodeConfig,
    provider: Provider,
    settings: SessionSettings,
    connect: Callable[[], Awaitable[BackendClient]],
    nursery: trio.Nursery,
) -> NodeAdmission:
    """Admission (1047, causal reads) and auto-increment control, following every view."""
    control = None
    if config.auto_increment_control:
        control = AutoIncrementControl(lambda: provider.view, connect, config.name)
        provider.state_listeners.append(control.view_changed)
        control.view_changed()  # the view that may have come already
        await nursery.start(control.run)
    admission = NodeAdmission(
        lambda: provider.ready,
        settings,
        provider.causal.seqno,
        provider.gate,
        config.causal_read,
        auto_increment=control,
        not_ready_hold=config.not_ready_hold,
    )
    provider.state_listeners.append(admission.changed)
    return admission


def node_snapshot(config: NodeConfig, provider: Provider) -> NodeStatus:
    """The provider's state under Galera's names: for SHOW STATUS and status.json."""
    view = provider.view
    stats = provider.stats
    group = provider.group.stats
    if view is None:
        cluster_status = "Disconnected"
    else:
        cluster_status = "Primary" if view.primary else "non-Primary"
    return NodeStatus(
        node_name=config.name,
        state=provider.state,
        cluster_status=cluster_status,
        connected=view is not None,
        ready=provider.ready,
        cluster_state_uuid=str(view.cluster_uuid) if view else "",
        cluster_conf_id=view.conf_id if view else -1,
        cluster_size=len(view.members) if view else 0,
        local_index=view.own_index if view else -1,
        gcomm_uuid=config.name,
        last_committed=provider.gate.last_committed,
        replicated=stats.replicated,
        replicated_bytes=stats.replicated_bytes,
        received=stats.received,
        local_commits=stats.local_commits,
        local_cert_failures=stats.local_cert_failures,
        local_bf_aborts=stats.local_bf_aborts,
        local_recv_queue=provider.local_recv_queue,
        flow_control_sent=group.flow_control_sent,
        flow_control_recv=group.flow_control_recv,
        cert_index_size=provider.core.index.stats.index_size,
        causal_reads=provider.causal.calls,
        applier_thread_count=config.appliers,
        inconsistency=provider.inconsistency,
    )


_STATUS_FILE_FIELDS = (
    "local_state", "local_state_comment", "ready", "cluster_state_uuid", "cluster_conf_id",
    "cluster_size", "cluster_status", "last_committed", "replicated", "replicated_bytes",
    "received", "local_commits", "local_cert_failures", "local_bf_aborts", "cert_index_size",
    "local_recv_queue", "flow_control_sent", "flow_control_recv",
)  # fmt: skip


def node_status(config: NodeConfig, provider: Provider, backend: str) -> dict[str, Any]:
    """status.json: the snapshot's Galera names plus where the node runs."""
    snap = node_snapshot(config, provider)
    view = provider.view
    doc: dict[str, Any] = {
        "name": config.name,
        "pid": os.getpid(),
        "time": time.time(),
        "proxy": f"{config.proxy[0]}:{config.proxy[1]}",
        "backend": backend,
        "state": provider.state.name,
        "members": [m.id for m in view.members] if view else [],
    }
    doc.update({name: getattr(snap, name) for name in _STATUS_FILE_FIELDS})
    doc["toi_inconsistencies"] = provider.stats.toi_inconsistencies
    doc["cluster_state_uuid"] = doc["cluster_state_uuid"] or None
    return doc


async def _report_status(config: NodeConfig, provider: Provider, backend: str) -> None:
    while True:
        _write_status(config.state_dir, node_status(config, provider, backend))
        await trio.sleep(STATUS_INTERVAL)


def _write_status(state_dir: Path, doc: dict[str, Any]) -> None:
    """Atomically (rename), so readers never see half a file."""
    tmp = status_path(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True) + "\n")
    tmp.replace(status_path(state_dir))
