"""The shapes of the replicated tables, read from the backend's information_schema.

Also the foreign-key graph: which rows an InnoDB cascade reaches from a parent row (the
capture triggers must record those rows, since cascades fire no triggers).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from proxy.capture import mariadb_sql as sql
from proxy.capture.session import SqlSession, text
from proxy.capture.shape import Column, ForeignKey, Hop, NotReplicable, TableShape, UniqueKey

log = logging.getLogger("wsrep.capture")

MAX_CASCADE_DEPTH = 8
Name = tuple[str, str]  # (schema, table)


@dataclass
class Catalog:
    shapes: dict[Name, TableShape]
    # Tables with triggers of the user's (not capture's); None: not read, so unknown.
    user_triggered: frozenset[Name] | None = None
    by_id: dict[int, TableShape] = field(init=False)
    referencing: dict[Name, list[ForeignKey]] = field(init=False)  # parent -> child FKs
    # Where a write reads only the rows it locks (`writes_only_lock`), computed once.
    _lock_only: frozenset[Name] = field(init=False)
    # Tables with one unique key (their row key): appliers upsert them in place.
    single_unique_key: frozenset[Name] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {s.table_id: s for s in self.shapes.values()}
        self.single_unique_key = frozenset(
            name for name, shape in self.shapes.items() if len(shape.unique_keys) == 1
        )
        self.referencing = defaultdict(list)
        for shape in self.shapes.values():
            for fk in shape.foreign_keys:
                self.referencing[(fk.parent_schema, fk.parent_table)].append(fk)
        self._lock_only = frozenset(
            name for name, shape in self.shapes.items() if self._reads_only_locked(name, shape)
        )

    def writes_only_lock(self, name: Name) -> bool:
        """Whether a locking write (proxy/locking_write.py) of this table reads nothing it
        does not lock: a replicable base table without user triggers (they may read
        anything) and without cascading FK children (our BEFORE triggers for cascades run
        a consistent read). Unknown tables (views, temporary, other schemas): no."""
        return name in self._lock_only

    def _reads_only_locked(self, name: Name, shape: TableShape) -> bool:
        if self.user_triggered is None or name in self.user_triggered:
            return False
        children = self.referencing.get(name, ())
        if any(fk.cascades("DELETE") or fk.cascades("UPDATE") for fk in children):
            return False
        try:
            shape.check_replicable()
        except NotReplicable:
            return False
        return True

    def cascade_paths(self, shape: TableShape, event: str) -> list[list[Hop]]:
        """Every chain of FKs along which a DELETE/UPDATE of a `shape` row changes rows of
        other tables. A row deleted by a cascade passes on its DELETE; a row updated (SET
        NULL/DEFAULT, ON UPDATE CASCADE) passes on an UPDATE of the columns it changed.
        A self-referencing ON DELETE CASCADE (a tree) is one hop to all descendants;
        other cycles are refused."""
        paths: list[list[Hop]] = []

        def walk(name: Name, event: str, changed: set[str] | None, path: list[Hop]) -> None:
            for fk in self.referencing.get(name, []):
                if not fk.cascades(event) or (
                    changed is not None and not changed & set(fk.parent_columns)
                ):
                    continue
                child = (fk.schema, fk.table)
                closure = fk.self_referencing and event == "DELETE" and fk.on_delete == "CASCADE"
                if closure and path and path[-1].fk == fk:
                    continue  # the descendants are in already
                if not fk.self_referencing and (
                    child == (shape.schema, shape.name) or any(h.table == child for h in path)
                ):
                    raise NotReplicable(
                        f"foreign keys of {shape.qualified} cascade in a cycle through "
                        f"{fk.schema}.{fk.table}; only self-referencing cycles are supported"
                    )
                if len(path) >= MAX_CASCADE_DEPTH:
                    raise NotReplicable(f"cascades from {shape.qualified} are too deep")
                if child not in self.shapes:
                    raise NotReplicable(f"{shape.qualified} cascades into unknown {fk.table}")
                self.shapes[child].identifying_key()
                here = [*path, Hop(fk, closure)]
                paths.append(here)
                if event == "DELETE" and fk.on_delete == "CASCADE":
                    walk(child, "DELETE", None, here)
                else:
                    walk(child, "UPDATE", set(fk.columns), here)

        walk((shape.schema, shape.name), event, None, [])
        return paths


def _rows_by_table(
    rows: Sequence[Sequence[bytes | None]],
) -> dict[Name, list[Sequence[bytes | None]]]:
    out: dict[Name, list[Sequence[bytes | None]]] = defaultdict(list)
    for row in rows:
        out[(text(row[0]), text(row[1]))].append(row[2:])
    return out


async def list_tables(session: SqlSession, schemas: Sequence[str] | None) -> dict[Name, str]:
    """Tables of the replicated schemas (all but the system ones by default) and their
    engine ("InnoDB", or e.g. "InnoDB system versioned", which capture refuses)."""
    rows = (await session.query(sql.tables_query(schemas))).rows
    return {(text(r[0]), text(r[1])): text(r[2]) if r[2] is not None else "" for r in rows}


async def load_catalog(session: SqlSession, schemas: Sequence[str] | None = None) -> Catalog:
    """Read every replicated table's shape, registering node-local table ids as needed."""
    engines = await list_tables(session, schemas)
    ids = await _table_ids(session)
    if missing := [name for name in engines if name not in ids]:
        await session.query(sql.register_tables(missing))
        ids = await _table_ids(session)
    columns = _rows_by_table((await session.query(sql.columns_query(schemas))).rows)
    uniques = _rows_by_table((await session.query(sql.unique_keys_query(schemas))).rows)
    fks = _rows_by_table((await session.query(sql.foreign_keys_query(schemas))).rows)
    shapes = {
        name: TableShape(
            name[0],
            name[1],
            ids[name],
            engine,
            tuple(_column(r) for r in columns[name]),
            _unique_keys(uniques.get(name, [])),
            _foreign_keys(name, fks.get(name, [])),
        )
        for name, engine in engines.items()
    }
    triggers = (await session.query(sql.all_triggers_query(schemas))).rows
    user_triggered = frozenset(
        (text(r[0]), text(r[1])) for r in triggers if not sql.TRIGGER_NAME.fullmatch(text(r[2]))
    )
    log.debug("catalog: %d tables, %d with user triggers", len(shapes), len(user_triggered))
    return Catalog(shapes, user_triggered)


async def _table_ids(session: SqlSession) -> dict[Name, int]:
    rows = (await session.query(sql.TABLE_IDS_QUERY)).rows
    return {(text(r[1]), text(r[2])): int(text(r[0])) for r in rows}


def _column(row: Sequence[bytes | None]) -> Column:
    name, data_type, charset, collation, nullable, generated = row
    dtype = text(data_type)
    cs = None if charset is None else text(charset)
    return Column(
        name=text(name),
        data_type=dtype,
        kind=sql.column_kind(dtype, cs),
        charset=cs,
        collation=None if collation is None else text(collation),
        nullable=text(nullable) == "YES",
        generated=generated is not None and text(generated) != "NEVER",
    )


def _unique_keys(rows: list[Sequence[bytes | None]]) -> tuple[UniqueKey, ...]:
    parts: dict[str, list[tuple[str, int | None]]] = {}
    for index, column, sub_part in rows:
        parts.setdefault(text(index), []).append(
            (text(column), None if sub_part is None else int(sub_part))
        )
    return tuple(
        UniqueKey(name, tuple(c for c, _ in cols), tuple(p for _, p in cols))
        for name, cols in parts.items()
    )


def _foreign_keys(child: Name, rows: list[Sequence[bytes | None]]) -> tuple[ForeignKey, ...]:
    grouped: dict[str, list[Sequence[bytes | None]]] = {}
    for row in rows:
        grouped.setdefault(text(row[0]), []).append(row)
    fks = []
    for name, group in grouped.items():
        first = group[0]
        fks.append(
            ForeignKey(
                name=name,
                schema=child[0],
                table=child[1],
                columns=tuple(text(r[1]) for r in group),
                parent_schema=text(first[2]),
                parent_table=text(first[3]),
                parent_index=text(first[5]),
                parent_columns=tuple(text(r[4]) for r in group),
                on_delete=text(first[6]),
                on_update=text(first[7]),
            )
        )
    return tuple(fks)
