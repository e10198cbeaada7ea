"""Log entries for gcache tests: consecutive, with consistent seqnos and conf_ids."""

from __future__ import annotations

from hypothesis import strategies as st

from wsrep.group.log import Configuration, Entry, EntryKind
from wsrep.group.types import MemberInfo

A, B, C = (MemberInfo(n, f"127.0.0.1:{4001 + i}") for i, n in enumerate("abc"))
STABLE = Configuration((A, B))
JOINT = Configuration((A, B, C), old=(A, B))

# one step of a log: a payload (origin, bytes), a view ("view"/"joint") or a new term ("term")
Step = tuple[str, bytes]


def build(steps: list[Step], after: Entry | None = None) -> list[Entry]:
    """The entries `steps` describe, continuing the log after `after`."""
    index, seqno = (after.index, after.seqno) if after else (0, 0)
    conf_id, term = (after.conf_id, after.term) if after else (0, 1)
    out = []
    for kind, data in steps:
        if kind == "term":
            term += 1
            continue
        index += 1
        if kind in ("view", "joint"):
            config = STABLE if kind == "view" else JOINT
            conf_id += kind == "view"
            out.append(Entry(term, index, seqno, conf_id, EntryKind.VIEW, config=config))
        else:
            seqno += 1
            out.append(Entry(term, index, seqno, conf_id, EntryKind.PAYLOAD, kind, 7, seqno, data))
    return out


def payloads(n: int, size: int = 100, after: Entry | None = None) -> list[Entry]:
    return build([("a", bytes([i % 251]) * size) for i in range(n)], after)


steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(("a", "b")), st.binary(max_size=300)),
        st.tuples(st.sampled_from(("view", "joint", "term")), st.just(b"")),
    ),
    max_size=40,
)
