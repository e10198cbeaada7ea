"""InMemoryLogStorage: append, truncate, purge with a base that keeps the log matchable."""

from __future__ import annotations

import pytest

from wsrep.group.log import (
    Configuration,
    Entry,
    EntryKind,
    HardState,
    InMemoryLogStorage,
)
from wsrep.group.types import MemberInfo

VIEW = Configuration((MemberInfo("a", "x:1"),))


def payload(index: int, term: int = 1) -> Entry:
    return Entry(term, index, index - 1, 1, EntryKind.PAYLOAD, "a", 1, index, b"p")


def filled(n: int, retain: int | None = None) -> InMemoryLogStorage:
    st = InMemoryLogStorage(retain)
    st.append([Entry(1, 1, 0, 1, EntryKind.VIEW, config=VIEW)])
    st.append([payload(i) for i in range(2, n + 1)])
    return st


def test_append_must_continue_the_log() -> None:
    st = filled(5)
    with pytest.raises(ValueError, match="append at 7"):
        st.append([payload(7)])
    assert st.last_index() == 5 and st.entry(3) == payload(3)


def test_truncate_never_below_delivered() -> None:
    st = filled(10)
    st.save_hard_state(HardState(1, None, None, delivered=4))
    st.truncate_from(6)
    assert st.last_index() == 5
    with pytest.raises(ValueError, match="delivered"):
        st.truncate_from(4)


def test_purge_keeps_retain_delivered_entries_and_a_base() -> None:
    st = filled(100, retain=20)
    st.save_hard_state(HardState(1, None, None, delivered=90))
    assert st.first_index() == 71 and st.last_index() == 100
    base, base_view = st.base()
    assert base == payload(70)
    assert base_view is not None and base_view.index == 1  # the stable view in force
    with pytest.raises(IndexError, match="purged"):
        st.entry(70)
    assert st.entries(71, 73) == [payload(71), payload(72)]


def test_purge_waits_for_a_chunk() -> None:
    st = filled(100, retain=20)
    st.save_hard_state(HardState(1, None, None, delivered=24))
    assert st.first_index() == 1  # only 4 beyond retain: not worth moving the list yet
    st.save_hard_state(HardState(1, None, None, delivered=26))
    assert st.first_index() == 7
