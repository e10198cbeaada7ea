"""Member addresses: "host:port" and Galera-style "gcomm://host:port,host:port" lists."""

from __future__ import annotations

GROUP_SCHEME = "gcomm://"


def parse_address(address: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6]:port"; ValueError with the reason."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"bad member address {address!r}: expected host:port")
    host = host.removeprefix("[").removesuffix("]")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in member address {address!r}")
    return host, int(port_text)


def parse_group(url: str) -> tuple[str, ...]:
    """Seed addresses from "gcomm://a:1,b:2" (the scheme is optional; empty = bootstrap)."""
    body = url.strip().removeprefix(GROUP_SCHEME)
    addresses = tuple(a.strip() for a in body.split(",") if a.strip())
    for a in addresses:
        parse_address(a)
    return addresses
