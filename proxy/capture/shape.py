"""What capture needs to know about a replicated table: columns, unique keys, foreign keys.

Pure data, built by `catalog.py` from the backend's information_schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from proxy.capture.rowimage import ColumnSpec, Kind, TableSpec

PRIMARY = "PRIMARY"


class NotReplicable(Exception):
    """A table whose writes cannot be captured; the message says why."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    data_type: str  # the backend's type name, lower case ("bigint", "varchar", ...)
    kind: Kind | None  # None: a type capture does not support
    charset: str | None  # character set of character columns, else None
    collation: str | None
    nullable: bool
    generated: bool  # computed by the server; never written by the applier

    @property
    def pad_space(self) -> bool:
        """Trailing spaces are insignificant in comparisons (all but NO PAD collations)."""
        return self.collation is not None and "_nopad_" not in self.collation


@dataclass(frozen=True, slots=True)
class UniqueKey:
    name: str  # PRIMARY for the primary key
    columns: tuple[str, ...]
    prefixes: tuple[int | None, ...]  # index prefix length per column (chars/bytes)


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    schema: str  # the child (referencing) table
    table: str
    columns: tuple[str, ...]
    parent_schema: str
    parent_table: str
    parent_index: str  # the parent's unique key the constraint uses
    parent_columns: tuple[str, ...]
    on_delete: str  # CASCADE, SET NULL, SET DEFAULT, RESTRICT, NO ACTION
    on_update: str

    @property
    def self_referencing(self) -> bool:
        return (self.schema, self.table) == (self.parent_schema, self.parent_table)

    def cascades(self, event: str) -> bool:
        rule = self.on_delete if event == "DELETE" else self.on_update
        return rule in ("CASCADE", "SET NULL", "SET DEFAULT")


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a cascade: the rows of `fk`'s child table that reference the rows
    reached so far; with `closure`, their descendants through the (self-referencing)
    `fk` as well."""

    fk: ForeignKey
    closure: bool = False

    @property
    def table(self) -> tuple[str, str]:
        return (self.fk.schema, self.fk.table)


@dataclass(frozen=True)
class TableShape:
    schema: str
    name: str
    table_id: int
    engine: str
    columns: tuple[Column, ...]
    unique_keys: tuple[UniqueKey, ...]  # PRIMARY first
    foreign_keys: tuple[ForeignKey, ...]  # this table as the child
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def identifying_key(self) -> UniqueKey:
        """The key that names a row in row images: the primary key, else the first unique
        key of whole, NOT NULL, stored columns. Raises NotReplicable without one."""
        if self._identifying_key is None:
            raise NotReplicable(
                f"table {self.qualified} has no primary key or unique NOT NULL key, "
                "so its rows cannot be replicated"
            )
        return self._identifying_key

    @cached_property
    def _identifying_key(self) -> UniqueKey | None:
        for key in self.unique_keys:
            cols = [self.by_name[c] for c in key.columns]
            if all(p is None for p in key.prefixes) and not any(
                c.nullable or c.generated for c in cols
            ):
                return key
        return None

    def check_replicable(self) -> None:
        if self.engine.lower() != "innodb":
            raise NotReplicable(
                f"table {self.qualified} is {self.engine}; only plain InnoDB tables replicate"
            )
        for col in self.columns:
            if col.kind is None:
                raise NotReplicable(
                    f"column {self.qualified}.{col.name} of type {col.data_type} "
                    "is not supported by row capture"
                )
        self.identifying_key()

    def image_columns(self) -> tuple[Column, ...]:
        """Columns a row image carries: every stored, non-generated column."""
        return tuple(c for c in self.columns if not c.generated)

    @cached_property
    def spec(self) -> TableSpec:
        """The table as row images describe it (check_replicable() first)."""
        cols = self.image_columns()
        names = [c.name for c in cols]
        kinds = [c.kind for c in cols]
        assert None not in kinds, "check_replicable() first"
        return TableSpec(
            self.schema,
            self.name,
            tuple(
                ColumnSpec(c.name, k, (c.charset or "") if k is Kind.TEXT else "")
                for c, k in zip(cols, kinds, strict=True)
                if k is not None
            ),
            tuple(names.index(c) for c in self.identifying_key().columns),
        )
