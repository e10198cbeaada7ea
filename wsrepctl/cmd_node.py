"""`wsrepctl bootstrap|join --config F`: run a node; `wsrepctl status`: show nodes.

`bootstrap` forms a new cluster (Galera's `--wsrep-new-cluster`), `join` joins through the
config's peers. `status --config F` shows one node, `status --dir DIR` every node of a
`cluster up` directory; `--json` prints the status documents the nodes write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from proxy.managed_mariadb import process_alive
from wsrep import grastate
from wsrepctl.node_config import NodeConfigError, load_node_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text in (
        ("bootstrap", "start the first node of a new cluster"),
        ("join", "start a node that joins a cluster through its peers"),
    ):
        parser = subparsers.add_parser(name, help=text)
        parser.add_argument("--config", type=Path, required=True, help="node TOML file")
        parser.add_argument(
            "--owner-pid", type=int, help="stop cleanly when this process exits (tests, scripts)"
        )
        parser.set_defaults(func=_run, bootstrap=name == "bootstrap")
    status = subparsers.add_parser("status", help="show a node or a local cluster")
    where = status.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="node TOML file")
    where.add_argument("--dir", type=Path, help="a `cluster up` directory")
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.set_defaults(func=_status)


def _run(args: argparse.Namespace) -> int:
    from wsrepctl.node import NodeError, run_node  # the node pulls in proxy and wsrep

    try:
        config = load_node_config(args.config)
        run_node(config, args.bootstrap, args.owner_pid)
    except (NodeConfigError, NodeError, OSError) as exc:
        print(f"wsrepctl {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """A node's last status, or None if it is not running."""
    try:
        doc: dict[str, Any] = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return None
    pid = doc.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        return None
    return doc


def _status(args: argparse.Namespace) -> int:
    if args.config is not None:
        try:
            dirs = [load_node_config(args.config).state_dir]
        except NodeConfigError as exc:
            print(f"wsrepctl status: {exc}", file=sys.stderr)
            return 2
    else:
        dirs = sorted(p.parent for p in args.dir.glob("*/node.toml"))
    dirs_by_name = {d.name: d for d in dirs}
    docs = {d.name: read_status(d) for d in dirs}
    if args.json:
        print(json.dumps(docs, indent=2, sort_keys=True))
    else:
        for name, doc in docs.items():
            if doc is None:
                print(f"{name}: not running{_saved_position(dirs_by_name[name])}")
                continue
            print(
                f"{doc['name']}: {doc['local_state_comment']} ({doc['state']}), "
                f"proxy {doc['proxy']}, cluster {doc['cluster_status']} size "
                f"{doc['cluster_size']}, last committed {doc['last_committed']}, "
                f"cert failures {doc['local_cert_failures']}"
            )
    return 0 if docs and all(d is not None and d.get("ready") for d in docs.values()) else 1


def _saved_position(state_dir: Path) -> str:
    """What grastate.dat says of a stopped node (seqno -1: it did not stop cleanly)."""
    try:
        saved = grastate.read(state_dir / grastate.FILE_NAME)
    except grastate.GraStateError as exc:
        return f" ({exc})"
    if saved is None:
        return ""
    return (
        f" (grastate.dat: {saved.cluster_uuid}:{saved.seqno}, "
        f"safe_to_bootstrap {int(saved.safe_to_bootstrap)})"
    )
