"""Drain at commit: turn the keys the triggers recorded into the transaction's net row
changes and certification keys.

Runs on the transaction's own connection, inside it, right before certification:

1. a plain (non-locking) read takes this connection's capture rows, and `DELETE`s by
   primary key (sent ahead of the next read, in its round trip) remove them, so the
   commit leaves the capture table as it found it (as a rollback would have) without
   locking other sessions' capture rows or the gaps between them;
2. per table, one consistent read fetches the final images of the captured keys;
3. a key whose row exists is an UPSERT of its full image; a key whose row is gone and that
   existed before the transaction (it was first captured as an old row) is a DELETE; a
   key that neither existed before nor after (inserted then deleted) is nothing.

Deletes come before upserts, which the applier relies on (see `applier.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from certification.keys import Key
from proxy.capture import certkeys
from proxy.capture import mariadb_sql as sql
from proxy.capture.catalog import Catalog
from proxy.capture.rowimage import Op, RowChange, encode_changes
from proxy.capture.session import Result, Row, SqlSession
from proxy.capture.shape import TableShape

log = logging.getLogger("wsrep.capture")

SELECT_BATCH = 500  # keys per read of final images
SCRIPT_BYTES = 4 << 20  # reads sent together stay well under max_allowed_packet
FORGET_BATCH = 1000  # capture rows forgotten per script (one DELETE each)


class CaptureError(Exception):
    """The captured rows cannot be turned into a write set (the message says why)."""


@dataclass(frozen=True)
class CapturedRows:
    changes: list[RowChange]  # deletes first, then upserts
    keys: list[Key]

    def payload(self) -> bytes:
        """The encoded row images a write set carries."""
        return encode_changes(self.changes)


async def drain(session: SqlSession, catalog: Catalog) -> CapturedRows:
    """The net row changes of the open transaction on `session`, and their keys."""
    rows = (await session.query(sql.CAPTURED)).rows
    reads = _Piggyback(session, _forget(rows))
    captured: dict[int, dict[bytes, bytes | None]] = {}
    for _, table_id, key_image, old_keys in rows:
        assert table_id is not None and key_image is not None
        # the first capture of a key tells whether the row existed before the transaction
        captured.setdefault(int(table_id), {}).setdefault(bytes(key_image), old_keys)
    tables: list[tuple[TableShape, dict[bytes, bytes | None]]] = []
    for table_id, entries in captured.items():
        shape = catalog.by_id.get(table_id)
        if shape is None:
            raise CaptureError(
                f"captured rows of table id {table_id}, which the catalog does not know: "
                "reload it after DDL"
            )
        tables.append((shape, entries))
    deletes: list[RowChange] = []
    upserts: list[RowChange] = []
    keys: list[Key] = []
    images = await _final_images(reads, tables)
    for (shape, entries), rows in zip(tables, images, strict=True):
        for old in entries.values():
            if old is not None:
                keys.extend(certkeys.unique_keys(shape, sql.split_key_list(old)))
        found = _upserts(shape, rows, upserts, keys)
        spec = shape.spec
        deletes.extend(
            RowChange(spec, Op.DELETE, sql.split_key_image(k, shape))
            for k, old in entries.items()
            if k not in found and old is not None
        )
    await reads.flush()
    log.debug("drain: %d deletes, %d upserts, %d keys", len(deletes), len(upserts), len(keys))
    return CapturedRows(deletes + upserts, certkeys.merge(keys))


async def _final_images(
    session: _Piggyback, tables: Sequence[tuple[TableShape, dict[bytes, bytes | None]]]
) -> list[list[Row]]:
    """Per table, the rows of its captured keys that exist. Every table's reads go in one
    script (one round trip; more only past SCRIPT_BYTES), not one round trip per table."""
    reads: list[tuple[int, str]] = []  # (index into tables, SELECT)
    for i, (shape, entries) in enumerate(tables):
        key_values = [sql.split_key_image(k, shape) for k in entries]
        for start in range(0, len(key_values), SELECT_BATCH):
            reads.append((i, sql.select_rows(shape, key_values[start : start + SELECT_BATCH])))
    images: list[list[Row]] = [[] for _ in tables]
    script: list[tuple[int, str]] = []
    size = 0
    for n, read in enumerate(reads, start=1):
        script.append(read)
        size += len(read[1])
        if size >= SCRIPT_BYTES or n == len(reads):
            results = await session.query_all([statement for _, statement in script])
            for (i, _), result in zip(script, results, strict=True):
                images[i].extend(result.rows)
            script, size = [], 0
    return images


def _upserts(
    shape: TableShape, rows: Sequence[Row], upserts: list[RowChange], keys: list[Key]
) -> set[bytes]:
    """Append the UPSERTs (and their keys) of the rows read; return their key images."""
    spec = shape.spec
    found: set[bytes] = set()
    for row in rows:
        key_image, uniques, parents, *image = row
        assert key_image is not None
        if key_image in found:  # matched twice, e.g. 'a' and 'A' under a _ci key
            continue
        found.add(bytes(key_image))
        upserts.append(RowChange(spec, Op.UPSERT, sql.parse_row(spec, image)))
        keys.extend(certkeys.unique_keys(shape, sql.split_key_list(uniques or b"")))
        keys.extend(certkeys.parent_keys(shape, sql.split_key_list(parents or b"")))
    return found


class _Piggyback:
    """A session that sends queued statements ahead of the next query, in its round trip."""

    def __init__(self, session: SqlSession, queued: list[str]) -> None:
        self.session = session
        self.queued = queued

    async def query(self, sql: str) -> Result:
        script = "; ".join([*self.queued, sql])
        self.queued = []
        return await self.session.query(script)

    async def query_all(self, statements: Sequence[str]) -> list[Result]:
        """The results of `statements` (one each; single statements, none empty)."""
        script = "; ".join([*self.queued, *statements])
        self.queued = []
        return (await self.session.query_all(script))[-len(statements) :]

    async def flush(self) -> None:
        if self.queued:
            await self.query(self.queued.pop())


def _forget(rows: Sequence[Row]) -> list[str]:
    seqs = [int(r[0] or 0) for r in rows]
    return [
        sql.forget_captured(seqs[start : start + FORGET_BATCH])
        for start in range(0, len(seqs), FORGET_BATCH)
    ]


async def discard(session: SqlSession) -> None:
    """Forget this connection's capture rows (e.g. left by a connection id reused after a
    direct commit that bypassed the drain)."""
    for statement in _forget((await session.query(sql.CAPTURED)).rows):
        await session.query(statement)
