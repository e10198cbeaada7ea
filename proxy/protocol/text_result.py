"""Reads one text-protocol result (the reply to a COM_QUERY) straight out of a packet
buffer: the proxy's own queries (drain, appliers, commit, TOI) go through here.

Sans-I/O: `TextResultReader.read(packets)` consumes every whole packet the `PacketReader`
holds and returns the result once its last packet is in (None: feed more bytes). The hot
path walks frame headers in one loop, parses a row's values in one loop, and keeps
column definitions as raw payloads: internal queries read only row values, so
`QueryResult.columns` parses them on first use. Packets split in 0xffffff frames go
through `PacketReader.next_packet`.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.protocol.constants import (
    EOF_HEADER,
    ERR_HEADER,
    HEADER_LEN,
    LOCAL_INFILE_HEADER,
    MAX_FRAME,
)
from proxy.protocol.packet_reader import PacketReader, PacketTooLarge
from proxy.protocol.results import Column, ErrPacket, Row
from proxy.protocol.wire import ProtocolError, read_lenenc_int


class QueryResult:
    """One statement's result: OK counters, or rows of raw values (None for NULL)."""

    __slots__ = (
        "_columns",
        "affected_rows",
        "column_defs",
        "last_insert_id",
        "rows",
        "status_flags",
        "warnings",
    )

    def __init__(
        self,
        column_defs: tuple[bytes, ...] = (),
        rows: list[Row] | None = None,
        affected_rows: int = 0,
        last_insert_id: int = 0,
        status_flags: int = 0,
        warnings: int = 0,
    ) -> None:
        self.column_defs = column_defs  # column definition payloads, as the server sent them
        self.rows: list[Row] = [] if rows is None else rows
        self.affected_rows = affected_rows
        self.last_insert_id = last_insert_id
        self.status_flags = status_flags
        self.warnings = warnings
        self._columns: tuple[Column, ...] | None = None

    @property
    def columns(self) -> tuple[Column, ...]:
        """The column definitions, parsed on first use (ProtocolError if malformed)."""
        if self._columns is None:
            self._columns = tuple([Column.parse(payload) for payload in self.column_defs])
        return self._columns

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns)

    def __repr__(self) -> str:
        return (
            f"QueryResult({len(self.column_defs)} columns, {len(self.rows)} rows, "
            f"affected={self.affected_rows}, status={self.status_flags:#x})"
        )


@dataclass(frozen=True, slots=True)
class LocalInfileRequest:
    """The server asks for a LOAD DATA LOCAL file; answer with packet `seq`, then read on."""

    seq: int


# Reader states.
_FIRST = 0  # OK, ERR, LOCAL INFILE request or the column count
_DEFS = 1  # column definitions, `_left` to go
_DEFS_EOF = 2  # the EOF after the definitions (without CLIENT_DEPRECATE_EOF)
_ROWS = 3  # rows until the terminating EOF/OK, or an ERR


class TextResultReader:
    """One result; a new reader per result (a multi-statement reply has several)."""

    __slots__ = ("_defs", "_eof_limit", "_left", "_rows", "_state", "deprecate_eof")

    def __init__(self, deprecate_eof: bool) -> None:
        self.deprecate_eof = deprecate_eof
        # With DEPRECATE_EOF the result ends with an OK packet that starts with 0xfe; a row
        # can start with 0xfe only as a >= 16 MiB string, i.e. in a split packet.
        self._eof_limit = MAX_FRAME if deprecate_eof else 9
        self._state = _FIRST
        self._left = 0
        self._defs: list[bytes] = []
        self._rows: list[Row] = []

    def read(self, packets: PacketReader) -> QueryResult | ErrPacket | LocalInfileRequest | None:
        """Consumes the whole packets buffered in `packets` up to the end of the result;
        None when the result goes on in bytes not received yet. An ERR ends the result
        (the connection stays usable)."""
        buf = packets.buffer
        data = bytes(buf)
        end = len(data)
        pos = 0
        try:
            while end - pos >= HEADER_LEN:
                length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
                if length == MAX_FRAME:
                    del buf[:pos]
                    pos = 0
                    packet = packets.next_packet()
                    if packet is None:
                        return None
                    outcome = self._packet(packet.payload, 0, len(packet.payload), packet.seq)
                    if outcome is not None:
                        return outcome
                    data = bytes(buf)
                    end = len(data)
                    continue
                start = pos + HEADER_LEN
                stop = start + length
                if stop > end:
                    if length > packets.max_payload:
                        raise PacketTooLarge(
                            f"packet of {length} bytes exceeds {packets.max_payload}"
                        )
                    break
                pos = stop
                if self._state == _ROWS and length and data[start] < EOF_HEADER:
                    self._rows.append(_text_row(data, start, stop, self._left))
                    continue
                outcome = self._packet(data, start, stop, data[start - 1])
                if outcome is not None:
                    del buf[:pos]
                    pos = 0
                    return outcome
        finally:
            if pos:
                del buf[:pos]
        return None

    def _packet(
        self, data: bytes, start: int, stop: int, seq: int
    ) -> QueryResult | ErrPacket | LocalInfileRequest | None:
        """Every packet but a plain row; the outcome if it ends the result."""
        if start == stop:
            raise ProtocolError("empty packet in a result from the server")
        first = data[start]
        if first == ERR_HEADER:
            return ErrPacket.parse(data[start:stop])
        state = self._state
        if state == _ROWS:
            if first == EOF_HEADER and stop - start < self._eof_limit:
                status, warnings = self._terminator(data, start, stop)
                return QueryResult(tuple(self._defs), self._rows, 0, 0, status, warnings)
            self._rows.append(_text_row(data, start, stop, self._left))
        elif state == _DEFS:
            self._defs.append(data[start:stop])
            if len(self._defs) == self._left:
                self._state = _ROWS if self.deprecate_eof else _DEFS_EOF
        elif state == _DEFS_EOF:
            self._state = _ROWS
        elif first == 0x00:
            affected, insert_id, status, warnings = _ok_fields(data, start, stop)
            return QueryResult((), [], affected, insert_id, status, warnings)
        elif first == LOCAL_INFILE_HEADER:
            return LocalInfileRequest((seq + 1) & 0xFF)
        else:
            count, at = read_lenenc_int(data, start)
            if count <= 0 or at > stop:
                raise ProtocolError(f"bad column count {count} in a result")
            self._left = count
            self._state = _DEFS
        return None

    def _terminator(self, data: bytes, start: int, stop: int) -> tuple[int, int]:
        """(status flags, warnings) of the EOF/OK packet that ends the rows."""
        if self.deprecate_eof:
            _, _, status, warnings = _ok_fields(data, start, stop)
            return status, warnings
        if stop - start < 5:
            raise ProtocolError("truncated EOF packet")
        return data[start + 3] | data[start + 4] << 8, data[start + 1] | data[start + 2] << 8


def _ok_fields(data: bytes, start: int, stop: int) -> tuple[int, int, int, int]:
    """(affected rows, last insert id, status flags, warnings) of an OK packet."""
    if stop - start >= 7 and data[start + 1] < 0xFB and data[start + 2] < 0xFB:  # small counts
        affected, insert_id, pos = data[start + 1], data[start + 2], start + 3
    else:
        affected, pos = read_lenenc_int(data, start + 1)
        insert_id, pos = read_lenenc_int(data, pos)
    if pos + 4 > stop:
        raise ProtocolError("truncated OK packet")
    return affected, insert_id, data[pos] | data[pos + 1] << 8, data[pos + 2] | data[pos + 3] << 8


_LENGTH_BYTES = {0xFC: 2, 0xFD: 3, 0xFE: 8}


def _text_row(data: bytes, pos: int, stop: int, columns: int) -> Row:
    """The values of the text row in data[pos:stop]. Positions only grow, so a value
    that runs past the packet shows as a final position beyond `stop`."""
    values: list[bytes | None] = []
    append = values.append
    try:
        for _ in range(columns):
            first = data[pos]
            if first < 0xFB:
                pos += 1 + first
                append(data[pos - first : pos])
            elif first == 0xFB:
                pos += 1
                append(None)
            else:
                size = _LENGTH_BYTES.get(first)
                if size is None:
                    raise ProtocolError("0xff is not a length-encoded integer")
                length = int.from_bytes(data[pos + 1 : pos + 1 + size], "little")
                pos += 1 + size + length
                append(data[pos - length : pos])
    except IndexError:
        raise ProtocolError("truncated text row") from None
    if pos != stop:
        raise ProtocolError(
            "text row longer than its columns" if pos < stop else "truncated text row"
        )
    return tuple(values)
