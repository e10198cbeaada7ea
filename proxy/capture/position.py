"""The node's durable position (cluster uuid, seqno), kept in the backend next to the data.

The commit path and the appliers update it inside the transaction that commits the rows of
that seqno, so a crash can never leave data and position apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.capture import mariadb_sql as sql
from proxy.capture.session import SqlSession, text

UNDEFINED_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class Position:
    cluster_uuid: str
    seqno: int  # -1: nothing committed yet (Galera's undefined seqno)

    def __str__(self) -> str:
        return f"{self.cluster_uuid}:{self.seqno}"


async def read_position(session: SqlSession) -> Position:
    rows = (await session.query(sql.READ_POSITION)).rows
    if not rows:
        return Position(UNDEFINED_UUID, -1)
    return Position(text(rows[0][0]), int(text(rows[0][1])))


async def record_position(session: SqlSession, position: Position) -> None:
    """Inside the open transaction, just before its COMMIT."""
    await session.query(sql.update_position(position.cluster_uuid, position.seqno))
