"""The little a capture or apply step needs from a backend connection.

`proxy/backend_client.py` fits it as is; tests may wrap any client. One session is one
backend connection: the drain must run on the connection of the transaction it drains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

Row = Sequence[bytes | None]  # text-protocol values, NULL as None


class Result(Protocol):
    @property
    def rows(self) -> Sequence[Row]: ...


class SqlSession(Protocol):
    async def query(self, sql: str) -> Result:
        """Run one statement, or several separated by `;` (returning the last result);
        raise on the first that fails."""
        ...

    async def query_all(self, sql: str) -> Sequence[Result]:
        """Like `query`, with one result per statement."""
        ...


def text(raw: bytes | None) -> str:
    """A name or other utf-8 text from a result row."""
    if raw is None:
        raise ValueError("unexpected NULL")
    return raw.decode("utf-8")
