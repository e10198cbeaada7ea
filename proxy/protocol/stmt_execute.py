"""COM_STMT_EXECUTE's parameter types: where they are, and putting them back.

A client sends a statement's parameter types with its first execute (or after rebinding)
and then executes with `new_params_bound_flag` 0: the server keeps the types. When the
proxy answers an execute itself (1213 for a BF-aborted transaction, 1047 on a non-primary
node), the backend never saw the types it carried, and the client's next execute of that
statement would fail with 1210 "Incorrect arguments to mysqld_stmt_execute". So the
session keeps such types and the next execute it forwards carries them again.

    payload: 0x17, statement id (4), flags (1), iteration count (4),
             [NULL bitmap ((params + 7) // 8), new_params_bound_flag (1), [types (2 each)]],
             values
"""

from __future__ import annotations

from proxy.protocol.wire import ProtocolError

_FIXED = 10  # command, statement id, flags, iteration count


def bound_types(payload: bytes, params: int) -> bytes | None:
    """The parameter types this execute sends (None when it sends none)."""
    if params == 0:
        return None
    flag_at = _FIXED + (params + 7) // 8
    if len(payload) <= flag_at:
        raise ProtocolError(f"COM_STMT_EXECUTE of {len(payload)} bytes for {params} parameters")
    if payload[flag_at] != 1:
        return None
    end = flag_at + 1 + 2 * params
    if len(payload) < end:
        raise ProtocolError(f"COM_STMT_EXECUTE cut inside its {params} parameter types")
    return payload[flag_at + 1 : end]


def with_types(payload: bytes, params: int, types: bytes) -> bytes:
    """An execute that sends no types (`bound_types` None), made to send `types`."""
    flag_at = _FIXED + (params + 7) // 8
    return payload[:flag_at] + b"\x01" + types + payload[flag_at + 1 :]
