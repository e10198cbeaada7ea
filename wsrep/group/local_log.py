"""A member's own log over its `LogStorage`: where it ends and which configurations it holds."""

from __future__ import annotations

from wsrep.group.log import Configuration, Entry, EntryKind, LogStorage


class LocalLog:
    """The tail position (index, term, seqno, conf_id) and the VIEW entries of the log.

    Raft's rule: the configuration in force is the latest VIEW entry in the log, committed
    or not. `stable_view` and `config_entry` are the last stable and the last VIEW entry at
    or below the delivery point; `pending_views` those above it.
    """

    def __init__(self, storage: LogStorage, delivered: int) -> None:
        self.storage = storage
        base, base_view = storage.base()
        first, last = storage.first_index(), storage.last_index()
        self._set_tail(storage.entry(last) if last >= first else base)
        self.stable_view: Entry | None = base_view
        self.config_entry: Entry | None = base_view
        self.pending_views: list[Entry] = []
        for e in storage.entries(first, last + 1):
            if e.kind is EntryKind.VIEW:
                if e.index > delivered:
                    self.pending_views.append(e)
                else:
                    self.delivered_view(e, pending=False)

    def _set_tail(self, tail: Entry | None) -> None:
        self.last_index = tail.index if tail else 0
        self.last_term = tail.term if tail else 0
        self.last_seqno = tail.seqno if tail else 0
        self.last_conf_id = tail.conf_id if tail else 0

    @property
    def config(self) -> Configuration | None:
        e = self.pending_views[-1] if self.pending_views else self.config_entry
        return e.config if e is not None else None

    def change_in_flight(self, commit: int) -> bool:
        """A configuration above the commit point is still to be agreed on."""
        return bool(self.pending_views) and self.pending_views[-1].index > commit

    def term_at(self, index: int) -> int | None:
        """The term of entry `index`, None if not in the log (or purged beyond the base)."""
        if index == 0:
            return 0
        if index >= self.storage.first_index():
            return self.storage.entry(index).term if index <= self.last_index else None
        base = self.storage.base()[0]
        return base.term if base is not None and base.index == index else None

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return self.storage.entries(lo, hi)

    def append(self, entries: list[Entry]) -> None:
        self.storage.append(entries)
        self._set_tail(entries[-1])
        self.pending_views.extend(e for e in entries if e.kind is EntryKind.VIEW)

    def truncate_from(self, index: int) -> None:
        """Drop the (uncommitted) entries from `index` on."""
        self.storage.truncate_from(index)
        self.pending_views = [e for e in self.pending_views if e.index < index]
        first = self.storage.first_index()
        self._set_tail(self.storage.entry(index - 1) if index > first else self.storage.base()[0])

    def delivered_view(self, e: Entry, pending: bool = True) -> None:
        """VIEW entry `e` was delivered: it is now the committed configuration."""
        assert e.config is not None
        if pending:
            self.pending_views.remove(e)
        self.config_entry = e
        if not e.config.joint:
            self.stable_view = e
