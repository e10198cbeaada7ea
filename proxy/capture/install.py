"""Install, regenerate and remove the capture machinery on a backend.

Run it with no writes in flight (at node start, and under TOI after DDL): trigger DDL is
not transactional. Every step is idempotent; running it again changes nothing.

Per replicated table (MariaDB's several-triggers-per-event, ordered with FOLLOWS/PRECEDES):
- `wsrep_<id>_ai/au/ad` AFTER INSERT/UPDATE/DELETE record the changed row's key;
- `wsrep_<id>_bd/bu` BEFORE DELETE/UPDATE (only on FK parents with cascades) record the
  rows the cascade will change; they run after the user's BEFORE triggers, which may
  still change NEW;
- a table that cannot be replicated gets `wsrep_<id>_bi/bu/bd` that refuse every write
  with the reason (SIGNAL), first of their event;
- the user's own triggers are wrapped in `IF @wsrep_applier IS NULL THEN ... END IF` so
  appliers do not run them again (their effects are rows of the write set).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proxy.capture import mariadb_sql as sql
from proxy.capture.catalog import Catalog, Name, list_tables, load_catalog
from proxy.capture.session import SqlSession, text
from proxy.capture.shape import NotReplicable, TableShape

log = logging.getLogger("wsrep.capture")


@dataclass(frozen=True)
class Trigger:
    name: str
    timing: str  # BEFORE / AFTER
    event: str  # INSERT / UPDATE / DELETE
    statement: str
    definer: str = ""
    sql_mode: str = ""
    collation: str = ""

    @property
    def ours(self) -> bool:
        return bool(sql.TRIGGER_NAME.fullmatch(self.name))


@dataclass(frozen=True)
class Wanted:
    """One of our triggers as it should be, and where in its event's order."""

    trigger: Trigger
    position: str  # "first", "last" or "any"


async def install(session: SqlSession, schemas: Sequence[str] | None = None) -> Catalog:
    """Create the node schema and (re)generate the triggers of every replicated table."""
    for statement in sql.SCHEMA_DDL:
        await session.query(statement)
    if not (await session.query(sql.MDL_PLUGIN_INSTALLED)).rows:
        # TOI finds the local transactions whose metadata locks a DDL waits for here.
        await session.query(sql.INSTALL_MDL_PLUGIN)
    catalog = await load_catalog(session, schemas)
    for shape in catalog.shapes.values():
        await install_table(session, catalog, shape)
    return catalog


async def follow(session: SqlSession, old: Catalog, touched: Iterable[Name]) -> Catalog:
    """After DDL on the `touched` tables (run under TOI, nothing else in flight): the new
    catalog, and triggers regenerated on those tables and on every FK ancestor whose
    cascades reached or now reach them (before or after the DDL)."""
    catalog = await load_catalog(session)
    todo, seen = set(touched), set[Name]()
    while todo:
        name = todo.pop()
        seen.add(name)
        for shapes in (old.shapes, catalog.shapes):
            if (shape := shapes.get(name)) is not None:
                parents = {(fk.parent_schema, fk.parent_table) for fk in shape.foreign_keys}
                todo |= parents - seen
    for name in sorted(seen):
        if (shape := catalog.shapes.get(name)) is not None:
            await install_table(session, catalog, shape)
    return catalog


async def install_table(session: SqlSession, catalog: Catalog, shape: TableShape) -> None:
    """Bring one table's triggers to what its current shape needs."""
    wanted = {w.trigger.name: w for w in _wanted(catalog, shape)}
    name = (shape.schema, shape.name)
    current = await _triggers(session, name)  # read again only after a change
    stale = [t for t in current if t.ours and t.name not in wanted]
    for trig in stale:
        await session.query(sql.drop_trigger(shape.schema, trig.name))
    if stale:
        current = await _triggers(session, name)
    for trig in [t for t in current if not t.ours and sql.unguard(t.statement) is None]:
        await _recreate(session, name, trig, sql.guard(trig.statement), current)
        current = await _triggers(session, name)
    for want in wanted.values():
        if await _place(session, name, want, current):
            current = await _triggers(session, name)
    log.info("capture: %s (id %d) has %s", shape.qualified, shape.table_id, sorted(wanted))


async def uninstall(session: SqlSession, schemas: Sequence[str] | None = None) -> None:
    """Drop our triggers, unwrap the user's, drop the node schema."""
    for name in await list_tables(session, schemas):
        for trig in await _triggers(session, name):
            if trig.ours:
                await session.query(sql.drop_trigger(name[0], trig.name))
        for trig in await _triggers(session, name):
            if (inner := sql.unguard(trig.statement)) is not None:
                await _recreate(session, name, trig, inner, await _triggers(session, name))
    await session.query(sql.DROP_SCHEMA)


async def drop_capture(session: SqlSession, names: Iterable[Name]) -> None:
    """Drop our triggers on these tables (MariaDB refuses to move a table that has
    triggers to another database); `follow` puts them back on the new names."""
    for name in names:
        for trig in await _triggers(session, name):
            if trig.ours:
                await session.query(sql.drop_trigger(name[0], trig.name))


def _wanted(catalog: Catalog, shape: TableShape) -> list[Wanted]:
    def ours(timing: str, event: str, body: str) -> Trigger:
        return Trigger(sql.trigger_name(shape, timing, event), timing, event, body)

    try:
        shape.check_replicable()
        cascades = {e: catalog.cascade_paths(shape, e) for e in ("DELETE", "UPDATE")}
    except NotReplicable as exc:
        log.warning("capture: %s refuses writes: %s", shape.qualified, exc)
        body = sql.refusal_body(f"wsrep: {exc}")
        return [Wanted(ours("BEFORE", e, body), "first") for e in ("INSERT", "UPDATE", "DELETE")]
    after = {
        "INSERT": sql.after_trigger_body(shape, "INSERT"),
        "UPDATE": sql.after_trigger_body(shape, "UPDATE", cascades["UPDATE"], catalog.shapes),
        "DELETE": sql.after_trigger_body(shape, "DELETE"),
    }
    wanted = [Wanted(ours("AFTER", e, body), "any") for e, body in after.items()]
    for event, paths in cascades.items():
        if paths:
            body = sql.before_trigger_body(shape, event, paths, catalog.shapes)
            wanted.append(Wanted(ours("BEFORE", event, body), "last"))
    return wanted


async def _triggers(session: SqlSession, table: Name) -> list[Trigger]:
    rows = (await session.query(sql.triggers_query(*table))).rows
    return [
        Trigger(text(r[0]), text(r[1]), text(r[2]), text(r[3]), text(r[4]), text(r[5]), text(r[6]))
        for r in rows
    ]


async def _place(session: SqlSession, table: Name, want: Wanted, current: list[Trigger]) -> bool:
    """Create or re-create one of our triggers unless it is there as wanted; say if it did."""
    trig = want.trigger
    same_event = [t for t in current if (t.timing, t.event) == (trig.timing, trig.event)]
    others = [t for t in same_event if t.name != trig.name]
    existing = next((t for t in same_event if t.name == trig.name), None)
    order = ""
    placed = True
    if want.position == "first" and others:
        order = f"PRECEDES {sql.ident(others[0].name)}"
        placed = same_event[0].name == trig.name
    elif want.position == "last" and others:
        order = f"FOLLOWS {sql.ident(others[-1].name)}"
        placed = same_event[-1].name == trig.name
    if existing is not None and existing.statement == trig.statement and placed:
        return False
    await session.query(
        sql.create_trigger(*table, trig.name, trig.timing, trig.event, trig.statement, order)
    )
    return True


async def _recreate(
    session: SqlSession, table: Name, trig: Trigger, statement: str, current: list[Trigger]
) -> None:
    """Re-create a user trigger with a new statement, same definer, mode and position
    (`current`: the table's triggers now)."""
    same_event = [t for t in current if (t.timing, t.event) == (trig.timing, trig.event)]
    at = [t.name for t in same_event].index(trig.name)
    order = ""
    if at > 0:
        order = f"FOLLOWS {sql.ident(same_event[at - 1].name)}"
    elif len(same_event) > 1:
        order = f"PRECEDES {sql.ident(same_event[1].name)}"
    await session.query(sql.SAVE_CONTEXT)
    try:
        await session.query(sql.set_trigger_context(trig.sql_mode, trig.collation))
        await session.query(
            sql.create_trigger(
                *table,
                trig.name,
                trig.timing,
                trig.event,
                statement,
                order,
                trig.definer,
            )
        )
    finally:
        await session.query(sql.RESTORE_CONTEXT)
    log.info(
        "capture: user trigger %s.%s %s",
        table[0],
        trig.name,
        "guarded" if statement.startswith(sql.GUARD_OPEN) else "restored",
    )
