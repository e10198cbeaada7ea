"""Parameter types in COM_STMT_EXECUTE: found, put back, malformed packets refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.protocol.stmt_execute import bound_types, with_types
from proxy.protocol.wire import ProtocolError
from proxy.session import Session


def _execute(params: int, types: bytes | None, values: bytes) -> bytes:
    head = b"\x17" + (7).to_bytes(4, "little") + b"\x00" + (1).to_bytes(4, "little")
    if params == 0:
        return head + values
    bitmap = bytes((params + 7) // 8)
    bound = b"\x01" + types if types is not None else b"\x00"
    return head + bitmap + bound + values


@given(st.integers(1, 40), st.binary(max_size=64), st.data())
def test_types_put_back_read_as_sent(params: int, values: bytes, data: st.DataObject) -> None:
    types = data.draw(st.binary(min_size=2 * params, max_size=2 * params))
    with_them = _execute(params, types, values)
    without = _execute(params, None, values)
    assert bound_types(with_them, params) == types
    assert bound_types(without, params) is None
    assert with_types(without, params, types) == with_them


def test_no_parameters_no_types() -> None:
    assert bound_types(_execute(0, None, b""), 0) is None


@pytest.mark.parametrize(
    "payload",
    [b"\x17" + bytes(9), b"\x17" + bytes(10), _execute(3, b"\x08\x00", b"")],
    ids=["no bitmap", "no flag", "types cut"],
)
def test_malformed_execute_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        bound_types(payload, 3)


def test_session_keeps_types_the_backend_never_got() -> None:
    session = Session(1, "peer")
    session.params[7] = 2
    first = _execute(2, b"\xfd\x00\x08\x00", b"v")
    session.begin_execute(first)  # answered by the proxy: never sent
    later = _execute(2, None, b"w")
    session.begin_execute(later)
    assert session.execute_to_send(later) == _execute(2, b"\xfd\x00\x08\x00", b"w")
    assert session.execute_to_send(later) is None  # once: the backend has them now
    session.begin_execute(first)
    assert session.execute_to_send(first) is None  # they travel with it anyway
    session.closed_statement(7)
    assert not session.params and not session.unsent_types
