"""Apply a write set's row changes on another node, in one transaction with its position.

The applier session skips the capture triggers and the (guarded) user triggers, checks no
foreign keys and runs no cascades: the write set already holds every row the origin's
statements, triggers and cascades changed, so the order rows are applied in cannot fail.
Applying is idempotent: deletes by key, then upserts of full images: `REPLACE` where the
table has another unique key (a row colliding on it must go), `INSERT ... ON DUPLICATE KEY
UPDATE` where its only unique key is the row's key (an update in place: one guarded trigger
call instead of a delete + insert's two). Statements go to the backend several at a time
(`SqlSession.query` takes `;`-separated statements).
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence

from proxy.capture import mariadb_sql as sql
from proxy.capture.position import Position
from proxy.capture.rowimage import Op, RowChange, TableSpec, Value
from proxy.capture.session import SqlSession

log = logging.getLogger("wsrep.applier")

MAX_STATEMENT_ROWS = 500
MAX_STATEMENT_BYTES = 1 << 20  # a bigger row goes alone (it needs max_allowed_packet > 2x)
MAX_SCRIPT_BYTES = 4 << 20  # statements sent together stay well under max_allowed_packet


async def prepare_applier_session(session: SqlSession) -> None:
    """Once per applier connection."""
    for statement in sql.APPLIER_SESSION:
        await session.query(statement)


def apply_statements(
    changes: Sequence[RowChange], in_place: Container[tuple[str, str]] = ()
) -> list[str]:
    """SQL for the changes: every DELETE, then every UPSERT (a row whose key changed is a
    delete of the old key and an upsert of the new one), batched per table and size.
    `in_place`: (schema, table) names with a single unique key
    (`Catalog.single_unique_key`), upserted in place; the others with REPLACE."""
    batches: dict[tuple[TableSpec, Op], list[tuple[Value, ...]]] = {}
    for op in (Op.DELETE, Op.UPSERT):
        for change in changes:
            if change.op is op:
                batches.setdefault((change.table, op), []).append(change.values)
    statements = []
    for (table, op), rows in batches.items():
        if op is Op.DELETE:
            render = sql.delete_rows
        elif (table.schema, table.name) in in_place:
            render = sql.upsert_rows
        else:
            render = sql.replace_rows
        columns = table.key_columns if op is Op.DELETE else table.columns
        chunk: list[str] = []
        size = 0
        for values in rows:
            row = sql.row_literal(columns, values)
            if chunk and (
                size + len(row) > MAX_STATEMENT_BYTES or len(chunk) >= MAX_STATEMENT_ROWS
            ):
                statements.append(render(table, chunk))
                chunk, size = [], 0
            chunk.append(row)
            size += len(row)
        if chunk:
            statements.append(render(table, chunk))
    return statements


def fits_one_script(statements: Sequence[str]) -> bool:
    return sum(len(s) + 2 for s in statements) <= MAX_SCRIPT_BYTES


async def apply_changes(
    session: SqlSession, changes: Sequence[RowChange], in_place: Container[tuple[str, str]] = ()
) -> None:
    """Run the changes in the session's transaction (autocommit is off in an applier
    session: the first statement opens it), in as few round trips as fit."""
    await run_statements(session, apply_statements(changes, in_place))


async def run_statements(session: SqlSession, statements: Sequence[str]) -> None:
    """`apply_statements`, in as few round trips as fit."""
    for script in sql.scripts(statements, MAX_SCRIPT_BYTES):
        await session.query(script)


async def commit_at(session: SqlSession, position: Position) -> None:
    """Record the position and commit, in one round trip (call it in commit order)."""
    update = sql.update_position(position.cluster_uuid, position.seqno)
    await session.query(f"{update}; {sql.COMMIT}")


async def apply_write_set(
    session: SqlSession,
    changes: Sequence[RowChange],
    position: Position,
    in_place: Container[tuple[str, str]] = (),
) -> None:
    """Apply and commit with the position update; on an error roll back and re-raise.
    (If cancelled mid-way the connection's state is unknown: close it.)"""
    try:
        await apply_changes(session, changes, in_place)
        await commit_at(session, position)
    except Exception:
        await session.query(sql.ROLLBACK)
        raise
    log.debug("applied %d row changes at %s", len(changes), position)
