"""Certification keys of captured row changes (built with `certification.keys`).

Per changed row: EXCLUSIVE keys for every unique key (the primary key included), with the
values before the transaction and after it; SHARED keys for the parent row of every
foreign key of the row's final image. Values are in their collation's canonical form
(see `mariadb_sql.cert_expr`), so 'a' and 'A' under a _ci collation are one key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from certification.keys import Key, KeyKind, row_key
from proxy.capture.shape import TableShape

KeyValues = tuple[bytes, ...] | None  # one unique key's values; None if a part is NULL


def unique_keys(shape: TableShape, values: Sequence[KeyValues]) -> Iterable[Key]:
    """EXCLUSIVE keys of one row image, `values` in `shape.unique_keys` order."""
    if len(values) != len(shape.unique_keys):
        raise ValueError(
            f"{shape.qualified}: {len(values)} key values for "
            f"{len(shape.unique_keys)} unique keys (shape changed?)"
        )
    for key, vals in zip(shape.unique_keys, values, strict=True):
        if vals is not None:  # NULLs never collide in a unique index
            yield row_key(shape.schema, shape.name, key.name, vals)


def parent_keys(shape: TableShape, values: Sequence[KeyValues]) -> Iterable[Key]:
    """SHARED keys of the rows this row references, `values` in `shape.foreign_keys` order."""
    if len(values) != len(shape.foreign_keys):
        raise ValueError(
            f"{shape.qualified}: {len(values)} FK values for "
            f"{len(shape.foreign_keys)} foreign keys (shape changed?)"
        )
    for fk, vals in zip(shape.foreign_keys, values, strict=True):
        if vals is not None:
            yield row_key(fk.parent_schema, fk.parent_table, fk.parent_index, vals, KeyKind.SHARED)


def merge(keys: Iterable[Key]) -> list[Key]:
    """Distinct keys in first-seen order; an EXCLUSIVE key makes a SHARED one redundant."""
    out: dict[bytes, Key] = {}
    for key in keys:
        seen = out.get(key.ident)
        if seen is None or (seen.kind is KeyKind.SHARED and key.kind is KeyKind.EXCLUSIVE):
            out[key.ident] = key
    return list(out.values())
