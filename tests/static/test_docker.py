"""Static checks of docker/: no Docker engine runs here, so these files are checked as text
against the repository and the real `wsrepctl` argument parser."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from wsrepctl.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yml"


def _instructions(name: str) -> list[list[str]]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    return [ln.split()[1:] for ln in lines if ln.split()[:1] == [name]]


def _compose_value(key: str) -> str:
    match = re.search(rf"^\s+{key}:\s*(.+)$", COMPOSE.read_text(), re.MULTILINE)
    assert match, f"compose.yml has no {key}"
    return match.group(1).strip()


def test_dockerfile_copies_existing_sources_and_every_package() -> None:
    copied: set[str] = set()
    for args in _instructions("COPY"):
        *sources, _dest = args
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the build context"
            copied.add(src)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    (entry,) = _instructions("ENTRYPOINT")
    assert json.loads(" ".join(entry)) == ["wsrepctl"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "wsrepctl" in pyproject["project"]["scripts"]


def test_compose_builds_this_dockerfile_and_runs_a_real_subcommand() -> None:
    assert _compose_value("dockerfile") == "docker/Dockerfile"
    assert (COMPOSE.parent / _compose_value("context")).resolve() == ROOT
    command = json.loads(_compose_value("command"))
    args = build_parser().parse_args(command)  # exits (fails the test) on a wrong command
    assert callable(args.func)


def test_compose_publishes_the_port_the_proxy_listens_on() -> None:
    command = json.loads(_compose_value("command"))
    listen_port = command[command.index("--listen") + 1].rsplit(":", 1)[1]
    published = re.findall(r'-\s*"(\d+):(\d+)"', COMPOSE.read_text())
    assert any(inner == listen_port for _outer, inner in published)
    (exposed,) = _instructions("EXPOSE")
    assert listen_port in exposed
