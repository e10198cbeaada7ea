"""What the wsrep interceptor costs per COM_QUERY.

.venv/bin/python tests/status/bench_interceptor.py
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))

import trio
from status_testlib import NODE_VARIABLES, session_with, synced_status

from proxy.admission import NodeAdmission
from proxy.protocol.constants import Command
from proxy.relay import Relay
from proxy.session import Session
from proxy.wsrep_status import WsrepInterceptor
from wsrep.ordering import OrderingGate

STATEMENTS = (
    "SELECT c FROM sbtest1 WHERE id=5",
    "UPDATE sbtest1 SET k=k+1 WHERE id=5",
    "SHOW STATUS LIKE 'wsrep%'",
    "SELECT @@wsrep_sync_wait",
    "SET wsrep_sync_wait = 1",
    "SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_cluster_size')",
)


def main(calls: int = 20000) -> None:
    snapshot = synced_status()
    variables = NODE_VARIABLES.system_variables()
    icpt = WsrepInterceptor(lambda: snapshot, lambda s: variables)
    for sql in STATEMENTS:
        session = session_with(sql)
        seconds = timeit.timeit(lambda: icpt(session, sql), number=calls)  # noqa: B023
        print(f"{seconds / calls * 1e6:8.2f} us  {sql}")
    session = session_with("SELECT c FROM sbtest1 WHERE id=5", session_id=2)  # no SET
    admission = NodeAdmission(lambda: True, icpt, _never, OrderingGate(0))
    relay = cast(Relay, _Relay(session))
    seconds = timeit.timeit(lambda: session.admitted != admission.epoch, number=calls)
    print(f"{seconds / calls * 1e6:8.2f} us  relay's admission test, session admitted")
    for ready in (True, False):
        admission.ready = lambda ready=ready: ready  # type: ignore[misc]
        seconds = trio.run(_time_verdicts, admission, relay, calls)
        print(f"{seconds / calls * 1e6:8.2f} us  NodeAdmission.verdict, ready={ready}")


class _Relay:
    def __init__(self, session: Session) -> None:
        self.session = session


async def _time_verdicts(admission: NodeAdmission, relay: Relay, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await admission.verdict(relay, Command.QUERY)
    return time.perf_counter() - start


async def _never() -> int:
    raise AssertionError("no causal wait expected")


if __name__ == "__main__":
    main()
