"""Node TOML configs: good ones load, bad ones give a clear error naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsrepctl.node_config import NodeConfigError, load_node_config

GOOD = """
[node]
name = "node1"
proxy = "127.0.0.1:13306"
group = "127.0.0.1:14567"
peers = ["127.0.0.1:14568", "127.0.0.1:14569"]
secret_file = "secret"
appliers = 2
init_sql = "init.sql"

[backend]
managed_dir = "db"

[timeouts]
suspect = 2
commit_turn = 1.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_good_config(tmp_path: Path) -> None:
    config = load_node_config(write(tmp_path, GOOD))
    assert config.name == "node1" and config.proxy == ("127.0.0.1", 13306)
    assert config.peers == ("127.0.0.1:14568", "127.0.0.1:14569")
    assert config.backend.managed_dir == tmp_path.resolve() / "db"
    assert config.secret_file == tmp_path.resolve() / "secret"
    assert config.suspect == 2.0 and config.commit_turn == 1.5 and config.appliers == 2
    assert (config.sync_wait, config.dirty_reads, config.auto_increment_control) == (0, False, True)
    assert config.causal_read == 30.0 and config.not_ready_hold == 1.0
    group = config.group_config(bootstrap=True)
    assert group.bootstrap and group.member.id == "node1" and group.suspect_timeout == 2.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('name = "node1"', "name = 7"), "name has the wrong type"),
        (('proxy = "127.0.0.1:13306"', 'proxy = "nowhere"'), "proxy"),
        (('group = "127.0.0.1:14567"', 'group = "127.0.0.1:99999"'), "bad port"),
        (("appliers = 2", "appliers = 0"), "appliers 1..64"),
        (("appliers = 2", "appliers = true"), "wrong type"),
        (('managed_dir = "db"', "nonsense = 1"), "unknown key"),
        (('managed_dir = "db"', ""), "needs managed_dir"),
        (("suspect = 2", "suspect = -1"), "suspect must be"),
        (("[timeouts]", "[surprise]"), "unknown section"),
        (('secret_file = "secret"\n', ""), "missing required key 'secret_file'"),
        (("peers = [", "peers = [1, "), "peers must be strings"),
        (("appliers = 2", "appliers = 2\nsync_wait = 16"), "sync_wait must be in 0..15"),
        (("appliers = 2", "appliers = 2\ndirty_reads = 1"), "dirty_reads has the wrong type"),
        (("appliers = 2", 'appliers = 2\nauto_increment_control = "on"'), "wrong type"),
        (("suspect = 2", "causal_read = 0"), "causal_read must be"),
        (("[node]", "[node"), "not valid TOML"),
        (("[timeouts]", "[limits]\nmax_ws_rows = -1\n[timeouts]"), "max_rows must be >= 0"),
        (("[timeouts]", '[limits]\nmax_ws_size = "lots"\n[timeouts]'), r"\[limits\] invalid size"),
        (("[timeouts]", "[limits]\nmax_ws_sizes = 1\n[timeouts]"), "unknown key"),
    ],
)
def test_bad_configs_say_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(NodeConfigError, match=message):
        load_node_config(write(tmp_path, GOOD.replace(old, new, 1)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NodeConfigError, match="No such file"):
        load_node_config(tmp_path / "absent.toml")


def test_admission_keys(tmp_path: Path) -> None:
    text = GOOD.replace(
        "appliers = 2",
        "appliers = 2\nsync_wait = 3\ndirty_reads = true\nauto_increment_control = false",
    ).replace("suspect = 2", "suspect = 2\ncausal_read = 2.5\nnot_ready_hold = 0.25")
    config = load_node_config(write(tmp_path, text))
    assert (config.sync_wait, config.dirty_reads, config.auto_increment_control) == (3, True, False)
    assert (config.causal_read, config.not_ready_hold) == (2.5, 0.25)


def test_write_set_limits(tmp_path: Path) -> None:
    assert load_node_config(write(tmp_path, GOOD)).limits.max_rows == 0  # Galera: no limit
    text = GOOD.replace("[timeouts]", '[limits]\nmax_ws_rows = 5\nmax_ws_size = "2M"\n[timeouts]')
    limits = load_node_config(write(tmp_path, text)).limits
    assert (limits.max_rows, limits.max_bytes) == (5, 2 << 20)
