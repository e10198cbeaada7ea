"""Write-set size limits, checked at the origin before a write set is replicated.

Galera's `wsrep_max_ws_rows` and `wsrep_max_ws_size`. They are node configuration, so they
are never applied inside the certification index: nodes may be configured differently, and
a verdict that depended on local settings would differ between nodes.
"""

from __future__ import annotations

from dataclasses import dataclass


class WriteSetTooLarge(Exception):
    """The transaction's write set passes a configured limit; it is not replicated."""

    def __init__(self, what: str, value: int, limit: int) -> None:
        super().__init__(f"write set has {value} {what}, over the limit of {limit}")
        self.what = what
        self.value = value
        self.limit = limit


@dataclass(frozen=True, slots=True)
class WriteSetLimits:
    max_rows: int = 0  # rows changed; 0 = unlimited (Galera's default for wsrep_max_ws_rows)
    max_bytes: int = 2**31 - 1  # encoded size; Galera's wsrep_max_ws_size default

    def __post_init__(self) -> None:
        if self.max_rows < 0 or self.max_bytes <= 0:
            raise ValueError("max_rows must be >= 0 and max_bytes > 0")

    def check_rows(self, rows: int) -> None:
        """Call as rows are captured, so a huge transaction is stopped early."""
        if self.max_rows and rows > self.max_rows:
            raise WriteSetTooLarge("rows", rows, self.max_rows)

    def check_bytes(self, size: int) -> None:
        if size > self.max_bytes:
            raise WriteSetTooLarge("bytes", size, self.max_bytes)


NO_LIMITS = WriteSetLimits()  # Galera's defaults: any number of rows, 2 GiB - 1
