"""Static checks of docker/cluster/ (3 nodes behind HAProxy): the node configs load with the
node's own config parser, the compose commands parse with the real `wsrepctl` parser, the
nodes find each other, and HAProxy checks every node's health endpoint and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wsrepctl.cli import build_parser
from wsrepctl.node_config import NodeConfig, load_node_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "docker" / "cluster"
COMPOSE = (CLUSTER / "compose.yml").read_text()
HAPROXY = (CLUSTER / "haproxy.cfg").read_text()
NODES = ("node1", "node2", "node3")


def _service(name: str) -> str:
    """The text of one service block of compose.yml (two-space indented keys)."""
    match = re.search(rf"^  {name}:\n((?:    .*\n|\s*\n)+)", COMPOSE, re.MULTILINE)
    assert match, f"compose.yml has no service {name}"
    return match.group(1)


def _config(name: str) -> NodeConfig:
    return load_node_config(CLUSTER / f"{name}.toml")


@pytest.mark.parametrize("name", NODES)
def test_each_node_runs_its_own_config_with_a_real_subcommand(name: str) -> None:
    service = _service(name)
    found = re.search(r"command: (\[.*\])", service)
    assert found, f"{name} has no command"
    command = json.loads(found.group(1))
    args = build_parser().parse_args(command)
    assert callable(args.func)
    mounted = re.search(r'"\./(node\d\.toml):(\S+):ro"', service)
    assert mounted, f"{name} mounts no node config"
    assert mounted.group(1) == f"{name}.toml"
    assert command[command.index("--config") + 1] == mounted.group(2)
    # The config's directory is the node's state dir (status, gcache, data): not read-only.
    assert mounted.group(2).startswith("/var/lib/")
    assert command[0] == ("bootstrap" if name == "node1" else "join")
    assert _config(name).name == name


def test_nodes_find_each_other_and_share_one_secret() -> None:
    configs = {name: _config(name) for name in NODES}
    groups = {c.group for c in configs.values()}
    assert len(groups) == len(NODES)
    assert configs["node1"].peers == ()  # it bootstraps
    for name in NODES[1:]:
        peers = set(configs[name].peers)
        assert configs["node1"].group in peers
        assert peers <= groups - {configs[name].group}
    for name, config in configs.items():
        assert config.group.split(":")[0] == name  # reachable by its service name
    (secret,) = {c.secret_file for c in configs.values()}
    assert secret.parent == Path("/run/secrets")  # a compose secret, not in the image
    assert re.search(rf"^  {secret.name}:\n    file: ", COMPOSE, re.MULTILINE)


def test_haproxy_sends_clients_only_to_nodes_whose_health_endpoint_says_synced() -> None:
    servers = re.findall(r"^\s+server (\S+) (\S+):(\d+)", HAPROXY, re.MULTILINE)
    assert sorted(s[0] for s in servers) == list(NODES)
    check_port = re.search(r"default-server check port (\d+)", HAPROXY)
    assert check_port
    assert "option httpchk" in HAPROXY and "http-check expect status 200" in HAPROXY
    assert "on-marked-down shutdown-sessions" in HAPROXY  # a minority's clients are cut off
    for name, host, port in servers:
        config = _config(name)
        assert host == name
        assert config.proxy[1] == int(port)
        assert config.health is not None and config.health[1] == int(check_port.group(1))
    frontend = re.search(r"^\s+bind :(\d+)", HAPROXY, re.MULTILINE)
    assert frontend and f'"{frontend.group(1)}:{frontend.group(1)}"' in _service("haproxy")


def test_the_healthcheck_asks_the_node_health_port() -> None:
    health = _config("node1").health
    assert health is not None
    assert f"http://127.0.0.1:{health[1]}/" in COMPOSE
