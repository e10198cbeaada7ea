"""Unit tests: each rule of the certification index, one at a time."""

from __future__ import annotations

import pytest

from certification import (
    CertificationIndex,
    CertificationRequest,
    Key,
    KeyKind,
    Outcome,
    Verdict,
    row_key,
    table_key,
)

SH = KeyKind.SHARED


def row(n: int, kind: KeyKind = KeyKind.EXCLUSIVE, table: str = "t") -> Key:
    return row_key("s", table, "PRIMARY", [str(n).encode()], kind)


def passed(depends_seqno: int = 0) -> Verdict:
    return Verdict(Outcome.PASSED, depends_seqno=depends_seqno)


def ws(seqno: int, last_seen: int, *keys: Key) -> CertificationRequest:
    return CertificationRequest(seqno, last_seen, keys)


def test_a_write_set_with_no_overlap_passes_and_enters_the_index() -> None:
    index = CertificationIndex()
    assert index.certify(ws(1, 0, row(1), row(2))) == passed()
    assert index.certify(ws(2, 0, row(3))) == passed()
    assert index.stats.index_size == 3


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        (row(1), row(1), Outcome.CONFLICT),
        (row(1), row(1, SH), Outcome.CONFLICT),
        (row(1, SH), row(1), Outcome.CONFLICT),
        (row(1, SH), row(1, SH), Outcome.PASSED),
        (table_key("s", "t"), row(1), Outcome.CONFLICT),
        (table_key("s", "t"), row(1, SH), Outcome.CONFLICT),
        (row(1), table_key("s", "t"), Outcome.CONFLICT),
        (row(1, SH), table_key("s", "t"), Outcome.CONFLICT),
        (table_key("s", "t"), table_key("s", "t"), Outcome.CONFLICT),
        (table_key("s", "t"), row(1, table="u"), Outcome.PASSED),
        (row(1, table="u"), table_key("s", "t"), Outcome.PASSED),
        (row(1), row(1, table="T"), Outcome.PASSED),  # case-sensitive table names
    ],
)
def test_each_type_rule_decides_concurrent_write_sets(
    first: Key, second: Key, outcome: Outcome
) -> None:
    index = CertificationIndex()
    assert index.certify(ws(1, 0, first)) == passed()
    verdict = index.certify(ws(2, 0, second))  # last_seen 0: seqno 1 is concurrent
    assert verdict.outcome is outcome
    if outcome is Outcome.CONFLICT:
        assert verdict == Verdict(Outcome.CONFLICT, second, 1)


def test_a_passing_write_set_depends_on_the_latest_conflicting_writer() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, row(1, SH)))
    index.certify(ws(2, 0, row(1, SH)))  # shared with shared: no dependency
    assert index.certify(ws(3, 2, row(2), row(1))) == passed(2)
    assert index.certify(ws(4, 3, row(3, table="u"))) == passed()
    assert index.certify(ws(5, 4, table_key("s", "t"))) == passed(3)
    assert index.certify(ws(6, 5, row(9, SH))) == passed(5)  # the table lock
    index.purge(5)
    assert index.certify(ws(7, 6, row(1), row(3, table="u"))) == passed()


def test_only_writers_after_last_seen_conflict() -> None:
    index = CertificationIndex()
    index.certify(ws(5, 0, row(1)))
    assert index.certify(ws(6, 5, row(1))) == passed(5)  # saw seqno 5 committed
    assert index.certify(ws(7, 5, row(1))) == Verdict(Outcome.CONFLICT, row(1), 6)


def test_lost_update_is_impossible_even_from_the_same_node() -> None:
    """P4: T1 and T2 read at the same snapshot, both write the row: only the first commits.

    The index has no notion of origin: two transactions of one node are treated exactly
    like two transactions of two nodes (Galera exempts the former).
    """
    index = CertificationIndex()
    index.certify(ws(10, 0, row(1)))
    t1, t2 = ws(11, 10, row(42), row(1, SH)), ws(12, 10, row(42))
    assert index.certify(t1) == passed(10)
    verdict = index.certify(t2)
    assert verdict == Verdict(Outcome.CONFLICT, row(42), 11)
    assert verdict.describe() == "conflict: EXCLUSIVE `s`.`t` primary(0x3432) written at 11"


def test_the_reported_seqno_is_the_latest_conflicting_writer_of_the_first_hit() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, row(1)))
    index.certify(ws(2, 1, row(1, SH), row(2)))
    index.certify(ws(3, 2, row(2)))
    assert index.certify(ws(4, 0, row(7), row(1), row(2))) == Verdict(Outcome.CONFLICT, row(1), 2)
    assert index.certify(ws(5, 0, table_key("s", "t"))) == Verdict(
        Outcome.CONFLICT, table_key("s", "t"), 3
    )


def test_failed_write_sets_do_not_enter_the_index() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, row(1)))
    assert not index.certify(ws(2, 0, row(1), row(2))).passed
    assert index.certify(ws(3, 1, row(2))) == passed()  # seqno 2 never wrote row 2
    assert index.stats.index_size == 2


def test_a_table_lock_is_only_looked_up_while_one_is_held() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, table_key("s", "t")))
    assert index.certify(ws(2, 0, row(1))).outcome is Outcome.CONFLICT
    index.purge(1)
    assert index.stats.index_size == 0
    assert index.certify(ws(3, 1, row(1))) == passed()


def test_purge_drops_entries_at_or_below_the_safe_point_only() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, row(1), row(2)))
    index.certify(ws(2, 1, row(2), row(3, SH)))
    index.certify(ws(3, 2, table_key("s", "u")))
    index.purge(1)
    assert index.stats.index_size == 3  # row 1 gone; row 2 now belongs to seqno 2
    assert index.certify(ws(4, 1, row(2))) == Verdict(Outcome.CONFLICT, row(2), 2)
    assert index.certify(ws(5, 1, row(1))) == passed()
    index.purge(5)
    assert index.stats.index_size == 0
    assert index.stats.log_length == 0


def test_a_write_set_older_than_the_purge_point_fails_as_stale() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, row(1)))
    index.purge(1)
    assert index.certify(ws(2, 0, row(99))) == Verdict(Outcome.STALE)
    assert index.certify(ws(3, 1, row(99))) == passed()  # last_seen == purge point is exact


def test_a_lower_safe_point_changes_nothing() -> None:
    index = CertificationIndex()
    index.certify(ws(1, 0, row(1)))
    index.certify(ws(2, 1, row(2)))
    index.purge(2)
    index.purge(1)  # a member with an older position joined
    assert index.purged_to == 2
    assert index.certify(ws(3, 1, row(5))).outcome is Outcome.STALE


def test_an_index_starts_at_its_initial_position() -> None:
    index = CertificationIndex(initial_seqno=100)
    assert index.certify(ws(101, 99, row(1))).outcome is Outcome.STALE
    assert index.certify(ws(102, 100, row(1))) == passed()
    with pytest.raises(ValueError, match="out of order"):
        CertificationIndex(initial_seqno=100).certify(ws(100, 99, row(1)))


@pytest.mark.parametrize("last_seen", [-1, 3, 4])
def test_an_impossible_last_seen_fails_as_invalid(last_seen: int) -> None:
    index = CertificationIndex()
    assert index.certify(ws(3, last_seen, row(1))) == Verdict(Outcome.INVALID)
    assert index.stats.index_size == 0


def test_out_of_order_delivery_is_a_caller_bug() -> None:
    index = CertificationIndex()
    index.certify(ws(5, 0, row(1)))
    for seqno in (5, 4):
        with pytest.raises(ValueError, match="out of order"):
            index.certify(ws(seqno, 0, row(2)))
    assert index.stats.certified == 1


def test_stats_count_what_the_status_layer_shows() -> None:
    index = CertificationIndex()
    assert index.stats.avg_keys_per_write_set == 0.0
    index.certify(ws(1, 0, row(1), row(2), row(3)))
    index.certify(ws(2, 0, row(3)))
    index.certify(ws(3, 2, row(4), row(1, SH), table_key("s", "u"), row(1, SH)))
    index.purge(1)
    stats = index.stats
    assert (stats.certified, stats.passed, stats.failed) == (3, 2, 1)
    assert stats.avg_keys_per_write_set == 8 / 3
    assert stats.purged_to == 1
    assert stats.index_size == 3  # row 4 written, row 1 referenced, table u locked
    assert stats.log_length == 1


def test_verdict_text_for_logs() -> None:
    assert passed(7).describe() == "passed, depends on 7"
    assert Verdict(Outcome.STALE).describe() == "stale"


def test_memory_stays_bounded_under_a_steady_load() -> None:
    """The safe point trails the head by a window: the index never holds more than it."""
    index, window, keys_per_ws = CertificationIndex(), 50, 3
    for seqno in range(1, 5_001):
        keys = tuple(row(seqno * keys_per_ws + i) for i in range(keys_per_ws))
        assert index.certify(ws(seqno, seqno - 1, *keys)).passed
        index.purge(seqno - window)
        assert index.stats.log_length <= window
        assert index.stats.index_size <= window * keys_per_ws
    assert index.stats.index_size == window * keys_per_ws


def test_preload_indexes_a_passed_write_set_without_judging_it() -> None:
    index = CertificationIndex(initial_seqno=10)  # the cluster's purge point at the join
    index.preload(ws(11, 3, row(1)))  # judged by the cluster already: not STALE here
    assert index.certify(ws(12, 10, row(1))) == Verdict(Outcome.CONFLICT, row(1), 11)
    assert (index.stats.certified, index.stats.index_size) == (1, 1)
    with pytest.raises(ValueError, match="out of order"):
        index.preload(ws(12, 10, row(2)))
