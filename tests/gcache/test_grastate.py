"""grastate.dat: Galera's format, atomic replacement, clear errors for anything else."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsrep import grastate
from wsrep.grastate import GraState, GraStateError

CLUSTER = uuid.UUID("6b6a8e2c-3d6e-11ee-8000-0242ac120002")


def test_format_is_galeras() -> None:
    assert GraState(CLUSTER, -1, False).format() == (
        "# GALERA saved state\n"
        "version: 2.1\n"
        "uuid:    6b6a8e2c-3d6e-11ee-8000-0242ac120002\n"
        "seqno:   -1\n"
        "safe_to_bootstrap: 0\n"
    )


def test_lifecycle_running_then_clean_shutdown(tmp_path: Path) -> None:
    path = tmp_path / grastate.FILE_NAME
    assert grastate.read(path) is None  # never started
    grastate.write(path, GraState(CLUSTER, 42, True).running())
    assert grastate.read(path) == GraState(CLUSTER, -1, False)
    grastate.write(path, grastate.clean_shutdown(CLUSTER, 57, last_in_primary=True))
    assert grastate.read(path) == GraState(CLUSTER, 57, True)
    assert [p.name for p in tmp_path.iterdir()] == [grastate.FILE_NAME]  # no temp file left


def test_reads_a_file_written_by_galera() -> None:
    text = (
        "# GALERA saved state\nversion: 2.1\nuuid:    438f1f9f-6b1a-11e7-8ee6-b772e69ca864\n"
        "seqno:   -1\ncert_index:\nsafe_to_bootstrap: 1\n"
    )
    assert grastate.parse(text) == GraState(
        uuid.UUID("438f1f9f-6b1a-11e7-8ee6-b772e69ca864"), -1, True
    )


def test_before_safe_to_bootstrap_existed_a_file_means_safe() -> None:
    text = f"version: 2.1\nuuid: {CLUSTER}\nseqno: 10\n"
    assert grastate.parse(text).safe_to_bootstrap


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2.1\nuuid: nope\nseqno: 1\n", "x.dat:2: invalid uuid 'nope'"),
        (f"version: 2.1\nuuid: {CLUSTER}\nseqno: 1.5\n", "x.dat:3: invalid seqno '1.5'"),
        (f"version: 2.1\nuuid: {CLUSTER}\nseqno: 1_0\n", "x.dat:3: invalid seqno '1_0'"),
        (f"version: 2.1\nuuid: {CLUSTER}\nseqno: -2\n", "x.dat:3: seqno -2 out of range"),
        (f"version: 2.1\nuuid: {CLUSTER}\nseqno: {2**63}\n", "out of range"),
        (f"version: 3.0\nuuid: {CLUSTER}\nseqno: 1\n", "x.dat:1: unsupported version '3.0'"),
        (f"version: 2.1\nuuid: {CLUSTER}\n", "x.dat: no 'seqno:' line"),
        (f"version: 2.1\nuuid {CLUSTER}\n", "x.dat:2: expected 'key: value'"),
        (
            f"version: 2.1\nuuid: {CLUSTER}\nseqno: 1\nsafe_to_bootstrap: yes\n",
            "x.dat:4: safe_to_bootstrap must be 0 or 1",
        ),
    ],
)
def test_parse_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(GraStateError, match=message.replace("(", r"\(").replace(".", r"\.")):
        grastate.parse(text, "x.dat")


def test_binary_and_huge_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / grastate.FILE_NAME
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(GraStateError, match="not ASCII"):
        grastate.read(path)
    path.write_bytes(b"#" * (1 << 20))
    with pytest.raises(GraStateError, match="larger than"):
        grastate.read(path)


@given(st.uuids(), st.integers(-1, 2**63 - 1), st.booleans())
def test_round_trip(cluster: uuid.UUID, seqno: int, safe: bool) -> None:
    state = GraState(cluster, seqno, safe)
    assert grastate.parse(state.format()) == state


KEYS = st.sampled_from(("version", "uuid", "seqno", "safe_to_bootstrap", "other", ""))
VALUES = st.one_of(st.text(max_size=40), st.sampled_from(("2.1", str(CLUSTER), "-1", "1", "0")))


@given(st.one_of(st.text(max_size=200), st.lists(st.tuples(KEYS, VALUES), max_size=8)))
def test_any_text_parses_or_raises_grastate_error(text: str | list[tuple[str, str]]) -> None:
    if isinstance(text, list):
        text = "\n".join(f"{k}: {v}" for k, v in text)
    with contextlib.suppress(GraStateError):
        state = grastate.parse(text)
        assert grastate.parse(state.format()) == state


def test_bootstrap_is_refused_unless_the_node_left_the_primary_component_last() -> None:
    grastate.check_bootstrap(None)  # never started
    grastate.check_bootstrap(GraState())  # started, never in a cluster
    grastate.check_bootstrap(GraState(CLUSTER, 57, True))  # left last
    for state in (GraState(CLUSTER, 57, False), GraState(CLUSTER, -1, False)):  # left, crashed
        with pytest.raises(grastate.UnsafeBootstrap) as refused:
            grastate.check_bootstrap(state, "/x/grastate.dat")
        assert str(refused.value).startswith("/x/grastate.dat: safe_to_bootstrap: 0. ")
        assert grastate.UNSAFE_BOOTSTRAP in str(refused.value)
