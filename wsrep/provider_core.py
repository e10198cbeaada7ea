"""The provider's decisions, pure: what each ordered event means for this node.

Fed the group's ordered events one at a time (`deliver`, `view`), it decodes and certifies
every write set and says what to do with it (`Outcome`); views move the node state. No
I/O, no clock: every node fed the same stream makes the same decisions, which is what
keeps certification verdicts (and purges) identical cluster-wide.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Container
from dataclasses import dataclass

from certification.index import CertificationIndex, Verdict
from certification.index import Outcome as Certified
from wsrep.causal import is_causal_marker
from wsrep.group.types import MemberId, View
from wsrep.node_state import NodeState, NodeStateMachine
from wsrep.writeset import WriteSet, WriteSetFlags, WriteSetFormatError, decode

log = logging.getLogger("wsrep.provider")

# Purge the index at a fixed lag behind the stream, at the same seqnos on every node. A
# transaction whose snapshot is older than this many write sets fails as STALE (1213);
# flow control keeps every node's apply queue far below it, so dependencies dropped by
# the purge are committed everywhere already.
PURGE_LAG = 50_000
PURGE_EVERY = 1_000


class Action(enum.Enum):
    RESOLVE = "resolve"  # a local write set: tell its waiting session the verdict
    APPLY = "apply"  # passed, from elsewhere (or an abandoned local one): appliers apply it
    SKIP = "skip"  # failed certification or unreadable: owns its seqno, applies nothing


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    seqno: int
    ws: WriteSet | None  # None when the payload was not a readable write set
    verdict: Verdict | None


class ProviderCore:
    def __init__(self, node_name: str, initial_seqno: int = 0) -> None:
        self.node_name = node_name
        self.index = CertificationIndex(initial_seqno)
        self.state = NodeStateMachine(node_name)
        self.state.move(NodeState.OPEN)
        self.view: View | None = None
        self.last_delivered = initial_seqno
        # The latest TOI write set: everything ordered after it applies after it.
        self.isolation_seqno = 0
        # A TOI came out differently here than at its origin: stop serving for good.
        self.inconsistent = False

    @property
    def ready(self) -> bool:
        """Galera's wsrep_ready: this node takes client work."""
        return self.state.serves_clients

    def deliver(
        self, seqno: int, payload: bytes, waiting: Container[tuple[MemberId, int]]
    ) -> Outcome:
        """The write set at `seqno`; `waiting`: (origin, trx id) of local write sets whose
        sessions wait for their verdict."""
        self.last_delivered = seqno
        self._maybe_purge(seqno)
        if is_causal_marker(payload):  # a causal read's barrier: nothing to apply
            return Outcome(Action.SKIP, seqno, None, None)
        try:
            ws = decode(payload)
        except WriteSetFormatError as exc:
            log.error("%s: seqno %d is not a write set (%s): skipped", self.node_name, seqno, exc)
            return Outcome(Action.SKIP, seqno, None, None)
        if WriteSetFlags.ISOLATION in ws.flags:
            return self._isolation(seqno, ws, waiting)
        verdict = self.index.certify(ws.certification_request(seqno))
        if verdict.passed and verdict.depends_seqno < self.isolation_seqno:
            verdict = verdict._replace(depends_seqno=self.isolation_seqno)
        ours = ws.origin == self.node_name
        if ours and (ws.origin, ws.trx_id) in waiting:
            return Outcome(Action.RESOLVE, seqno, ws, verdict)
        if not verdict.passed or WriteSetFlags.ROLLBACK in ws.flags:
            log.debug(
                "%s: seqno %d %s: %s", self.node_name, seqno, ws.describe(), verdict.describe()
            )
            return Outcome(Action.SKIP, seqno, ws, verdict)
        if ours:
            log.warning(
                "%s: seqno %d is our own %s, nobody waits for it: applying it",
                self.node_name,
                seqno,
                ws.describe(),
            )
        return Outcome(Action.APPLY, seqno, ws, verdict)

    def _isolation(
        self, seqno: int, ws: WriteSet, waiting: Container[tuple[MemberId, int]]
    ) -> Outcome:
        """Total order isolation (Galera's TOI). The statement runs at its seqno by
        definition, so it is never certified; its TABLE keys are indexed, so a concurrent
        row write set on those tables that did not see it fails; it depends on seqno - 1
        and everything after it on it, so it runs with nothing else in flight. With
        ROLLBACK it is the origin's report of how the statement came out: it locks and
        orders nothing, every node compares it with its own outcome."""
        if WriteSetFlags.ROLLBACK in ws.flags:
            return Outcome(Action.APPLY, seqno, ws, Verdict(Certified.PASSED, depends_seqno=0))
        self.index.preload(ws.certification_request(seqno))  # indexed, not certified
        self.isolation_seqno = seqno
        verdict = Verdict(Certified.PASSED, depends_seqno=seqno - 1)
        if ws.origin == self.node_name and (ws.origin, ws.trx_id) in waiting:
            return Outcome(Action.RESOLVE, seqno, ws, verdict)
        return Outcome(Action.APPLY, seqno, ws, verdict)

    def mark_inconsistent(self) -> None:
        """It stops serving clients (1047) and never becomes SYNCED again until restarted
        (`Provider.mark_inconsistent` also makes it leave the group, as Galera does)."""
        self.inconsistent = True
        if self.state.state is not NodeState.OPEN:
            self.state.move(NodeState.OPEN, self.last_delivered)

    def view_changed(self, view: View) -> None:
        """No state transfer yet: a node in the primary component is current by assumption
        (every node starts from the same data), so it goes straight to SYNCED."""
        self.view = view
        if not view.primary or view.own_index < 0:
            if self.state.state is not NodeState.OPEN:
                self.state.move(NodeState.OPEN, self.last_delivered)
            return
        if self.state.state is NodeState.OPEN and not self.inconsistent:
            self.state.move(NodeState.PRIMARY, self.last_delivered)
            self.state.move(NodeState.JOINED, self.last_delivered)
            self.state.move(NodeState.SYNCED, self.last_delivered)

    def behind(self) -> None:
        """The group no longer holds what this node misses: it needs a state transfer,
        which does not exist yet, so it stops serving."""
        if self.state.state is not NodeState.OPEN:
            self.state.move(NodeState.OPEN, self.last_delivered)

    def _maybe_purge(self, seqno: int) -> None:
        if seqno % PURGE_EVERY == 0 and seqno > PURGE_LAG:
            self.index.purge(seqno - PURGE_LAG)
