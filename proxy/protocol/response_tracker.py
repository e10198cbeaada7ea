"""Finds where the backend's response to one command ends, without parsing rows.

The relay forwards the backend's bytes as they arrive; this tracker walks packet headers
in them and inspects only what decides the shape of the response: the first payload byte
of a packet, column/parameter counts, and the status flags of OK/EOF packets
(SERVER_MORE_RESULTS_EXISTS: another result follows; CURSOR_EXISTS: rows come later by
COM_STMT_FETCH). That covers text and binary result sets, multi-results, CLIENT_DEPRECATE_EOF
on and off, COM_STMT_PREPARE, LOAD DATA LOCAL INFILE (the response pauses while the
client sends the file) and packets split in 0xffffff frames.
"""

from __future__ import annotations

from proxy.protocol.constants import (
    EOF_HEADER,
    ERR_HEADER,
    HEADER_LEN,
    LOCAL_INFILE_HEADER,
    MAX_FRAME,
    OK_HEADER,
    Command,
    ServerStatus,
)
from proxy.protocol.wire import ProtocolError, read_lenenc_int

# Enough payload bytes to read the status flags of any OK packet (header byte, two
# 9-byte length-encoded integers, 2 status bytes) or a COM_STMT_PREPARE OK.
_INSPECT = 21

# Tracker states.
_FIRST = 0  # first packet of a result: OK, ERR, LOCAL INFILE request or column count
_DEFS = 1  # column or parameter definitions, `_left` to go
_DEFS_EOF = 2  # the EOF closing a block of definitions (without DEPRECATE_EOF)
_ROWS = 3  # rows until EOF/OK (or ERR)
_SINGLE = 4  # exactly one packet, whatever it is
_UNTIL_EOF = 5  # COM_FIELD_LIST: definitions until EOF/ERR
_PREPARE = 6  # COM_STMT_PREPARE's first packet
_PREPARE_COLUMNS = 7  # pseudo-state: the prepared statement's column block comes next
_DONE = 8

# Plain ints: IntFlag arithmetic goes through Python-level enum code, too slow here.
_MORE_RESULTS = int(ServerStatus.MORE_RESULTS_EXISTS)
_CURSOR_EXISTS = int(ServerStatus.CURSOR_EXISTS)
_STMT_EXECUTE = int(Command.STMT_EXECUTE)

_FIRST_STATE = {
    Command.QUERY: _FIRST,
    Command.PROCESS_INFO: _FIRST,
    Command.STMT_EXECUTE: _FIRST,
    Command.STMT_FETCH: _ROWS,
    Command.STMT_PREPARE: _PREPARE,
    Command.FIELD_LIST: _UNTIL_EOF,
}

# Commands the server never answers.
NO_RESPONSE = frozenset({Command.STMT_CLOSE, Command.STMT_SEND_LONG_DATA, Command.QUIT})


class ResponseTracker:
    """Feed backend bytes after sending a command; `feed` says where the response ends.

    Reused for every command of a session: call `start(command)` first.
    """

    __slots__ = (
        "_after_defs",
        "_command",
        "_continued",
        "_eof_limit",
        "_first_seq",
        "_head",
        "_left",
        "_pending_columns",
        "_skip",
        "_state",
        "deprecate_eof",
        "error",
        "last_seq",
        "local_infile",
        "params",
        "status_flags",
        "stmt_id",
    )

    def __init__(self, deprecate_eof: bool) -> None:
        self.deprecate_eof = deprecate_eof
        # With DEPRECATE_EOF a result set ends with an OK packet that starts with 0xfe;
        # a row can start with 0xfe only as a >= 16 MiB string, i.e. in a full frame.
        self._eof_limit = MAX_FRAME if deprecate_eof else 9
        self.status_flags = 0  # of the last OK/EOF seen, kept across commands
        self.start(Command.PING)

    def start(self, command: int, first_seq: int = -1) -> None:
        """`first_seq`: the sequence id the response must start with (the command's last
        one + 1), so that stray bytes from the backend are not taken for the answer."""
        self._command = command
        self._first_seq = first_seq
        self._state = _FIRST_STATE.get(command, _SINGLE)  # type: ignore[call-overload]
        self._skip = 0
        self._head = bytearray()
        self._left = 0
        self._pending_columns = 0
        self._after_defs = _DONE
        self._continued = False
        self.last_seq = -1
        self.local_infile = False
        self.stmt_id = -1
        self.params = 0
        self.error = False

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def at_packet_boundary(self) -> bool:
        return not self._skip and not self._head

    def resume_after_local_infile(self) -> None:
        """The client has sent the file (or an empty packet): OK/ERR follows."""
        self.local_infile = False
        self._state = _FIRST
        self._first_seq = -1

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        """Offset in `data` just past the end of the response (or of the LOCAL INFILE
        request), or -1 if the response goes on in later bytes."""
        end = len(data)
        pos = self._skip
        if pos:
            if pos > end:
                self._skip = pos - end
                return -1
            self._skip = 0
            if self._state == _DONE or self.local_infile:
                return pos
        elif self._head:
            pos = self._complete_head(data)
            if pos < 0:
                return -1
            if pos > end:
                self._skip = pos - end
                return -1
            if self._state == _DONE or self.local_infile:
                return pos
        while pos < end:
            if self._state == _ROWS and not self._continued and self._first_seq < 0:
                # The bulk of a result set: skip rows looking at a length and one byte each.
                last = -1
                while pos + HEADER_LEN < end:
                    length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
                    if data[pos + 4] >= EOF_HEADER or length == MAX_FRAME:
                        break  # a terminator, an error or a split row: the careful path
                    last = pos
                    pos += HEADER_LEN + length
                if last >= 0:
                    self.last_seq = data[last + 3]
                if pos >= end:
                    break
            if end - pos < HEADER_LEN:
                self._head = bytearray(data[pos:])
                return -1
            length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            if end - pos < HEADER_LEN + (length if length < _INSPECT else _INSPECT):
                self._head = bytearray(data[pos:])
                return -1
            self._on_packet(data, pos, length)
            pos += HEADER_LEN + length
            if self._state == _DONE or self.local_infile:
                if pos > end:
                    self._skip = pos - end
                    return -1
                return pos
        if pos > end:
            self._skip = pos - end
        return -1

    def _complete_head(self, data: bytes | bytearray | memoryview) -> int:
        """Completes a packet head split across chunks; position in `data` after that
        packet, or -1 if still incomplete."""
        head = self._head
        had = len(head)  # bytes of this packet seen in earlier chunks
        if had < HEADER_LEN:
            head += data[: HEADER_LEN - had]
            if len(head) < HEADER_LEN:
                return -1
        length = head[0] | head[1] << 8 | head[2] << 16
        need = HEADER_LEN + min(length, _INSPECT)
        if len(head) < need:
            head += data[len(head) - had : need - had]
            if len(head) < need:
                return -1
        self._head = bytearray()
        self._on_packet(head, 0, length)
        return HEADER_LEN + length - had

    def _on_packet(self, buf: bytes | bytearray | memoryview, pos: int, length: int) -> None:
        if self._first_seq >= 0:
            if buf[pos + 3] != self._first_seq & 0xFF:
                raise ProtocolError(
                    f"response starts with sequence id {buf[pos + 3]}, "
                    f"expected {self._first_seq & 0xFF}"
                )
            self._first_seq = -1
        self.last_seq = buf[pos + 3]
        if self._continued:  # the rest of a packet split in frames: nothing to look at
            self._continued = length == MAX_FRAME
            return
        self._continued = length == MAX_FRAME
        state = self._state
        if length == 0:
            if state != _SINGLE:
                raise ProtocolError(f"empty packet in a response to {self._command:#x}")
            self._state = _DONE
            return
        first = buf[pos + 4]
        if state == _DEFS:
            self._left -= 1
            if not self._left:
                if self.deprecate_eof:
                    self._enter(self._after_defs)
                else:
                    self._state = _DEFS_EOF
        elif state == _ROWS:
            if first == EOF_HEADER and length < self._eof_limit:
                self._end_of_result(self._status(buf, pos, first))
            elif first == ERR_HEADER:
                self._fail()
        elif state == _FIRST:
            self._first_packet(buf, pos, first, length)
        elif state == _DEFS_EOF:
            if first == ERR_HEADER:
                self._fail()
                return
            status = self.status_flags = self._status(buf, pos, first)
            if self._command == _STMT_EXECUTE and status & _CURSOR_EXISTS:
                self._state = _DONE
            else:
                self._enter(self._after_defs)
        elif state == _SINGLE:
            if first in (OK_HEADER, EOF_HEADER):
                self.status_flags = self._status(buf, pos, first)
            self.error = first == ERR_HEADER
            self._state = _DONE
        elif state == _UNTIL_EOF:
            if first == EOF_HEADER:
                self.status_flags = self._status(buf, pos, first)
                self._state = _DONE
            elif first == ERR_HEADER:
                self._fail()
        elif state == _PREPARE:
            if first != OK_HEADER:
                self._fail()
                return
            if length < 12:
                raise ProtocolError(f"COM_STMT_PREPARE OK of {length} bytes")
            self.stmt_id = int.from_bytes(buf[pos + 5 : pos + 9], "little")
            self._pending_columns = buf[pos + 9] | buf[pos + 10] << 8
            self.params = params = buf[pos + 11] | buf[pos + 12] << 8
            if params:
                self._defs(params, _PREPARE_COLUMNS)
            else:
                self._enter(_PREPARE_COLUMNS)
        else:
            raise ProtocolError(f"packet after the end of a response to {self._command:#x}")

    def _first_packet(
        self, buf: bytes | bytearray | memoryview, pos: int, first: int, length: int
    ) -> None:
        if first == OK_HEADER or (first == EOF_HEADER and length < self._eof_limit):
            self._end_of_result(self._status(buf, pos, first))
        elif first == ERR_HEADER:
            self._fail()
        elif first == LOCAL_INFILE_HEADER:
            if self._command != Command.QUERY:
                raise ProtocolError("LOCAL INFILE request outside COM_QUERY")
            self.local_infile = True
        else:
            columns, _ = read_lenenc_int(buf, pos + 4)
            if columns <= 0:
                raise ProtocolError(f"bad column count {columns}")
            self._defs(columns, _ROWS)

    def _fail(self) -> None:
        self.error = True
        self._state = _DONE

    def _defs(self, count: int, after: int) -> None:
        self._state = _DEFS
        self._left = count
        self._after_defs = after

    def _enter(self, state: int) -> None:
        if state == _PREPARE_COLUMNS:
            if self._pending_columns:
                self._defs(self._pending_columns, _DONE)
            else:
                self._state = _DONE
        else:
            self._state = state

    def _end_of_result(self, status: int) -> None:
        self.status_flags = status
        self._state = _FIRST if status & _MORE_RESULTS else _DONE

    def _status(self, buf: bytes | bytearray | memoryview, pos: int, first: int) -> int:
        """Status flags of an OK packet, or of an EOF packet (without DEPRECATE_EOF)."""
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        if first == EOF_HEADER and not self.deprecate_eof:
            return buf[pos + 7] | buf[pos + 8] << 8 if length >= 5 else 0
        if length >= 5 and buf[pos + 5] < 0xFB and buf[pos + 6] < 0xFB:  # small counts
            return buf[pos + 7] | buf[pos + 8] << 8
        _, at = read_lenenc_int(buf, pos + 5)
        _, at = read_lenenc_int(buf, at)
        if at + 2 > pos + HEADER_LEN + length:
            raise ProtocolError("OK packet too short for its status flags")
        return buf[at] | buf[at + 1] << 8
