"""Outstanding submissions and the leader's in-order acceptance: each request ordered once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wsrep.group.submissions import Outstanding, RequestOrder


@given(st.lists(st.tuples(st.sampled_from(["submit", "send", "lose", "resend", "new-leader"]),
                          st.booleans()), max_size=60))  # fmt: skip
def test_lossy_forwards_and_leader_changes_order_each_request_once(
    steps: list[tuple[str, bool]],
) -> None:
    origin = Outstanding()
    leader = RequestOrder()
    log: list[int] = []  # requests in the leader's log, in order
    in_flight: list[tuple[int, tuple[tuple[int, bytes], ...]]] = []
    now = 0.0
    for step, flag in steps:
        now += 1.0
        if step == "submit":
            origin.add(origin.token(), b"p")
        elif step == "send" and origin.has_unsent():
            ordered = origin.ordered
            in_flight.append((ordered, origin.take_unsent(now)))
        elif step == "lose" and in_flight:
            in_flight.pop(0 if flag else -1)
        elif step == "resend":
            origin.resend_older_than(now)
        elif step == "new-leader":
            # a new leader knows what is in its log (committed or not), nothing else
            leader = RequestOrder()
            if log and flag:
                leader.note("o", 1, log[-1])
            origin.resend_all()
        # deliver the oldest forward, then the origin learns what got ordered
        if in_flight:
            ordered, requests = in_flight.pop(0)
            for request, _ in leader.accept("o", 1, ordered, requests):
                log.append(request)
                origin.resolve(request)
    assert log == sorted(set(log))  # in order, never twice
    assert log == list(range(1, len(log) + 1))  # and without gaps


def test_resolve_answers_each_token_once() -> None:
    o = Outstanding()
    t1, t2 = o.token(), o.token()
    o.add(t1, b"a")
    o.add(t2, b"b")
    assert o.take_unsent(0.0) == ((1, b"a"), (2, b"b"))
    assert o.ordered == 0
    assert o.resolve(1) == t1 and o.resolve(1) is None
    assert o.ordered == 1 and len(o) == 1
    o.resend_older_than(1.0)
    assert o.take_unsent(2.0) == ((2, b"b"),)
