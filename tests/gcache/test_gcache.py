"""GCache as a LogStorage: append, read, truncate, purge, hard state, reopen, refusals."""

from __future__ import annotations

import logging
import os
import struct
import uuid
from pathlib import Path

import crc32c
import pytest

from wsrep.gcache import DELIVERED_FILE, STATE_FILE, GCache, GCacheError
from wsrep.gcache_codec import encode_delivered
from wsrep.gcache_segment import HEADER, MAGIC, encode_header, encode_record, segment_name
from wsrep.group.log import HardState

from .logs import build, payloads

SEG = 4096


def small(path: Path, **kw: object) -> GCache:
    return GCache(path, size=kw.pop("size", 4 * SEG), segment_size=SEG, **kw)  # type: ignore[arg-type]


def filled(path: Path, n: int, **kw: object) -> GCache:
    g = small(path, **kw)
    g.append(build([("view", b"")]))
    g.append(payloads(n - 1, after=g.entry(1)))
    return g


def test_append_read_and_reopen(tmp_path: Path) -> None:
    log = build([("view", b""), *(("a", bytes([i]) * i) for i in range(50))])
    with small(tmp_path, size=1 << 20) as g:
        g.append(log[:10])
        g.append(log[10:])
        assert g.segment_count > 1  # the log spans several files
        assert (g.first_index(), g.last_index()) == (1, 51)
        assert g.entries(1, 52) == log and g.entry(30) == log[29]
    with small(tmp_path, size=1 << 20) as g:
        assert g.entries(1, 52) == log  # read back from disk, no cache
        assert g.entries(40, 100) == log[39:]  # hi beyond the end is clipped, like a slice
        with pytest.raises(IndexError, match="beyond"):
            g.entry(52)


def test_append_must_continue_the_log(tmp_path: Path) -> None:
    with filled(tmp_path, 5) as g:
        with pytest.raises(ValueError, match="append at 7"):
            g.append(payloads(2, after=g.entry(5))[1:])
        assert g.last_index() == 5


def test_hard_state_survives_reopen(tmp_path: Path) -> None:
    cluster = uuid.uuid4()
    state = HardState(term=7, voted_for="n2", cluster_uuid=cluster, delivered=3)
    with filled(tmp_path, 5) as g:
        g.save_hard_state(state)
    with small(tmp_path, cluster_uuid=cluster) as g:
        assert g.hard_state() == state
        g.save_hard_state(HardState(8, None, cluster, 4))
    with small(tmp_path) as g:
        assert g.hard_state() == HardState(8, None, cluster, 4)
    assert not (tmp_path / (STATE_FILE + ".tmp")).exists()


def spy_flushes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record (call, size of the file synced) for every fsync and fdatasync."""
    flushed: list[tuple[str, int]] = []

    def spy(name: str) -> None:
        real = getattr(os, name)

        def flush(fd: int) -> None:
            flushed.append((name, os.fstat(fd).st_size))
            real(fd)

        monkeypatch.setattr(os, name, flush)

    spy("fsync")
    spy("fdatasync")
    return flushed


@pytest.mark.parametrize("sync", [True, False])
def test_what_is_flushed_when(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool) -> None:
    flushed = spy_flushes(monkeypatch)
    with filled(tmp_path, 3, sync=sync) as g:
        for action, flush, always in (
            (lambda: g.append(payloads(1, after=g.entry(3))), None, False),  # by the sync job
            (g.flush, "fdatasync", False),
            (lambda: g.save_hard_state(HardState(2, "a", None, 1)), "fsync", True),  # a vote
            (lambda: g.save_hard_state(HardState(2, "a", None, 2)), None, False),  # delivered
            (lambda: g.truncate_from(3), "fsync", False),
        ):
            flushed.clear()
            action()
            assert {name for name, _ in flushed} == (
                {flush} if flush and (sync or always) else set()
            )


def test_a_sync_job_covers_exactly_the_appends_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver takes the job, then more appends may come while a worker thread runs it:
    the job syncs at least what was written before it was taken, and the later appends
    wait for the next job."""
    flushed = spy_flushes(monkeypatch)
    with small(tmp_path) as g:
        assert g.sync_job() is None  # nothing written
        g.append(payloads(3))
        size_before = (tmp_path / "seg-00000000000000000001.gcache").stat().st_size
        job = g.sync_job()
        assert job is not None and g.sync_job() is None
        g.append(payloads(2, after=g.entry(3)))
        flushed.clear()  # (creating the segment synced it and the directory)
        job()
        assert [name for name, _ in flushed] == ["fdatasync"]
        assert flushed[0][1] >= size_before
        later = g.sync_job()
        assert later is not None
        flushed.clear()
        later()
        assert [name for name, _ in flushed] == ["fdatasync"]


def test_a_sync_job_outlives_the_segments_it_syncs(tmp_path: Path) -> None:
    """A purge or truncation may drop a segment while its sync runs in a worker thread: the
    job syncs its own duplicate of the descriptor."""
    with small(tmp_path, size=SEG) as g:
        g.append(payloads(40, size=200))
        job = g.sync_job()
        assert job is not None
        g.save_hard_state(HardState(1, None, None, delivered=30))  # purges old segments
        assert g.first_index() > 1
        g.truncate_from(35)
        job()
        assert g.sync_job() is None


def test_the_delivered_mark_survives_a_reopen_and_never_exceeds_the_log(tmp_path: Path) -> None:
    with small(tmp_path) as g:
        g.append(payloads(10))
        g.save_hard_state(HardState(1, None, None, delivered=2))  # term: the state file
        g.save_hard_state(HardState(1, None, None, delivered=7))  # the mark only
    with small(tmp_path) as g:
        assert g.hard_state() == HardState(1, None, None, delivered=7)
        g.truncate_from(8)
    # a mark past the log: a power loss kept the mark, not the unsynced tail
    (tmp_path / DELIVERED_FILE).write_bytes(encode_delivered(9))
    with small(tmp_path) as g:
        assert g.hard_state().delivered == 7 and g.last_index() == 7
    # a torn or damaged mark: the state file's delivered
    (tmp_path / DELIVERED_FILE).write_bytes(encode_delivered(5)[:-1] + b"x")
    with small(tmp_path) as g:
        assert g.hard_state().delivered == 2


def test_a_new_term_or_vote_is_flushed_even_without_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raft's promise (never two votes in a term) holds across a power loss in any mode."""
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    with filled(tmp_path, 3, sync=False) as g:
        base = g.hard_state()
        for state in (
            HardState(base.term + 1, None, base.cluster_uuid, base.delivered),
            HardState(base.term + 1, "b", base.cluster_uuid, base.delivered),
            HardState(base.term + 2, "b", base.cluster_uuid, base.delivered),
        ):
            synced.clear()
            g.save_hard_state(state)
            assert len(synced) == 2  # the new state file and its directory
    with GCache(tmp_path) as g:
        assert g.hard_state().voted_for == "b"


def test_truncate_from_then_append(tmp_path: Path) -> None:
    with filled(tmp_path, 120, size=1 << 20) as g:
        g.save_hard_state(HardState(1, None, None, delivered=40))
        with pytest.raises(ValueError, match="delivered"):
            g.truncate_from(40)
        segments = g.segment_count
        g.truncate_from(41)  # drops whole segments and cuts one
        assert g.last_index() == 40 and g.segment_count < segments
        new = build([("term", b""), ("b", b"new")], g.entry(40))
        g.append(new)
        kept = g.entries(1, 42)
    with small(tmp_path, size=1 << 20) as g:
        assert g.entries(1, 42) == kept and g.entry(41).origin == "b" and g.last_index() == 41


def test_truncate_at_a_segment_start_removes_the_file(tmp_path: Path) -> None:
    with filled(tmp_path, 120) as g:
        files = sorted(tmp_path.glob("seg-*"))
        first_of_last = int(files[-1].name[4:24])
        g.truncate_from(first_of_last)
        assert sorted(tmp_path.glob("seg-*")) == files[:-1]
        assert g.last_index() == first_of_last - 1
        g.append(payloads(3, after=g.entry(g.last_index())))
        assert g.last_index() == first_of_last + 2


def test_purge_keeps_the_size_bound_and_a_base(tmp_path: Path) -> None:
    with filled(tmp_path, 200) as g:
        assert g.first_index() == 1  # nothing delivered: nothing may go
        assert g.disk_bytes > 4 * SEG
        g.save_hard_state(HardState(1, None, None, delivered=200))
        assert g.disk_bytes <= 4 * SEG and g.first_index() > 1
        first = g.first_index()
        base, base_view = g.base()
        assert base is not None and base.index == first - 1 and base.payload == b""
        assert base_view is not None and base_view.index == 1
        with pytest.raises(IndexError, match="purged"):
            g.entry(first - 1)
        tail = g.entries(first, 201)
    with small(tmp_path) as g:
        assert g.first_index() == first and g.base() == (base, base_view)
        assert g.entries(first, 201) == tail


def test_a_purge_interrupted_before_its_unlinks_is_finished_on_open(tmp_path: Path) -> None:
    with filled(tmp_path, 200) as g:
        before = {f.name: f.read_bytes() for f in tmp_path.glob("seg-*")}
        g.save_hard_state(HardState(1, None, None, delivered=200))
        first, tail = g.first_index(), g.entries(g.first_index(), 201)
    for name, data in before.items():  # the crash: state written, files still there
        (tmp_path / name).write_bytes(data)
    with small(tmp_path) as g:
        assert g.first_index() == first and g.entries(first, 201) == tail
    assert len(list(tmp_path.glob("seg-*"))) < len(before)


def test_purge_stops_at_delivered_and_at_the_owner_floor(tmp_path: Path) -> None:
    with filled(tmp_path, 300) as g:
        g.purge_floor = 50  # e.g. a donor still streams from index 50
        g.save_hard_state(HardState(1, None, None, delivered=300))
        assert g.first_index() <= 50 and g.entry(50).index == 50
        g.purge_floor = None
        g.save_hard_state(HardState(1, None, None, delivered=120))
        assert 50 < g.first_index() <= 121
        assert g.entry(120).index == 120


def test_seqno_lookups(tmp_path: Path) -> None:
    log = build([("view", b""), ("a", b"1"), ("a", b"2"), ("view", b""), ("b", b"3")])
    with small(tmp_path) as g:
        assert g.seqno_range() is None
        g.append(log)
        assert g.seqno_range() == (1, 3)
        assert [g.index_of_seqno(s) for s in (1, 2, 3)] == [2, 3, 5]
        with pytest.raises(KeyError):
            g.index_of_seqno(4)
        g.append(payloads(300, after=log[-1]))
        g.save_hard_state(HardState(1, None, None, delivered=g.last_index()))
        low, high = g.seqno_range()  # type: ignore[misc]
        assert low > 3 and high == 303
        assert g.entry(g.index_of_seqno(low)).seqno == low
        with pytest.raises(KeyError):
            g.index_of_seqno(low - 1)


def test_reads_touch_only_the_segments_asked_for(tmp_path: Path) -> None:
    """An offset index, not a scan: damage in one file does not affect reads elsewhere,
    and is reported when that file is read."""
    with filled(tmp_path, 200) as g:
        last_file = sorted(tmp_path.glob("seg-*"))[-1]
    with small(tmp_path, size=1 << 20, cache_bytes=0) as g:
        first = sorted(tmp_path.glob("seg-*"))[0]
        with open(first, "r+b") as f:
            f.seek(HEADER.size + 200)
            f.write(b"\xff" * 8)
        tail_from = int(last_file.name[4:24])
        assert [e.index for e in g.entries(tail_from, 201)] == list(range(tail_from, 201))
        with pytest.raises(GCacheError, match="damaged since it was written"):
            g.entries(1, 10)


def test_foreign_cluster_is_refused(tmp_path: Path) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    with filled(tmp_path, 3) as g:
        g.save_hard_state(HardState(1, None, mine, 0))
    with pytest.raises(GCacheError, match=f"belongs to cluster {mine}, not {other}"):
        small(tmp_path, cluster_uuid=other)
    # the refusal released its lock
    with small(tmp_path, cluster_uuid=mine) as g, pytest.raises(ValueError, match="uuid change"):
        g.save_hard_state(HardState(1, None, other, 0))


def test_segment_of_another_cluster_is_refused(tmp_path: Path) -> None:
    with filled(tmp_path, 3) as g:
        g.save_hard_state(HardState(1, None, uuid.uuid4(), 0))
    seg = tmp_path / segment_name(1)
    data = seg.read_bytes()
    seg.write_bytes(encode_header(uuid.uuid4(), 1) + data[len(encode_header(None, 1)) :])
    with pytest.raises(GCacheError, match="belongs to cluster"):
        small(tmp_path)


def test_unknown_versions_are_refused_and_left_alone(tmp_path: Path) -> None:
    with filled(tmp_path, 3):
        pass
    seg = tmp_path / segment_name(1)
    original = seg.read_bytes()
    raw = HEADER.pack(MAGIC, 99, 0, bytes(16), 1)
    seg.write_bytes(raw + struct.pack("<I", crc32c.crc32c(raw)) + original[HEADER.size + 4 :])
    with pytest.raises(GCacheError, match="version 99"):
        small(tmp_path)
    assert seg.stat().st_size == len(original)  # not truncated
    state = tmp_path / STATE_FILE
    data = bytearray(state.read_bytes())
    data[8] = 5  # state version
    data[-4:] = struct.pack("<I", crc32c.crc32c(bytes(data[:-4])))
    state.write_bytes(bytes(data))
    with pytest.raises(GCacheError, match="version 5"):
        small(tmp_path)


def test_damaged_state_file_is_refused(tmp_path: Path) -> None:
    with filled(tmp_path, 3):
        pass
    state = tmp_path / STATE_FILE
    data = bytearray(state.read_bytes())
    data[20] ^= 1
    state.write_bytes(bytes(data))
    with pytest.raises(GCacheError, match="crc mismatch"):
        small(tmp_path)
    state.write_bytes(b"hello")
    with pytest.raises(GCacheError, match="not a gcache state file"):
        small(tmp_path)
    state.unlink()
    with pytest.raises(GCacheError, match=r"no gcache\.state"):
        small(tmp_path)


def test_lost_delivered_entries_are_refused(tmp_path: Path) -> None:
    with filled(tmp_path, 100) as g:
        g.save_hard_state(HardState(1, None, None, delivered=100))
    last = sorted(tmp_path.glob("seg-*"))[-1]
    os.truncate(last, last.stat().st_size - 1)  # a torn tail below the delivery point
    files = {f.name: f.read_bytes() for f in tmp_path.glob("seg-*")}
    with pytest.raises(GCacheError, match="ends at index 99 but entries up to 100 were delivered"):
        small(tmp_path)
    assert {f.name: f.read_bytes() for f in tmp_path.glob("seg-*")} == files  # untouched


def test_a_second_opener_is_refused(tmp_path: Path) -> None:
    with small(tmp_path), pytest.raises(GCacheError, match="open in another process"):
        small(tmp_path)
    small(tmp_path).close()


def test_strangers_in_the_directory_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "seg-12.gcache").write_bytes(b"not a 20-digit name")
    with filled(tmp_path, 10):
        pass
    with small(tmp_path) as g:
        assert g.last_index() == 10
    assert (tmp_path / "notes.txt").read_text() == "hello"


def test_garbage_segment_is_cut_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with filled(tmp_path, 10) as g:
        log = g.entries(1, 11)
    (tmp_path / segment_name(11)).write_bytes(os.urandom(5000))
    (tmp_path / segment_name(12)).write_bytes(b"")
    with caplog.at_level(logging.WARNING, "wsrep.gcache"), small(tmp_path) as g:
        assert g.entries(1, 100) == log
        g.append(payloads(1, after=log[-1]))
    assert "seg-00000000000000000011.gcache: bad magic at index 11" in caplog.text
    assert "the log now ends at index 10 (cut in seg-00000000000000000011.gcache, 1 later" in (
        caplog.text
    )
    assert not (tmp_path / segment_name(12)).exists()


def test_a_sound_record_with_an_undecodable_body_is_a_clear_error(tmp_path: Path) -> None:
    with filled(tmp_path, 3):
        pass
    with open(tmp_path / segment_name(1), "ab") as f:
        f.write(encode_record(4, 3, 1, b"\x00garbage that is no entry"))
    with small(tmp_path) as g:
        assert g.last_index() == 4 and g.entry(3).index == 3
        with pytest.raises(GCacheError, match="entries from index 4"):
            g.entry(4)


def test_a_failed_write_leaves_the_log_as_it_was(tmp_path: Path) -> None:
    with filled(tmp_path, 10) as g:
        before = g.entries(1, 11)
        size = g.disk_bytes
        seg = g._segments[-1]
        real_fd = seg.fd
        seg.fd = os.open(os.devnull, os.O_RDONLY)  # writes fail with EBADF
        with pytest.raises(OSError):
            g.append(payloads(3, after=before[-1]))
        os.close(seg.fd)
        seg.fd = real_fd
        assert g.last_index() == 10 and g.disk_bytes == size
        g.append(payloads(3, after=before[-1]))
    with small(tmp_path) as g:
        assert g.entries(1, 11) == before and g.last_index() == 13


def test_an_entry_larger_than_a_segment_gets_one_of_its_own(tmp_path: Path) -> None:
    with filled(tmp_path, 3, size=1 << 20) as g:
        big = build([("a", b"x" * (3 * SEG)), ("a", b"y")], g.entry(3))
        g.append(big)
        assert g.segment_count == 3 and g.entries(4, 6) == big
    with small(tmp_path, size=1 << 20) as g:
        assert g.entries(4, 6) == big


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="segment_size"):
        GCache(tmp_path, size=100, segment_size=1000)
