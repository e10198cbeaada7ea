"""Global transaction ids: a cluster's history uuid and a position in its total order.

Text form is Galera's `uuid:seqno` (as in `wsrep_local_state_uuid` + `wsrep_last_committed`,
grastate.dat, and `wsrep_start_position`), e.g. `6b6a8e2c-3d6e-11ee-8000-0242ac120002:42`.
Seqno -1 means "undefined" (Galera's WSREP_SEQNO_UNDEFINED: no position known, e.g. after a
crash before recovery); the first write set of a cluster gets seqno 1, so 0 is "empty".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

SEQNO_UNDEFINED = -1
SEQNO_MAX = 2**63 - 1  # Galera's wsrep_seqno_t is an int64_t

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GTID = re.compile(rf"({_UUID}):(-1|0|[1-9][0-9]{{0,18}})")


class GtidError(ValueError):
    """Text that is not a `uuid:seqno` GTID, or a seqno out of range."""


@dataclass(frozen=True, slots=True)
class Gtid:
    cluster_uuid: uuid.UUID
    seqno: int

    def __post_init__(self) -> None:
        if not isinstance(self.cluster_uuid, uuid.UUID):
            raise GtidError(f"cluster uuid must be a uuid.UUID, not {self.cluster_uuid!r}")
        if isinstance(self.seqno, bool) or not isinstance(self.seqno, int):
            raise GtidError(f"seqno must be an int, not {self.seqno!r}")
        if not SEQNO_UNDEFINED <= self.seqno <= SEQNO_MAX:
            raise GtidError(f"seqno {self.seqno} out of range [-1, 2**63-1]")

    @classmethod
    def parse(cls, text: str) -> Gtid:
        match = _GTID.fullmatch(text)
        if match is None:
            raise GtidError(f"not a GTID (expected uuid:seqno): {text[:80]!r}")
        return cls(uuid.UUID(match[1]), int(match[2]))

    @property
    def defined(self) -> bool:
        return self.seqno != SEQNO_UNDEFINED

    def __str__(self) -> str:
        return f"{self.cluster_uuid}:{self.seqno}"
