"""How the fuzzed proxies are configured, and how long a bad session may take to end."""

from __future__ import annotations

HANDSHAKE_TIMEOUT = 2.0  # seconds; a backstop for fuzz cases that leave the proxy waiting
MAX_PACKET = 1 << 20  # the proxy's client packet limit here, so "oversized" stays cheap
PROXY_OPTIONS = [
    "--handshake-timeout",
    str(HANDSHAKE_TIMEOUT),
    "--max-packet-size",
    str(MAX_PACKET),
]
CASE_TIMEOUT = HANDSHAKE_TIMEOUT + 8  # the proxy must be done with a bad session by then
