"""grastate.dat: the node's saved position, in Galera's own text format.

    # GALERA saved state
    version: 2.1
    uuid:    6b6a8e2c-3d6e-11ee-8000-0242ac120002
    seqno:   -1
    safe_to_bootstrap: 0

Galera's semantics, kept as they are:

- while the node runs (and so after a crash) `seqno` is -1: the position is unknown and
  must be recovered from the data (the backend's `uuid:seqno`) before it is trusted;
- a clean shutdown writes the last committed seqno;
- `safe_to_bootstrap: 1` only on the node that left the primary component last (it has
  every committed write set); a node starting runs with 0 until it shuts down cleanly, and
  bootstrapping a new primary component from a node with 0 is refused unless an operator
  edits the file;
- the all-zero uuid means "no cluster yet".

The file is replaced atomically, so a crash leaves either the old or the new state.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from wsrep.gcache_files import atomic_write
from wsrep.gtid import SEQNO_MAX, SEQNO_UNDEFINED

FILE_NAME = "grastate.dat"
VERSION = "2.1"
NIL_UUID = uuid.UUID(int=0)
_SEQNO = re.compile(r"-?[0-9]{1,20}")
_MAX_SIZE = 64 << 10  # the real file is ~150 bytes; anything huge is not a grastate.dat


class GraStateError(ValueError):
    """grastate.dat exists but cannot be understood (the message names the file and line)."""


class UnsafeBootstrap(ValueError):
    """Bootstrapping from this node could lose committed write sets (Galera's wording)."""


UNSAFE_BOOTSTRAP = (
    "It may not be safe to bootstrap the cluster from this node. It was not the last one to "
    "leave the cluster and may not contain all the updates. To force cluster bootstrap with "
    "this node, edit the grastate.dat file manually and set safe_to_bootstrap to 1."
)


@dataclass(frozen=True, slots=True)
class GraState:
    cluster_uuid: uuid.UUID = NIL_UUID
    seqno: int = SEQNO_UNDEFINED
    safe_to_bootstrap: bool = False

    def __post_init__(self) -> None:
        if not SEQNO_UNDEFINED <= self.seqno <= SEQNO_MAX:
            raise GraStateError(f"seqno {self.seqno} out of range [-1, 2**63-1]")

    def running(self) -> GraState:
        """The state to write when the node starts: position unknown until a clean stop."""
        return GraState(self.cluster_uuid, SEQNO_UNDEFINED, False)

    def format(self) -> str:
        return (
            "# GALERA saved state\n"
            f"version: {VERSION}\n"
            f"uuid:    {self.cluster_uuid}\n"
            f"seqno:   {self.seqno}\n"
            f"safe_to_bootstrap: {int(self.safe_to_bootstrap)}\n"
        )


def clean_shutdown(cluster_uuid: uuid.UUID, seqno: int, last_in_primary: bool) -> GraState:
    """What a node writes when it stops cleanly at `seqno` (committed), Galera's way."""
    return GraState(cluster_uuid, seqno, last_in_primary)


def check_bootstrap(state: GraState | None, source: str = FILE_NAME) -> None:
    """Refuse to form a new primary component from a node of a real cluster that did not
    leave it last (a crash leaves 0 too): another node may hold later write sets."""
    if state is not None and state.cluster_uuid != NIL_UUID and not state.safe_to_bootstrap:
        raise UnsafeBootstrap(f"{source}: safe_to_bootstrap: 0. {UNSAFE_BOOTSTRAP}")


def parse(text: str, source: str = FILE_NAME) -> GraState:
    fields: dict[str, tuple[int, str]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise GraStateError(f"{source}:{lineno}: expected 'key: value', got {raw!r}")
        # unknown keys (older Galera wrote e.g. cert_index) are ignored, as Galera does
        fields[key.strip()] = (lineno, value.strip())

    def field(name: str) -> tuple[int, str]:
        if name not in fields:
            raise GraStateError(f"{source}: no '{name}:' line")
        return fields[name]

    lineno, version = field("version")
    if version.split(".")[0] != VERSION.split(".")[0]:
        raise GraStateError(f"{source}:{lineno}: unsupported version {version!r}")
    lineno, text_uuid = field("uuid")
    try:
        cluster_uuid = uuid.UUID(text_uuid)
    except ValueError:
        raise GraStateError(f"{source}:{lineno}: invalid uuid {text_uuid!r}") from None
    lineno, text_seqno = field("seqno")
    if not _SEQNO.fullmatch(text_seqno):
        raise GraStateError(f"{source}:{lineno}: invalid seqno {text_seqno!r}")
    seqno = int(text_seqno)
    if not SEQNO_UNDEFINED <= seqno <= SEQNO_MAX:
        raise GraStateError(f"{source}:{lineno}: seqno {seqno} out of range [-1, 2**63-1]")
    # files of Galera before 3.19 have no safe_to_bootstrap line: Galera reads that as 1
    lineno, safe = fields.get("safe_to_bootstrap", (0, "1"))
    if safe not in ("0", "1"):
        raise GraStateError(f"{source}:{lineno}: safe_to_bootstrap must be 0 or 1, not {safe!r}")
    return GraState(cluster_uuid, seqno, safe == "1")


def read(path: Path) -> GraState | None:
    """The saved state, None when the file does not exist (a node never started)."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_SIZE + 1)
    except FileNotFoundError:
        return None
    if len(data) > _MAX_SIZE:
        raise GraStateError(f"{path}: larger than {_MAX_SIZE} bytes, not a grastate.dat")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise GraStateError(f"{path}: not ASCII text") from None
    return parse(text, str(path))


def write(path: Path, state: GraState, sync: bool = True) -> None:
    """Replace the file atomically (durable when `sync`)."""
    atomic_write(path, state.format().encode("ascii"), sync)
