"""The TOI payload codec: round trip, one encoding, garbage refused (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.toi_payload import (
    MAX_VARIABLES,
    IsolatedStatement,
    IsolationOutcome,
    PayloadError,
    decode,
    encode,
)

names = st.from_regex(r"[a-z_]{1,64}", fullmatch=True)
texts = st.text(max_size=200)
statements = st.builds(
    IsolatedStatement,
    text=st.binary(max_size=200),
    schema=st.none() | texts,
    definer=st.none() | texts,
    variables=st.lists(st.tuples(names, st.none() | texts), max_size=20).map(tuple),
)
outcomes = st.builds(
    IsolationOutcome,
    seqno=st.integers(1, 2**63 - 1),
    error=st.integers(0, 2**16 - 1),
    origin=texts,
)


@given(statements | outcomes)
def test_round_trip(payload: IsolatedStatement | IsolationOutcome) -> None:
    data = encode(payload)
    assert decode(data) == payload


@given(st.binary(max_size=300))
def test_garbage_is_refused_or_reads_back_exactly(data: bytes) -> None:
    try:
        payload = decode(data)
    except PayloadError:
        return
    assert encode(payload) == data  # one valid encoding per payload


@given(statements | outcomes, st.data())
def test_truncated_or_extended_payloads_are_refused(
    payload: IsolatedStatement | IsolationOutcome, data: st.DataObject
) -> None:
    raw = encode(payload)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(PayloadError):
        decode(raw[:cut])
    with pytest.raises(PayloadError):
        decode(raw + data.draw(st.binary(min_size=1, max_size=8)))


def test_bad_fields_are_refused_on_both_sides() -> None:
    with pytest.raises(ValueError):
        IsolatedStatement(b"x", None, None, (("Not a name", "1"),))
    with pytest.raises(ValueError):
        IsolatedStatement(b"x", None, None, (("a", "1"),) * (MAX_VARIABLES + 1))
    with pytest.raises(ValueError):
        IsolationOutcome(0, 0, "node1")
    bad_name = encode(IsolatedStatement(b"x", None, None, (("a", "1"),))).replace(
        b"\x01a", b"\x01A"
    )
    with pytest.raises(PayloadError, match="variable"):
        decode(bad_name)
    with pytest.raises(PayloadError, match="version"):
        decode(b"T\x09")
    with pytest.raises(PayloadError):
        decode(b"T\x01\x00\x02\xff\x00\x00")  # schema not utf-8
