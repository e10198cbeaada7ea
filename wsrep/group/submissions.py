"""Submissions: each one ordered exactly once, although forwards get lost and leaders change.

An origin numbers its submissions per incarnation (requests 1, 2, 3, ...) and keeps them
until it delivers them (`Outstanding`); it offers them again to every new leader and when
they stay unordered too long. The leader takes the requests of each (origin, incarnation)
only in order (`RequestOrder`), so a resend is recognised and a gap waits for the resend.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsrep.group.types import MemberId

Requests = tuple[tuple[int, bytes], ...]  # (request number, payload)


@dataclass(slots=True)
class _Request:
    token: int
    payload: bytes
    sent_at: float | None = None


class Outstanding:
    """This member's submissions that have no seqno yet."""

    def __init__(self) -> None:
        self._next_token = 1
        self._next_request = 1
        self._waiting: dict[int, _Request] = {}
        self._to_send: list[int] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def token(self) -> int:
        """A token for a submission (also for one refused on the spot)."""
        token = self._next_token
        self._next_token += 1
        return token

    def add(self, token: int, payload: bytes) -> None:
        request = self._next_request
        self._next_request += 1
        self._waiting[request] = _Request(token, payload)
        self._to_send.append(request)

    def resolve(self, request: int) -> int | None:
        """Request `request` was ordered: its token (None if not ours or already resolved)."""
        r = self._waiting.pop(request, None)
        return None if r is None else r.token

    @property
    def ordered(self) -> int:
        """Every request numbered up to this one has been ordered."""
        return min(self._waiting, default=self._next_request) - 1

    def has_unsent(self) -> bool:
        return bool(self._to_send)

    def take_unsent(self, now: float) -> Requests:
        """The requests to offer the leader now, in order."""
        batch = []
        for request in self._to_send:
            r = self._waiting.get(request)
            if r is not None:
                r.sent_at = now
                batch.append((request, r.payload))
        self._to_send.clear()
        return tuple(batch)

    def resend_all(self) -> None:
        """A new leader: offer it everything not ordered yet."""
        self._to_send = sorted(self._waiting)

    def resend_older_than(self, when: float) -> None:
        stale = {q for q, r in self._waiting.items() if r.sent_at is not None and r.sent_at < when}
        if stale:
            self._to_send = sorted(stale.union(self._to_send))


class RequestOrder:
    """The leader's record of the last request of each (origin, incarnation) in its log."""

    def __init__(self) -> None:
        self._last: dict[tuple[MemberId, int], int] = {}

    def note(self, origin: MemberId, incarnation: int, request: int) -> None:
        """Request `request` is in the log (entries come in request order per origin)."""
        self._last[(origin, incarnation)] = request

    def copy(self) -> RequestOrder:
        other = RequestOrder()
        other._last = dict(self._last)
        return other

    def accept(
        self, origin: MemberId, incarnation: int, ordered: int, requests: Requests
    ) -> Requests:
        """The requests to append: each once, in order; a gap waits for the origin's resend."""
        key = (origin, incarnation)
        last = max(self._last.get(key, 0), ordered)
        taken = []
        for request, payload in requests:
            if request <= last:
                continue
            if request != last + 1:
                break
            taken.append((request, payload))
            last = request
        self._last[key] = last
        return tuple(taken)
