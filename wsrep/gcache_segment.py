"""One gcache segment file: a header, then length-prefixed, crc32c-checked records.

    header:  magic "WSGCSEG\\0", version u16, reserved u16, cluster uuid (16 bytes, zero
             when unknown), first index u64, crc32c u32 of the preceding bytes
    record:  crc32c u32 of everything after it, body length u32, index u64, seqno u64,
             kind u8 (EntryKind, | STABLE_VIEW for a non-joint view), body

Records are consecutive log indexes starting at the header's first index. The index, seqno
and kind are outside the body so a scan rebuilds the index without decoding entries. All
integers are little-endian. Scanning stops at the first record that is truncated, fails
its crc or does not continue the sequence: that is where a crash tore the tail.
"""

from __future__ import annotations

import os
import struct
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

MAGIC = b"WSGCSEG\x00"
VERSION = 1
HEADER = struct.Struct("<8sHH16sQ")
HEADER_SIZE = HEADER.size + 4
RECORD = struct.Struct("<IIQQB")
STABLE_VIEW = 0x10  # kind flag: a stable (non-joint) VIEW entry
_U32 = struct.Struct("<I")
NAME_PREFIX = "seg-"
NAME_SUFFIX = ".gcache"


class SegmentVersionError(ValueError):
    """A segment written by a format this code does not know: never touch it."""


def segment_name(first_index: int) -> str:
    return f"{NAME_PREFIX}{first_index:020d}{NAME_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first index a segment file name announces, None for any other file."""
    if not (name.startswith(NAME_PREFIX) and name.endswith(NAME_SUFFIX)):
        return None
    digits = name[len(NAME_PREFIX) : -len(NAME_SUFFIX)]
    return int(digits) if len(digits) == 20 and digits.isdigit() else None


def encode_header(cluster_uuid: uuid.UUID | None, first_index: int) -> bytes:
    raw = HEADER.pack(MAGIC, VERSION, 0, (cluster_uuid or uuid.UUID(int=0)).bytes, first_index)
    return raw + _U32.pack(crc32c.crc32c(raw))


def decode_header(data: bytes) -> tuple[uuid.UUID | None, int] | str:
    """(cluster uuid, first index), or why the header is not valid (torn or damaged)."""
    if len(data) < HEADER_SIZE:
        return f"header truncated at {len(data)} bytes"
    magic, version, _, raw_uuid, first_index = HEADER.unpack_from(data)
    if magic != MAGIC:
        return "bad magic"
    if _U32.unpack_from(data, HEADER.size)[0] != crc32c.crc32c(data[: HEADER.size]):
        return "header crc mismatch"
    if version != VERSION:
        raise SegmentVersionError(f"segment format version {version}, this code knows {VERSION}")
    cluster_uuid = uuid.UUID(bytes=raw_uuid)
    return (None if cluster_uuid.int == 0 else cluster_uuid), first_index


def encode_record(index: int, seqno: int, kind: int, body: bytes) -> bytes:
    tail = RECORD.pack(0, len(body), index, seqno, kind)[4:] + body
    return _U32.pack(crc32c.crc32c(tail)) + tail


@dataclass
class Scan:
    """What a scan of a segment's bytes found: records up to `end`, and why it stopped there."""

    offsets: array = field(default_factory=lambda: array("Q"))
    seqnos: array = field(default_factory=lambda: array("q"))
    kinds: bytearray = field(default_factory=bytearray)
    end: int = HEADER_SIZE
    problem: str | None = None  # None: the data ended exactly after a record


def scan_records(data: bytes, start: int, first_index: int, prev_seqno: int) -> Scan:
    """Walk the records from offset `start`; pure, so damage can be tested byte by byte."""
    scan = Scan()
    pos, size, index = start, len(data), first_index
    view = memoryview(data)  # crc over slices without copying them
    crc = crc32c.crc32c
    while pos < size:
        if pos + RECORD.size > size:
            scan.problem = "truncated record header"
            break
        stored_crc, length, rec_index, seqno, kind = RECORD.unpack_from(data, pos)
        end = pos + RECORD.size + length
        if end > size:
            scan.problem = f"truncated record: {end - pos} bytes, {size - pos} left"
            break
        if crc(view[pos + 4 : end]) != stored_crc:
            scan.problem = "record crc mismatch"
            break
        if rec_index != index or seqno < prev_seqno or kind & 0x0F not in (1, 2):
            scan.problem = f"record out of sequence (index {rec_index}, expected {index})"
            break
        scan.offsets.append(pos)
        scan.seqnos.append(seqno)
        scan.kinds.append(kind)
        index += 1
        prev_seqno = seqno
        pos = end
    scan.end = pos
    return scan


class Segment:
    """An open segment file and the positions of its records."""

    def __init__(self, path: Path, fd: int, first_index: int, scan: Scan) -> None:
        self.path = path
        self.fd = fd
        self.first_index = first_index
        self.offsets = scan.offsets
        self.seqnos = scan.seqnos
        self.kinds = scan.kinds
        self.size = scan.end

    @classmethod
    def create(
        cls, directory: Path, first_index: int, cluster_uuid: uuid.UUID | None, sync: bool
    ) -> Segment:
        path = directory / segment_name(first_index)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, encode_header(cluster_uuid, first_index), 0)
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, first_index, Scan())

    @property
    def count(self) -> int:
        return len(self.offsets)

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.offsets) - 1

    def append(self, records: list[bytes], meta: list[tuple[int, int]]) -> None:
        """Write consecutive records (with their (seqno, kind)) at the end (not synced)."""
        data = b"".join(records)
        try:
            _write_all(self.fd, data, self.size)
        except BaseException:
            # leave no half-written record behind the ones the index knows
            os.ftruncate(self.fd, self.size)
            raise
        pos = self.size
        for record, (seqno, kind) in zip(records, meta, strict=True):
            self.offsets.append(pos)
            self.seqnos.append(seqno)
            self.kinds.append(kind)
            pos += len(record)
        self.size = pos

    def read_bodies(self, lo: int, hi: int) -> list[bytes]:
        """The bodies of records lo <= index < hi, crc checked (one read for the range)."""
        i, j = lo - self.first_index, hi - self.first_index
        start = self.offsets[i]
        end = self.offsets[j] if j < len(self.offsets) else self.size
        data = os.pread(self.fd, end - start, start)
        scan = scan_records(data, 0, lo, self.seqnos[i])
        if scan.problem is not None or len(scan.offsets) != j - i:
            index = lo + len(scan.offsets)
            raise OSError(
                f"{self.path}: damaged since it was written: "
                f"{scan.problem or 'file shorter than expected'} at index {index}"
            )
        ends = [*scan.offsets[1:], scan.end]
        return [data[off + RECORD.size : e] for off, e in zip(scan.offsets, ends, strict=True)]

    def truncate_at(self, position: int, sync: bool) -> None:
        """Keep the first `position` records."""
        end = self.offsets[position] if position < len(self.offsets) else self.size
        os.ftruncate(self.fd, end)
        if sync:
            os.fsync(self.fd)
        del self.offsets[position:]
        del self.seqnos[position:]
        del self.kinds[position:]
        self.size = end

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
