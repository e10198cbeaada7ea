"""`wsrepctl proxy`: the MySQL-protocol proxy alone, in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

import trio

from proxy.server import ProxyConfig, serve_proxy

log = logging.getLogger("wsrep.proxy")


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "proxy", help="run the MySQL-protocol proxy in front of one backend (foreground)"
    )
    parser.add_argument("--listen", type=_address, required=True, metavar="HOST:PORT")
    parser.add_argument("--backend", type=_address, required=True, metavar="HOST:PORT")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate offered to clients")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument("--max-connections", type=int, default=1000)
    parser.add_argument("--handshake-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--max-packet-size", type=int, default=1 << 30, metavar="BYTES")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        log.error("--tls-cert and --tls-key go together")
        return 2
    config = ProxyConfig(
        listen_host=args.listen[0],
        listen_port=args.listen[1],
        backend_host=args.backend[0],
        backend_port=args.backend[1],
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        max_connections=args.max_connections,
        handshake_timeout=args.handshake_timeout,
        max_packet_size=args.max_packet_size,
    )
    failed: list[BaseException] = []
    try:
        trio.run(_main, config)
    except* OSError as group:  # unusable certificate, address in use...
        failed += group.exceptions
    if failed:
        log.error("proxy failed to start: %s", failed[0])
        return 1
    return 0


async def _main(config: ProxyConfig) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        await nursery.start(serve_proxy, config)


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("proxy stopping on %s", signal.Signals(signum).name)
            scope.cancel()
            return
