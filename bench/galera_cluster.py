"""A real MariaDB Galera cluster on loopback: the comparison target of the cluster bench.

Debian's `galera-4` provider and the project's managed servers (`proxy/managed_mariadb.py`),
one data dir per node under one base dir, every address on 127.0.0.1 with free ports.

How the nodes get the same state without a slow full state transfer (SST): node 1 is
bootstrapped once alone (`--wsrep-new-cluster`), which gives its data dir a cluster UUID,
and stopped cleanly; its data dir is copied to the other nodes (the manual SST of Galera's
documentation). Node 1 then bootstraps again and nodes 2..N join from the same UUID, so
they only need an incremental transfer (IST) of the few configuration changes since. The
SST method is `mariabackup` (Debian package `mariadb-backup`): it works when the servers
run as root, which `rsync` does not (its daemon drops to `nobody`), and it is what a
joiner that cannot get IST falls back to.

    python bench/galera_cluster.py up --dir D [--nodes 3]   # returns when all are Synced
    python bench/galera_cluster.py down --dir D             # stops them by pid

As a library: `with GaleraCluster(base_dir) as cluster: cluster.nodes[0].connect()`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from proxy.managed_mariadb import MariaDBError, MariaDBServer, free_port

log = logging.getLogger("wsrep.bench.galera")

PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
SST_METHOD = "mariabackup"
STATE_FILE = "galera-cluster.json"
# Files that belong to one node's identity or its provider cache, never copied to another.
_NODE_OWN_FILES = ("gvwstate.dat", "galera.cache")


class GaleraError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodePorts:
    sql: int
    group: int  # gmcast.listen_addr
    ist: int
    sst: int

    @classmethod
    def allocate(cls, count: int) -> list[NodePorts]:
        """Ports for `count` nodes, all different (the kernel may hand out a port twice)."""
        ports: dict[int, None] = {}  # ordered set
        for _ in range(100 * count):
            ports[free_port()] = None
            if len(ports) == 4 * count:
                break
        else:
            raise GaleraError(f"could not find {4 * count} free ports")
        it = iter(ports)
        return [cls(*(next(it) for _ in range(4))) for _ in range(count)]


def wsrep_options(
    name: str,
    ports: NodePorts,
    peers: Sequence[int],
    *,
    appliers: int,
    new_cluster: bool = False,
) -> dict[str, str | bool | None]:
    """mariadbd options for one Galera node; `peers` are every node's group port."""
    provider = "; ".join(
        (
            f"gmcast.listen_addr=tcp://127.0.0.1:{ports.group}",
            f"ist.recv_addr=127.0.0.1:{ports.ist}",
            "gcache.size=256M",
            # The machine is a shared, overloaded 2-core VM where a process can stall for
            # seconds: Galera's defaults (suspect 5 s, inactive 15 s) then split the cluster
            # mid-bench. A bench measures throughput, not failure detection.
            "evs.suspect_timeout=PT30S",
            "evs.inactive_timeout=PT60S",
            "evs.install_timeout=PT30S",
        )
    )
    opts: dict[str, str | bool | None] = {
        # Debian's wsrep_sst_mariabackup hands mariadbd's --innodb-buffer-pool-size on to
        # mariadb-backup, which rejects it: leave it out (128M is the default anyway).
        "innodb-buffer-pool-size": False,
        "wsrep-on": "ON",
        "wsrep-provider": str(PROVIDER),
        "wsrep-cluster-name": "wsrep-bench-galera",
        "wsrep-cluster-address": "gcomm://" + ",".join(f"127.0.0.1:{p}" for p in peers),
        "wsrep-node-name": name,
        "wsrep-node-address": "127.0.0.1",
        "wsrep-node-incoming-address": f"127.0.0.1:{ports.sql}",
        "wsrep-provider-options": provider,
        "wsrep-sst-method": SST_METHOD,
        "wsrep-sst-auth": "root:",
        "wsrep-sst-receive-address": f"127.0.0.1:{ports.sst}",
        "wsrep-slave-threads": str(appliers),
        "binlog-format": "ROW",
        "innodb-autoinc-lock-mode": "2",
    }
    if new_cluster:
        opts["wsrep-new-cluster"] = None
    return opts


def wsrep_status(node: MariaDBServer) -> dict[str, str]:
    with node.connect(connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%'")
        return {str(k): str(v) for k, v in cur.fetchall()}


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run a Galera cluster (empty when it has everything)."""
    missing = []
    if not PROVIDER.exists():
        missing.append(f"galera-4 ({PROVIDER})")
    for tool, package in (("mariadb-backup", "mariadb-backup"), ("socat", "socat")):
        if shutil.which(tool) is None:
            missing.append(f"{package} ({tool})")
    return missing


@dataclass
class GaleraCluster:
    """`size` Galera nodes under `base_dir`; `start()` returns when all are Synced."""

    base_dir: Path
    size: int = 3
    appliers: int = 4
    detach: bool = False  # True: the servers outlive this process (the `up` command)
    nodes: list[MariaDBServer] = field(default_factory=list)

    def start(self, timeout: float = 180.0) -> None:
        missing = missing_prerequisites()
        if missing:
            raise GaleraError("cannot run a Galera cluster, missing: " + ", ".join(missing))
        deadline = time.monotonic() + timeout
        ports = NodePorts.allocate(self.size)
        peers = [p.group for p in ports]
        self.nodes = [
            MariaDBServer(
                self.base_dir / f"galera{i + 1}",
                name=f"galera{i + 1}",
                port=p.sql,
                options=wsrep_options(
                    f"galera{i + 1}", p, peers, appliers=self.appliers, new_cluster=i == 0
                ),
                die_with_parent=not self.detach,
            )
            for i, p in enumerate(ports)
        ]
        try:
            self._seed(deadline)
            for node in self.nodes:
                log.info("%s: starting on 127.0.0.1:%d", node.name, node.port)
                node.start(timeout=_left(deadline))
            self.wait_synced(_left(deadline))
        except BaseException:
            self.stop()
            raise
        self._write_state()
        log.info("galera cluster of %d synced: %s", self.size, self.addresses())

    def _seed(self, deadline: float) -> None:
        """Give every node node 1's data dir, with a cluster UUID, so joiners only need IST."""
        first = self.nodes[0]
        log.info("%s: bootstrapping once to create the cluster state", first.name)
        first.start(timeout=_left(deadline))
        first.stop()
        for node in self.nodes[1:]:
            shutil.rmtree(node.datadir, ignore_errors=True)
            node.base_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(
                first.datadir, node.datadir, ignore=shutil.ignore_patterns(*_NODE_OWN_FILES)
            )

    def wait_synced(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            for node in self.nodes:
                try:
                    st = wsrep_status(node)
                except pymysql.err.MySQLError as exc:
                    seen[node.name] = f"unreachable ({exc})"
                    continue
                seen[node.name] = (
                    f"{st.get('wsrep_local_state_comment')} size={st.get('wsrep_cluster_size')}"
                )
            if all(s == f"Synced size={self.size}" for s in seen.values()):
                return
            time.sleep(0.2)
        raise GaleraError(f"galera cluster not synced after {timeout:.0f}s: {seen}")

    def addresses(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.nodes]

    def stop(self) -> None:
        """Stop every node by pid, last joiner first, so no node waits for a lost quorum."""
        stopped = True
        for node in reversed(self.nodes):
            try:
                node.stop()
            except (OSError, MariaDBError):  # keep stopping the others
                log.exception("%s: stop failed", node.name)
                stopped = False
        if stopped:  # else keep the state, so that `down` can try again
            (self.base_dir / STATE_FILE).unlink(missing_ok=True)

    def _write_state(self) -> None:
        state = [{"name": n.name, "dir": str(n.base_dir), "port": n.port} for n in self.nodes]
        (self.base_dir / STATE_FILE).write_text(json.dumps(state, indent=1))

    @classmethod
    def from_state(cls, base_dir: Path) -> GaleraCluster:
        """The cluster an earlier `up` left running in `base_dir`."""
        state = json.loads((base_dir / STATE_FILE).read_text())
        nodes = [
            MariaDBServer(
                Path(n["dir"]), name=n["name"], port=int(n["port"]), die_with_parent=False
            )
            for n in state
        ]
        return cls(base_dir, size=len(nodes), detach=True, nodes=nodes)

    def __enter__(self) -> GaleraCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise GaleraError("galera cluster start timed out")
    return left


def _up(base_dir: Path, nodes: int, appliers: int) -> int:
    if (base_dir / STATE_FILE).exists():
        print(f"galera: a cluster is already up in {base_dir}: `down` it first", file=sys.stderr)
        return 1
    cluster = GaleraCluster(base_dir, size=nodes, appliers=appliers, detach=True)
    try:
        cluster.start()
    except (GaleraError, MariaDBError) as exc:
        print(f"galera: {exc}", file=sys.stderr)
        return 1
    for node in cluster.nodes:
        print(f"{node.name} {node.host}:{node.port}")
    return 0


def _down(base_dir: Path) -> int:
    try:
        cluster = GaleraCluster.from_state(base_dir)
    except FileNotFoundError:
        print(f"galera: no cluster state in {base_dir}", file=sys.stderr)
        return 1
    cluster.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, required=True, help="base dir of the nodes")
    parser.add_argument("--nodes", type=int, choices=range(1, 10), default=3, metavar="1..9")
    parser.add_argument(
        "--appliers",
        type=int,
        choices=range(1, 65),
        default=4,
        metavar="1..64",
        help="wsrep_slave_threads",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    base_dir = args.dir.resolve()
    return _up(base_dir, args.nodes, args.appliers) if args.action == "up" else _down(base_dir)


if __name__ == "__main__":
    sys.exit(main())
