"""Address lists and reconnect delays."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsrep.transport.address import parse_address, parse_group
from wsrep.transport.backoff import Backoff


def test_group_urls_and_addresses() -> None:
    assert parse_group("gcomm://a:1, b:2,") == ("a:1", "b:2")
    assert parse_group("gcomm://") == ()
    assert parse_group("127.0.0.1:4567") == ("127.0.0.1:4567",)
    assert parse_address("[::1]:4567") == ("::1", 4567)


@pytest.mark.parametrize("bad", ["nohost", ":4567", "h:0", "h:65536", "h:port", "h:-1"])
def test_bad_addresses_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="member address"):
        parse_group(f"gcomm://ok:1,{bad}")


@given(st.integers(0, 2**32), st.integers(1, 40))
def test_backoff_grows_to_its_maximum_with_jitter_and_resets(seed: int, steps: int) -> None:
    backoff = Backoff(0.05, 2.0, random.Random(seed))
    delays = [backoff.next() for _ in range(steps)]
    assert all(0.025 <= d <= 2.0 for d in delays)
    if steps >= 10:
        assert delays[-1] >= 1.0  # reached the cap (halved at worst by jitter)
    backoff.reset()
    assert backoff.next() <= 0.05
