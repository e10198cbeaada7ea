"""The bench's baseline: a bare trio TCP relay that knows nothing of MySQL.

Accept, connect to the backend, pump bytes both ways until either side closes. Whatever
the proxy costs beyond this is the price of its MySQL awareness.

    python bench/bare_relay.py --listen 127.0.0.1:0 --backend 127.0.0.1:3306

Logs `relay listening on HOST:PORT` to stderr when ready; exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys

import trio

log = logging.getLogger("wsrep.bench.relay")


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def _pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    async for chunk in src:
        await dst.send_all(chunk)


async def _relay(client: trio.SocketStream, backend: tuple[str, int]) -> None:
    async with client:
        try:
            server = await trio.open_tcp_stream(*backend)
        except OSError as exc:
            log.warning("backend %s:%d unreachable: %s", *backend, exc)
            return
        async with server, trio.open_nursery() as nursery:

            async def one_way(src: trio.SocketStream, dst: trio.SocketStream) -> None:
                # Either side closing ends the session: cancel the opposite pump.
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await _pump(src, dst)
                nursery.cancel_scope.cancel()

            nursery.start_soon(one_way, client, server)
            nursery.start_soon(one_way, server, client)


async def serve_relay(
    listen: tuple[str, int],
    backend: tuple[str, int],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    listeners = await trio.open_tcp_listeners(listen[1], host=listen[0])
    port = int(listeners[0].socket.getsockname()[1])
    log.info("relay listening on %s:%d", listen[0], port)
    task_status.started(port)

    async def handler(stream: trio.SocketStream) -> None:
        await _relay(stream, backend)

    await trio.serve_listeners(handler, listeners)


async def _main(listen: tuple[str, int], backend: tuple[str, int]) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await nursery.start(serve_relay, listen, backend)
            async for signum in signals:
                log.info("relay stopping on %s", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=host_port, required=True, metavar="HOST:PORT")
    parser.add_argument("--backend", type=host_port, required=True, metavar="HOST:PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    trio.run(_main, args.listen, args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
