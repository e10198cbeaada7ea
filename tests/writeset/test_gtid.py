from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsrep.gtid import SEQNO_MAX, SEQNO_UNDEFINED, Gtid, GtidError

CLUSTER = uuid.UUID("6b6a8e2c-3d6e-11ee-8000-0242ac120002")


@given(st.uuids(), st.integers(SEQNO_UNDEFINED, SEQNO_MAX))
def test_text_form_round_trips(cluster: uuid.UUID, seqno: int) -> None:
    gtid = Gtid(cluster, seqno)
    assert Gtid.parse(str(gtid)) == gtid


def test_galera_text_form() -> None:
    gtid = Gtid.parse("6B6A8E2C-3D6E-11EE-8000-0242AC120002:42")
    assert gtid == Gtid(CLUSTER, 42)
    assert str(gtid) == "6b6a8e2c-3d6e-11ee-8000-0242ac120002:42"
    assert gtid.defined
    assert not Gtid.parse(f"{CLUSTER}:-1").defined


@pytest.mark.parametrize(
    "text",
    [
        "",
        "42",
        f"{CLUSTER}",
        f"{CLUSTER}:",
        f"{CLUSTER}:x",
        f"{CLUSTER}:-2",
        f"{CLUSTER}:+1",
        f"{CLUSTER}:007",
        f"{CLUSTER}: 1",
        f"{CLUSTER}:1\n",
        f"{CLUSTER}:9223372036854775808",  # 2**63
        "6b6a8e2c3d6e11ee80000242ac120002:1",
        "{6b6a8e2c-3d6e-11ee-8000-0242ac120002}:1",
        "6b6a8e2c-3d6e-11ee-8000-0242ac12000:1",
        "gb6a8e2c-3d6e-11ee-8000-0242ac120002:1",
        "x" * 10_000,
    ],
)
def test_bad_text_is_a_clear_error(text: str) -> None:
    with pytest.raises(GtidError, match=r"GTID|out of range"):
        Gtid.parse(text)


@given(st.text(max_size=60))
def test_random_text_raises_only_gtid_error(text: str) -> None:
    try:
        gtid = Gtid.parse(text)
    except GtidError:
        return
    assert str(gtid) == text.lower()


@pytest.mark.parametrize(
    ("cluster", "seqno"),
    [(CLUSTER, -2), (CLUSTER, 2**63), (CLUSTER, True), (CLUSTER, 1.0), (str(CLUSTER), 1)],
)
def test_bad_fields_are_refused(cluster: object, seqno: object) -> None:
    with pytest.raises(GtidError):
        Gtid(cluster, seqno)  # type: ignore[arg-type]
