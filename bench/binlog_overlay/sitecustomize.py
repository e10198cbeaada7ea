"""Bench-only overlay (bench/binlog_cluster_ab.py): node processes started with this
directory on PYTHONPATH apply sysbench's tables as binlog row events instead of SQL.

Python imports `sitecustomize` at startup, before `wsrepctl` imports the applier, so
replacing `apply_statements` and `prepare_applier_session` here reaches every caller. Only
write sets that touch nothing but `sbtest.sbtestN` (sysbench's layout: INT, INT,
CHAR(120), CHAR(60), utf8mb4) change path; Write_rows is an upsert under
`slave_exec_mode = IDEMPOTENT` (set globally by the first applier connection). The
product is untouched: without this directory on the path nothing here runs.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import proxy.capture
from bench import binlog_events as be
from proxy.capture import applier
from proxy.capture.rowimage import Op, RowChange
from proxy.capture.session import SqlSession

SBTEST_COLUMNS = (
    be.Column(be.FieldType.LONG),
    be.Column(be.FieldType.LONG),
    be.Column(be.FieldType.STRING, 480),
    be.Column(be.FieldType.STRING, 240),
)
FORMAT_DESCRIPTION = be.binlog_statement([be.format_description("10.11-wsrep-bench")])
_tables: dict[str, be.Table] = {}
_sql_apply_statements = applier.apply_statements
_sql_prepare_applier_session = applier.prepare_applier_session


def _table(name: str) -> be.Table:
    table = _tables.get(name)
    if table is None:
        table = _tables[name] = be.Table("sbtest", name, SBTEST_COLUMNS, (0,), int(name[6:]))
    return table


async def prepare_applier_session(session: SqlSession) -> None:
    await _sql_prepare_applier_session(session)
    await session.query("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'")
    await session.query(FORMAT_DESCRIPTION)


def apply_statements(
    changes: Sequence[RowChange], in_place: Container[tuple[str, str]] = ()
) -> list[str]:
    """One BINLOG statement for a write set of sysbench rows only, else today's SQL."""
    if not changes or any(c.table.schema != "sbtest" for c in changes):
        return _sql_apply_statements(changes, in_place)
    batches: dict[tuple[be.EventType, be.Table], list[be.Row]] = {}
    for op, kind in ((Op.DELETE, be.EventType.DELETE_ROWS), (Op.UPSERT, be.EventType.WRITE_ROWS)):
        for change in changes:
            if change.op is op:
                batches.setdefault((kind, _table(change.table.name)), []).append(change.values)
    return [be.rows_statement(batches)]


# Both apply paths (rows alone, or rows + position + COMMIT in one script) render their
# rows through `apply_statements`; `proxy.replication` imports it by name, after this runs.
applier.apply_statements = apply_statements  # type: ignore[assignment]
for module in (applier, proxy.capture):
    module.prepare_applier_session = prepare_applier_session  # type: ignore[attr-defined]
