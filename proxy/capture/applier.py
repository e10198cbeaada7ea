"""Apply a write set's row changes on another node, in one transaction with its position.

The applier session skips the capture triggers and the (guarded) user triggers, checks no
foreign keys and runs no cascades: the write set already holds every row the origin's
statements, triggers and cascades changed, so the order rows are applied in cannot fail.
Applying is idempotent: deletes by key, then `REPLACE` of full images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import groupby

from proxy.capture import mariadb_sql as sql
from proxy.capture.position import Position, record_position
from proxy.capture.rowimage import Op, RowChange
from proxy.capture.session import SqlSession

log = logging.getLogger("wsrep.applier")

MAX_STATEMENT_ROWS = 500


async def prepare_applier_session(session: SqlSession) -> None:
    """Once per applier connection."""
    for statement in sql.APPLIER_SESSION:
        await session.query(statement)


async def apply_changes(session: SqlSession, changes: Sequence[RowChange]) -> None:
    """Run the changes in the session's open transaction: every DELETE, then every UPSERT
    (a row whose key changed is a delete of the old key and an upsert of the new one)."""
    ordered = [c for c in changes if c.op is Op.DELETE] + [c for c in changes if c.op is Op.UPSERT]
    for (table, op), group in groupby(ordered, key=lambda c: (c.table, c.op)):
        batch = list(group)
        for start in range(0, len(batch), MAX_STATEMENT_ROWS):
            values = [c.values for c in batch[start : start + MAX_STATEMENT_ROWS]]
            if op is Op.DELETE:
                await session.query(sql.delete_rows(table, values))
            else:
                await session.query(sql.replace_rows(table, values))


async def apply_write_set(
    session: SqlSession, changes: Sequence[RowChange], position: Position
) -> None:
    """Apply and commit with the position update; on any error roll back and re-raise."""
    await session.query(sql.BEGIN)
    try:
        await apply_changes(session, changes)
        await record_position(session, position)
        await session.query(sql.COMMIT)
    except BaseException:
        await session.query(sql.ROLLBACK)
        raise
    log.debug("applied %d row changes at %s", len(changes), position)
