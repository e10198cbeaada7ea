"""Server replies the proxy builds itself (OK, ERR, EOF, text result sets) and parses
(OK, ERR, column definitions, text rows) for the backend client and the session state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proxy.protocol.constants import (
    EOF_HEADER,
    ERR_HEADER,
    MAX_FRAME,
    UTF8MB4_GENERAL_CI,
    FieldType,
)
from proxy.protocol.wire import (
    ProtocolError,
    frame,
    lenenc_bytes,
    lenenc_int,
    read_lenenc_bytes,
    read_lenenc_int,
)


@dataclass(frozen=True, slots=True)
class OkPacket:
    affected_rows: int
    last_insert_id: int
    status_flags: int
    warnings: int
    info: bytes = b""

    @classmethod
    def parse(cls, payload: bytes) -> OkPacket:
        if not payload or payload[0] not in (0x00, EOF_HEADER):
            raise ProtocolError("not an OK packet")
        affected, pos = read_lenenc_int(payload, 1)
        insert_id, pos = read_lenenc_int(payload, pos)
        if pos + 4 > len(payload):
            raise ProtocolError("truncated OK packet")
        status = int.from_bytes(payload[pos : pos + 2], "little")
        warnings = int.from_bytes(payload[pos + 2 : pos + 4], "little")
        return cls(affected, insert_id, status, warnings, payload[pos + 4 :])

    def encode(self, header: int = 0x00) -> bytes:
        return (
            bytes((header,))
            + lenenc_int(self.affected_rows)
            + lenenc_int(self.last_insert_id)
            + self.status_flags.to_bytes(2, "little")
            + self.warnings.to_bytes(2, "little")
            + self.info
        )


@dataclass(frozen=True, slots=True)
class ErrPacket:
    code: int
    sqlstate: str
    message: str

    @classmethod
    def parse(cls, payload: bytes) -> ErrPacket:
        if len(payload) < 3 or payload[0] != ERR_HEADER:
            raise ProtocolError("not an ERR packet")
        code = int.from_bytes(payload[1:3], "little")
        if payload[3:4] == b"#":
            return cls(code, payload[4:9].decode("ascii", "replace"), _text(payload[9:]))
        return cls(code, "HY000", _text(payload[3:]))

    def encode(self) -> bytes:
        state = self.sqlstate.encode("ascii")[:5].ljust(5, b"0")
        return b"\xff" + self.code.to_bytes(2, "little") + b"#" + state + self.message.encode()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def eof_payload(status_flags: int, warnings: int = 0) -> bytes:
    return b"\xfe" + warnings.to_bytes(2, "little") + status_flags.to_bytes(2, "little")


def err_packet(code: int, sqlstate: str, message: str, seq: int) -> bytes:
    """Wire bytes of an ERR packet, the common way the proxy refuses something."""
    return frame(ErrPacket(code, sqlstate, message).encode(), seq)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: int = FieldType.VAR_STRING
    charset: int = UTF8MB4_GENERAL_CI
    length: int = 1024
    table: str = ""
    schema: str = ""
    flags: int = 0
    decimals: int = 0

    def encode(self) -> bytes:
        name = self.name.encode()
        table = self.table.encode()
        return b"".join(
            (
                lenenc_bytes(b"def"),
                lenenc_bytes(self.schema.encode()),
                lenenc_bytes(table),
                lenenc_bytes(table),
                lenenc_bytes(name),
                lenenc_bytes(name),
                b"\x0c",
                self.charset.to_bytes(2, "little"),
                self.length.to_bytes(4, "little"),
                bytes((self.type,)),
                self.flags.to_bytes(2, "little"),
                bytes((self.decimals,)),
                b"\x00\x00",
            )
        )

    @classmethod
    def parse(cls, payload: bytes) -> Column:
        fields = []
        pos = 0
        for _ in range(6):
            value, pos = read_lenenc_bytes(payload, pos)
            fields.append(value or b"")
        _, pos = read_lenenc_int(payload, pos)  # length of the fixed fields, always 0x0c
        if pos + 10 > len(payload):
            raise ProtocolError("truncated column definition")
        return cls(
            name=_text(fields[4]),
            type=payload[pos + 6],
            charset=int.from_bytes(payload[pos : pos + 2], "little"),
            length=int.from_bytes(payload[pos + 2 : pos + 6], "little"),
            table=_text(fields[2]),
            schema=_text(fields[1]),
            flags=int.from_bytes(payload[pos + 7 : pos + 9], "little"),
            decimals=payload[pos + 9],
        )


Row = tuple[bytes | None, ...]


def encode_text_row(row: Iterable[bytes | str | int | float | None]) -> bytes:
    out = []
    for value in row:
        if value is None:
            out.append(b"\xfb")
        elif isinstance(value, bytes):
            out.append(lenenc_bytes(value))
        else:
            out.append(lenenc_bytes(str(value).encode()))
    return b"".join(out)


def parse_text_row(payload: bytes, columns: int) -> Row:
    values = []
    pos = 0
    for _ in range(columns):
        value, pos = read_lenenc_bytes(payload, pos)
        values.append(value)
    if pos != len(payload):
        raise ProtocolError("text row longer than its columns")
    return tuple(values)


def text_result_set(
    columns: Sequence[Column],
    rows: Iterable[Iterable[bytes | str | int | float | None]],
    *,
    deprecate_eof: bool,
    status_flags: int,
    first_seq: int = 1,
) -> bytes:
    """Wire bytes of a whole text result set, as the server would send it in reply to a
    COM_QUERY whose packet had sequence id `first_seq - 1`."""
    payloads = [lenenc_int(len(columns))]
    payloads += [col.encode() for col in columns]
    if not deprecate_eof:
        payloads.append(eof_payload(status_flags))
    payloads += [encode_text_row(row) for row in rows]
    if deprecate_eof:
        payloads.append(OkPacket(0, 0, status_flags, 0).encode(EOF_HEADER))
    else:
        payloads.append(eof_payload(status_flags))
    return _frames(payloads, first_seq)


@dataclass(frozen=True, slots=True)
class ResultSet:
    """A text result set the proxy answers a query with."""

    columns: Sequence[Column]
    rows: Sequence[Sequence[bytes | str | int | float | None]]


LocalReply = ResultSet | OkPacket | ErrPacket


def encode_reply(reply: LocalReply, *, seq: int, deprecate_eof: bool, status_flags: int) -> bytes:
    """Wire bytes answering a command whose last packet had sequence id `seq - 1`."""
    if isinstance(reply, ResultSet):
        return text_result_set(
            reply.columns,
            reply.rows,
            deprecate_eof=deprecate_eof,
            status_flags=status_flags,
            first_seq=seq,
        )
    return frame(reply.encode(), seq)


def _frames(payloads: Sequence[bytes], seq: int) -> bytes:
    out = []
    for payload in payloads:
        out.append(frame(payload, seq))
        seq += len(payload) // MAX_FRAME + 1
    return b"".join(out)
