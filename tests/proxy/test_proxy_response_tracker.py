"""The response tracker against real MariaDB byte streams and built ones, cut anywhere."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxy_captures import Capture, capture_responses

from proxy.managed_mariadb import MariaDBServer
from proxy.protocol.constants import Command, ServerStatus
from proxy.protocol.response_tracker import ResponseTracker
from proxy.protocol.results import Column, text_result_set
from proxy.protocol.wire import ProtocolError, frame


class Captures(dict[str, Capture]):
    def __repr__(self) -> str:  # hypothesis prints it on failure: keep it short
        return f"<{len(self)} captures>"


@pytest.fixture(scope="module")
def captures(mariadb: MariaDBServer) -> Captures:
    return Captures((c.name, c) for c in capture_responses(mariadb.host, mariadb.port))


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def track(tracker: ResponseTracker, chunks: list[bytes]) -> int:
    """Feeds chunks; the total offset where the tracker said the response ends."""
    seen = 0
    for chunk in chunks:
        end = tracker.feed(chunk)
        if end >= 0:
            return seen + end
        seen += len(chunk)
    return -1


def replay(capture: Capture, cuts: list[int], trailing: bytes = b"") -> tuple[int, ResponseTracker]:
    tracker = ResponseTracker(capture.deprecate_eof)
    tracker.start(capture.command, first_seq=1)  # every capture answers a seq-0 command
    if capture.local_infile_file is None:
        return track(tracker, cut(capture.response + trailing, cuts)), tracker
    request, rest = capture.response[: capture.request_len], capture.response[capture.request_len :]
    assert track(tracker, cut(request, cuts)) == len(request)
    assert tracker.local_infile
    tracker.resume_after_local_infile()
    return len(request) + track(tracker, cut(rest + trailing, cuts)), tracker


def test_every_capture_ends_exactly_at_its_end(captures: dict[str, Capture]) -> None:
    assert len(captures) >= 50
    for capture in captures.values():
        end, tracker = replay(capture, [])
        assert end == len(capture.response), capture.name
        assert tracker.done
        assert tracker.at_packet_boundary


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_chunking_of_real_responses(captures: dict[str, Capture], data: st.DataObject) -> None:
    names = sorted(n for n in captures if not n.startswith("big_row"))
    capture = captures[data.draw(st.sampled_from(names))]
    size = len(capture.response)
    cuts = data.draw(st.lists(st.integers(0, size), max_size=30))
    # Bytes after the response (the next response) must not be taken as part of it.
    end, _ = replay(capture, cuts, trailing=b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00")
    assert end == size, capture.name


@pytest.mark.parametrize("deprecate", [True, False])
def test_split_row_over_16_mib(captures: dict[str, Capture], deprecate: bool) -> None:
    capture = captures[f"big_row_deprecate={deprecate}"]
    assert len(capture.response) > 16_777_300
    frame_end = capture.response.index(b"\xff\xff\xff")
    for cuts in (
        [],
        [frame_end + 2],
        [frame_end + 4 + 0xFFFFFF + 2],
        list(range(0, 17 << 20, 1 << 20)),
    ):
        assert replay(capture, cuts)[0] == len(capture.response)


def test_status_flags_and_statement_ids(captures: dict[str, Capture]) -> None:
    for deprecate in (True, False):
        _, tracker = replay(captures[f"execute_cursor_deprecate={deprecate}"], [])
        assert tracker.status_flags & ServerStatus.CURSOR_EXISTS
        _, tracker = replay(captures[f"fetch_2_deprecate={deprecate}"], [])
        assert tracker.status_flags & ServerStatus.LAST_ROW_SENT
        _, tracker = replay(captures[f"fetch_3_deprecate={deprecate}"], [])
        assert tracker.error  # the cursor is exhausted and closed
        _, tracker = replay(captures[f"prepare_deprecate={deprecate}"], [])
        assert tracker.stmt_id > 0 and not tracker.error
        _, tracker = replay(captures[f"error_deprecate={deprecate}"], [])
        assert tracker.error
        _, tracker = replay(captures[f"multi_error_deprecate={deprecate}"], [])
        assert tracker.error
        _, tracker = replay(captures[f"select_rows_deprecate={deprecate}"], [])
        assert tracker.status_flags & ServerStatus.AUTOCOMMIT and not tracker.error


@given(
    deprecate=st.booleans(),
    ncols=st.integers(1, 4),
    rows=st.lists(
        st.lists(st.one_of(st.none(), st.binary(max_size=40)), min_size=4, max_size=4), max_size=20
    ),
    results=st.integers(1, 3),
    cuts=st.lists(st.integers(0, 5000), max_size=20),
)
def test_built_multi_result_sets(
    deprecate: bool, ncols: int, rows: list[list[bytes | None]], results: int, cuts: list[int]
) -> None:
    """Result sets from the proxy's own builder, chained with MORE_RESULTS_EXISTS."""
    columns = [Column(f"c{i}") for i in range(ncols)]
    wire = b""
    seq = 1
    for i in range(results):
        more = ServerStatus.MORE_RESULTS_EXISTS if i < results - 1 else 0
        part = text_result_set(
            columns,
            [r[:ncols] for r in rows],
            deprecate_eof=deprecate,
            status_flags=ServerStatus.AUTOCOMMIT | more,
            first_seq=seq,
        )
        seq += 2 + ncols + len(rows) + (0 if deprecate else 1)
        wire += part
    tracker = ResponseTracker(deprecate)
    tracker.start(Command.QUERY)
    assert track(tracker, cut(wire + b"\x01\x00\x00\x00\x00", cuts)) == len(wire)
    assert tracker.last_seq == (seq - 1) & 0xFF


@pytest.mark.parametrize(
    "response",
    [
        frame(b"", 1),  # empty first packet
        frame(b"\xfe", 1),  # an EOF/OK without its fields
        frame(b"\x00", 1),  # OK without its fields
        frame(b"\x01", 1) + frame(b"\x03def", 2) + frame(b"\x00\x00", 3) + frame(b"", 4),
    ],
)
def test_malformed_responses_raise_protocol_error(response: bytes) -> None:
    tracker = ResponseTracker(deprecate_eof=True)
    tracker.start(Command.QUERY)
    with pytest.raises(ProtocolError):
        tracker.feed(response)


def test_local_infile_only_for_com_query() -> None:
    tracker = ResponseTracker(deprecate_eof=True)
    tracker.start(Command.STMT_EXECUTE)
    with pytest.raises(ProtocolError):
        tracker.feed(frame(b"\xfbfile.csv", 1))


def test_stray_packet_is_not_taken_for_the_answer() -> None:
    """Bytes the backend sent unasked earlier would start with the wrong sequence id."""
    tracker = ResponseTracker(deprecate_eof=False)
    tracker.start(Command.PING, first_seq=1)
    with pytest.raises(ProtocolError, match="sequence id 9, expected 1"):
        tracker.feed(frame(b"\x00\x00\x00\x02\x00\x00\x00", 9))
    tracker.start(Command.STMT_FETCH, first_seq=1)
    with pytest.raises(ProtocolError):
        tracker.feed(frame(b"\x00\x00\x01", 4))


# Payloads starting with the bytes the tracker looks at, short ones included.
_payloads = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda first, rest: bytes((first,)) + rest,
        st.sampled_from([0x00, 0x01, 0x02, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF]),
        st.binary(max_size=14),
    ),
)


# One command of each response shape the tracker knows.
_SHAPES = [
    Command.QUERY,
    Command.STMT_PREPARE,
    Command.STMT_EXECUTE,
    Command.STMT_FETCH,
    Command.FIELD_LIST,
    Command.PING,
]


@pytest.mark.parametrize("command", _SHAPES)
@settings(max_examples=250)
@given(
    deprecate=st.booleans(),
    packets=st.lists(st.tuples(_payloads, st.integers(0, 255)), max_size=12),
    cuts=st.lists(st.integers(0, 600), max_size=8),
)
def test_garbage_responses_raise_only_protocol_errors(
    command: int, deprecate: bool, packets: list[tuple[bytes, int]], cuts: list[int]
) -> None:
    """Whatever a broken backend sends, the tracker ends, waits or says ProtocolError."""
    tracker = ResponseTracker(deprecate)
    tracker.start(command)
    wire = b"".join(frame(payload, seq) for payload, seq in packets)
    try:
        for chunk in cut(wire, cuts):
            if tracker.feed(chunk) >= 0:
                break
    except ProtocolError:
        pass
