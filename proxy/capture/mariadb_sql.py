"""Every piece of MariaDB-specific SQL that capture and apply use, in one place.

A MySQL 8 backend would supply the same functions with its own SQL (it has no
`DELETE ... RETURNING` and no `CREATE OR REPLACE TRIGGER`, so its drain and trigger
install differ).

Exactness comes from the expressions values are read with (`read_expr`) and the literals
they are written back with (`literal`): integers and DECIMAL as decimal text, floats
widened to DOUBLE and printed shortest-round-trip, TIMESTAMP as UNIX_TIMESTAMP (time-zone
free), strings and INET4/INET6 as raw bytes (no charset conversion), ENUM/SET as their
numbers, BIT as an unsigned integer. Strings go back as hex literals with a charset
introducer, so no value is ever spliced into SQL as text.

Certification keys need a value's identity under the column's collation, not its bytes:
`cert_expr` reads `WEIGHT_STRING()` (trailing spaces trimmed for PAD SPACE collations).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

from proxy.capture.rowimage import ColumnSpec, Kind, TableSpec, Value, check_value
from proxy.capture.shape import Column, ForeignKey, Hop, TableShape

SCHEMA = "wsrep"
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys", SCHEMA)
APPLIER_FLAG = "@wsrep_applier"  # set in applier sessions: capture triggers skip their writes
# User triggers are wrapped in this guard so they do not fire again on appliers: their
# effects arrive as rows of the write set.
GUARD_OPEN = f"IF {APPLIER_FLAG} IS NULL THEN "
GUARD_CLOSE = "; END IF"
TRIGGER_NAME = re.compile(r"wsrep_[0-9]+_(ai|au|ad|bi|bu|bd)")
NULL_KEY = b"-"  # marks a unique key with a NULL part in key lists (never a hex digit)

_KINDS = {
    **dict.fromkeys(("tinyint", "smallint", "mediumint", "int", "bigint"), Kind.INT),
    "decimal": Kind.DECIMAL,
    "float": Kind.FLOAT32,
    "double": Kind.FLOAT64,
    "bit": Kind.BITS,
    **dict.fromkeys(("date", "time", "datetime", "year"), Kind.TEMPORAL),
    "timestamp": Kind.TIMESTAMP,
    **dict.fromkeys(("char", "varchar", "tinytext", "text", "mediumtext", "longtext"), Kind.TEXT),
    **dict.fromkeys(
        ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"), Kind.BYTES
    ),
    # written back from their binary form. Not UUID: its storage form is not what
    # CAST(... AS BINARY) or its text give back for every value (CHECKSUM TABLE differs).
    **dict.fromkeys(("inet4", "inet6"), Kind.BYTES),
    "enum": Kind.ENUM,
    "set": Kind.SET,
}


def column_kind(data_type: str, charset: str | None) -> Kind | None:
    kind = _KINDS.get(data_type.lower())
    if kind is Kind.TEXT and charset in (None, "binary"):
        return Kind.BYTES
    return kind


# --- names and literals ---------------------------------------------------------------


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def qualified(schema: str, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}"


def string_literal(value: str) -> str:
    """A string literal that cannot break out of its quotes: hex with a charset."""
    return f"_utf8mb4 X'{value.encode('utf-8').hex()}'"


def literal(kind: Kind, charset: str, value: Value) -> str:
    """SQL literal that stores exactly `value` in a column of `kind` (applier session)."""
    return "NULL" if value is None else _LITERALS[kind](kind, charset, value)


def _number_literal(kind: Kind, charset: str, value: Value) -> str:
    check_value(kind, value)
    return str(value)


def _float_literal(kind: Kind, charset: str, value: Value) -> str:
    check_value(kind, value)
    shown = repr(value)
    return shown if "e" in shown else shown + "e0"  # a DOUBLE literal, not a DECIMAL


def _temporal_literal(kind: Kind, charset: str, value: Value) -> str:
    check_value(kind, value)
    return f"'{value}'"


def _timestamp_literal(kind: Kind, charset: str, value: Value) -> str:
    check_value(kind, value)
    assert isinstance(value, str)
    if float(value) == 0:  # the zero timestamp is not a point in time
        return "'0000-00-00 00:00:00'"
    return f"FROM_UNIXTIME({value})"


def _text_literal(kind: Kind, charset: str, value: Value) -> str:
    if not isinstance(value, bytes):
        check_value(kind, value)  # raises
    return f"_{charset} X'{value.hex()}'"  # type: ignore[union-attr]


def _bytes_literal(kind: Kind, charset: str, value: Value) -> str:
    if not isinstance(value, bytes):
        check_value(kind, value)  # raises
    return f"X'{value.hex()}'"  # type: ignore[union-attr]


_LITERALS = {
    **dict.fromkeys((Kind.INT, Kind.BITS, Kind.ENUM, Kind.SET, Kind.DECIMAL), _number_literal),
    Kind.FLOAT32: _float_literal,
    Kind.FLOAT64: _float_literal,
    Kind.TEMPORAL: _temporal_literal,
    Kind.TIMESTAMP: _timestamp_literal,
    Kind.TEXT: _text_literal,
    Kind.BYTES: _bytes_literal,
}


# --- reading values -------------------------------------------------------------------


def read_expr(ref: str, kind: Kind) -> str:
    """Expression whose text-protocol bytes give the exact value (see `parse_value`)."""
    if kind in (Kind.FLOAT32, Kind.FLOAT64):
        return f"CAST({ref} AS DOUBLE)"
    if kind is Kind.BITS:
        return f"CAST({ref} AS UNSIGNED)"
    if kind is Kind.TIMESTAMP:
        return f"UNIX_TIMESTAMP({ref})"
    if kind in (Kind.TEXT, Kind.BYTES):  # no charset conversion; INET6's binary form
        return f"CAST({ref} AS BINARY)"
    if kind in (Kind.ENUM, Kind.SET):
        return f"({ref} + 0)"
    return ref


def parse_value(kind: Kind, raw: bytes | None) -> Value:
    """The value a `read_expr` column came back as."""
    return None if raw is None else _PARSERS[kind](raw)


def parse_row(spec: TableSpec, raw: Sequence[bytes | None]) -> tuple[Value, ...]:
    """`parse_value` of a row of `read_expr` columns of `spec.columns`."""
    parsers = _row_parsers(spec)
    if len(raw) != len(parsers):
        raise ValueError(f"{spec.name}: {len(raw)} values for {len(parsers)} columns")
    return tuple([None if v is None else parse(v) for parse, v in zip(parsers, raw)])  # noqa: B905


_ASCII = functools.partial(bytes.decode, encoding="ascii")
_PARSERS: dict[Kind, Callable[[bytes], Value]] = {
    **dict.fromkeys((Kind.INT, Kind.BITS, Kind.ENUM, Kind.SET), int),
    **dict.fromkeys((Kind.FLOAT32, Kind.FLOAT64), float),
    **dict.fromkeys((Kind.DECIMAL, Kind.TEMPORAL, Kind.TIMESTAMP), _ASCII),
    **dict.fromkeys((Kind.TEXT, Kind.BYTES), bytes),
}


@functools.lru_cache(maxsize=4096)
def _row_parsers(spec: TableSpec) -> tuple[Callable[[bytes], Value], ...]:
    return tuple(_PARSERS[c.kind] for c in spec.columns)


def cert_expr(ref: str, col: Column, prefix: int | None = None) -> str:
    """Expression for a value's identity in a unique index (collation-aware)."""
    assert col.kind is not None
    if col.kind in (Kind.TEXT, Kind.BYTES):
        inner = f"LEFT({ref}, {prefix})" if prefix else ref
        if col.kind is Kind.BYTES:
            return read_expr(inner, Kind.BYTES)
        return f"WEIGHT_STRING(RTRIM({inner}))" if col.pad_space else f"WEIGHT_STRING({inner})"
    return read_expr(ref, col.kind)


_COMMA = ", ',', "  # joins hex parts inside CONCAT(...)


def _hex(expr: str) -> str:
    return f"HEX(CONCAT({expr}))"


def key_image_expr(alias: str, shape: TableShape) -> str:
    """The identifying key of row `alias` (NEW, OLD or a table alias) as "hex,hex,..."."""
    parts = [
        _hex(read_expr(f"{alias}.{ident(c)}", _kind(shape.by_name[c])))
        for c in shape.identifying_key().columns
    ]
    return f"CONCAT({_COMMA.join(parts)})"


def _key_list_expr(
    alias: str, shape: TableShape, keys: Sequence[tuple[tuple[str, ...], tuple[int | None, ...]]]
) -> str:
    """Keys of row `alias` as "hex,hex;hex;-": one entry per key, '-' if a part is NULL."""
    entries = []
    for columns, prefixes in keys:
        parts = [
            _hex(cert_expr(f"{alias}.{ident(c)}", shape.by_name[c], p))
            for c, p in zip(columns, prefixes, strict=True)
        ]
        entries.append(f"IFNULL(CONCAT({_COMMA.join(parts)}), '-')")
    return f"CONCAT_WS(';', {', '.join(entries)})" if entries else "''"


def unique_keys_expr(alias: str, shape: TableShape) -> str:
    return _key_list_expr(alias, shape, [(k.columns, k.prefixes) for k in shape.unique_keys])


def parent_keys_expr(alias: str, shape: TableShape) -> str:
    fks = [(fk.columns, (None,) * len(fk.columns)) for fk in shape.foreign_keys]
    return _key_list_expr(alias, shape, fks)


def split_key_list(raw: bytes) -> list[tuple[bytes, ...] | None]:
    """Undo `unique_keys_expr`/`parent_keys_expr`: per key its values, None if NULL."""
    if not raw:
        return []
    return [
        None if entry == NULL_KEY else tuple(bytes.fromhex(p.decode()) for p in entry.split(b","))
        for entry in raw.split(b";")
    ]


def split_key_image(raw: bytes, shape: TableShape) -> tuple[Value, ...]:
    """Undo `key_image_expr`: the typed values of the identifying key."""
    spec = shape.spec
    parsers = _row_parsers(spec)
    parts = raw.split(b",")
    if len(parts) != len(spec.key):
        raise ValueError(
            f"key image of {shape.qualified} has {len(parts)} parts, not {len(spec.key)}"
        )
    return tuple(
        parsers[i](bytes.fromhex(p.decode())) for i, p in zip(spec.key, parts, strict=True)
    )


def _kind(col: Column) -> Kind:
    assert col.kind is not None, f"{col.name}: unsupported type {col.data_type}"
    return col.kind


# --- node-owned schema ----------------------------------------------------------------

CAPTURE = qualified(SCHEMA, "capture")
TABLE_IDS = qualified(SCHEMA, "tables")
POSITION = qualified(SCHEMA, "position")

SCHEMA_DDL = (
    f"CREATE DATABASE IF NOT EXISTS {ident(SCHEMA)} CHARACTER SET utf8mb4",
    # Table ids keep capture rows short; they are local to the node (never replicated).
    f"""CREATE TABLE IF NOT EXISTS {TABLE_IDS} (
        table_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        schema_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        table_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        UNIQUE KEY by_name (schema_name, table_name)
    ) ENGINE=InnoDB""",
    # One row per captured row event, written by the triggers inside the user's transaction
    # (so a rollback leaves nothing) and drained at its commit. The drain finds its rows by
    # conn_id without locking and deletes them by primary key, so it takes no gap locks
    # that would stall other sessions' captures until its commit.
    f"""CREATE TABLE IF NOT EXISTS {CAPTURE} (
        seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        conn_id BIGINT UNSIGNED NOT NULL,
        table_id INT UNSIGNED NOT NULL,
        key_image MEDIUMBLOB NOT NULL,
        old_keys MEDIUMBLOB NULL,
        KEY by_conn (conn_id)
    ) ENGINE=InnoDB""",
    f"""CREATE TABLE IF NOT EXISTS {POSITION} (
        id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
        cluster_uuid CHAR(36) CHARACTER SET ascii NOT NULL,
        seqno BIGINT NOT NULL
    ) ENGINE=InnoDB""",
    f"INSERT IGNORE INTO {POSITION} VALUES (0, '00000000-0000-0000-0000-000000000000', -1)",
)
DROP_SCHEMA = f"DROP DATABASE IF EXISTS {ident(SCHEMA)}"
READ_POSITION = f"SELECT cluster_uuid, seqno FROM {POSITION} WHERE id = 0"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


ER_POSITION_BEHIND = 1180  # ER_ERROR_DURING_COMMIT: `advance_position`'s refusal


def update_position(cluster_uuid: str, seqno: int) -> str:
    if not _UUID.fullmatch(cluster_uuid) or type(seqno) is not int:
        raise ValueError(f"bad position {cluster_uuid!r}:{seqno!r}")
    return f"UPDATE {POSITION} SET cluster_uuid = '{cluster_uuid}', seqno = {seqno} WHERE id = 0"


def advance_position(cluster_uuid: str, seqno: int, at_least: int) -> str:
    """A pipelined commit's position update, then a check (MariaDB runs compound
    statements outside stored programs) that stops the COMMIT sent after it if the row was
    not at `at_least` or beyond: the commit entered before ours then failed."""
    if type(at_least) is not int:
        raise ValueError(f"bad predecessor seqno {at_least!r}")
    return (
        f"{update_position(cluster_uuid, seqno)} AND seqno >= {at_least}; "
        f"IF ROW_COUNT() <> 1 THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = "
        f"{ER_POSITION_BEHIND}, MESSAGE_TEXT = 'wsrep: position below seqno {at_least}'; "
        "END IF"
    )


def set_auto_increment(scope: str, increment: int, offset: int) -> str:
    """Galera's wsrep_auto_increment_control values, for the server (GLOBAL: sessions
    that connect later) or one session (SESSION)."""
    if scope not in ("GLOBAL", "SESSION") or not 1 <= offset <= increment <= 65535:
        raise ValueError(f"bad auto_increment {scope} {increment}/{offset}")
    return f"SET {scope} auto_increment_increment = {increment}, auto_increment_offset = {offset}"


# --- catalog (information_schema) -----------------------------------------------------


def _schema_filter(column: str, schemas: Sequence[str] | None) -> str:
    if schemas is None:
        return f"{column} NOT IN ({', '.join(map(string_literal, SYSTEM_SCHEMAS))})"
    return f"{column} IN ({', '.join(map(string_literal, schemas))})" if schemas else "FALSE"


def tables_query(schemas: Sequence[str] | None) -> str:
    return (
        "SELECT TABLE_SCHEMA, TABLE_NAME, "
        "IF(TABLE_TYPE = 'BASE TABLE', ENGINE, CONCAT(ENGINE, ' ', LOWER(TABLE_TYPE))) "
        "FROM information_schema.TABLES "
        "WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
        f"AND {_schema_filter('TABLE_SCHEMA', schemas)}"
    )


def register_tables(names: Sequence[tuple[str, str]]) -> str:
    rows = ", ".join(f"({string_literal(s)}, {string_literal(t)})" for s, t in names)
    return f"INSERT IGNORE INTO {TABLE_IDS} (schema_name, table_name) VALUES {rows}"


TABLE_IDS_QUERY = f"SELECT table_id, schema_name, table_name FROM {TABLE_IDS}"


def columns_query(schemas: Sequence[str] | None) -> str:
    return (
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, "
        "COLLATION_NAME, IS_NULLABLE, IS_GENERATED FROM information_schema.COLUMNS "
        f"WHERE {_schema_filter('TABLE_SCHEMA', schemas)} "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    )


def unique_keys_query(schemas: Sequence[str] | None) -> str:
    return (
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART "
        "FROM information_schema.STATISTICS "
        f"WHERE NON_UNIQUE = 0 AND {_schema_filter('TABLE_SCHEMA', schemas)} "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX"
    )


def foreign_keys_query(schemas: Sequence[str] | None) -> str:
    return (
        "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, "
        "k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, "
        "r.UNIQUE_CONSTRAINT_NAME, r.DELETE_RULE, r.UPDATE_RULE "
        "FROM information_schema.KEY_COLUMN_USAGE k "
        "JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
        "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
        "AND r.TABLE_NAME = k.TABLE_NAME "
        "WHERE k.REFERENCED_TABLE_NAME IS NOT NULL "
        f"AND {_schema_filter('k.TABLE_SCHEMA', schemas)} "
        "ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION"
    )


def all_triggers_query(schemas: Sequence[str] | None) -> str:
    """(schema, table, trigger name) of every trigger of the replicated tables."""
    return (
        "SELECT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, TRIGGER_NAME "
        f"FROM information_schema.TRIGGERS WHERE {_schema_filter('EVENT_OBJECT_SCHEMA', schemas)}"
    )


def triggers_query(schema: str, table: str) -> str:
    return (
        "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER, "
        "SQL_MODE, COLLATION_CONNECTION FROM information_schema.TRIGGERS "
        f"WHERE EVENT_OBJECT_SCHEMA = {string_literal(schema)} "
        f"AND EVENT_OBJECT_TABLE = {string_literal(table)} "
        "ORDER BY ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER"
    )


# --- triggers -------------------------------------------------------------------------


def trigger_name(shape: TableShape, timing: str, event: str) -> str:
    return f"wsrep_{shape.table_id}_{timing[0].lower()}{event[0].lower()}"


def create_trigger(
    schema: str,
    table: str,
    name: str,
    timing: str,
    event: str,
    body: str,
    order: str = "",
    definer: str = "",
) -> str:
    """`order` is "FOLLOWS x"/"PRECEDES x" or empty; `definer` is "user@host" or empty."""
    who = ""
    if definer:
        user, _, host = definer.rpartition("@")
        who = f"DEFINER = {ident(user)}@{ident(host)} "
    return (
        f"CREATE OR REPLACE {who}TRIGGER {qualified(schema, name)} {timing} {event} "
        f"ON {qualified(schema, table)} FOR EACH ROW {order} {body}"
    )


def drop_trigger(schema: str, name: str) -> str:
    return f"DROP TRIGGER IF EXISTS {qualified(schema, name)}"


_INSERT_CAPTURE = f"INSERT INTO {CAPTURE} (conn_id, table_id, key_image, old_keys)"


def _capture_row(shape: TableShape, key_image: str, old_keys: str) -> str:
    return f"{_INSERT_CAPTURE} VALUES (CONNECTION_ID(), {shape.table_id}, {key_image}, {old_keys});"


def after_trigger_body(
    shape: TableShape,
    event: str,
    update_cascades: Sequence[Sequence[Hop]] = (),
    shapes: dict[tuple[str, str], TableShape] | None = None,
) -> str:
    """AFTER INSERT/UPDATE/DELETE: record the row's key (old and new) for the drain.

    Only keys are captured; the drain reads the final row images at commit, which is
    what makes the capture the net effect of the whole transaction. After an UPDATE of
    a parent's referenced columns, also the new keys of rows its ON UPDATE CASCADE
    reached (a child whose key holds the FK columns has a new key now)."""
    if event == "INSERT":
        work = _capture_row(shape, key_image_expr("NEW", shape), "NULL")
    elif event == "DELETE":
        work = _capture_row(shape, key_image_expr("OLD", shape), unique_keys_expr("OLD", shape))
    else:  # the new key too, if it differs (byte-wise: 'a' -> 'A' is a change)
        work = (
            _capture_row(shape, key_image_expr("OLD", shape), unique_keys_expr("OLD", shape))
            + f" IF NOT ({_same_key(shape)}) THEN "
            + _capture_row(shape, key_image_expr("NEW", shape), "NULL")
            + " END IF; "
            + " ".join(_cascade_captures(update_cascades, shapes or {}, "UPDATE", "NEW"))
        )
    return f"IF {APPLIER_FLAG} IS NULL THEN {work} END IF"


def _same_key(shape: TableShape) -> str:
    """NEW has OLD's key image: every key column reads as the same bytes. Compared column
    by column, so an update that keeps the key (the common case) builds no key image."""
    return " AND ".join(
        f"CAST({read_expr(f'OLD.{ident(c)}', k)} AS BINARY) <=> "
        f"CAST({read_expr(f'NEW.{ident(c)}', k)} AS BINARY)"
        for c in shape.identifying_key().columns
        for k in (_kind(shape.by_name[c]),)
    )


def _fk_match(child: str, parent: str, fk: ForeignKey) -> str:
    return " AND ".join(
        f"{child}.{ident(c)} = {parent}.{ident(p)}"
        for c, p in zip(fk.columns, fk.parent_columns, strict=True)
    )


def cascade_capture(
    path: Sequence[Hop], shapes: dict[tuple[str, str], TableShape], origin: str = "OLD"
) -> str:
    """Record the keys of rows an InnoDB cascade along `path` changes.

    InnoDB cascades fire no triggers, so the parent's triggers record the keys of the
    rows reached through the chain of foreign keys: one CTE per hop, the first from
    `origin` (OLD before the change, with the rows' unique keys; NEW after an update, for
    keys the cascade changed), a closure hop recursive (UNION, so cyclic data ends too)."""
    ctes = []
    for i, hop in enumerate(path):
        child = f"{qualified(*hop.table)} c"
        if i == 0:
            rows = f"SELECT c.* FROM {child} WHERE {_fk_match('c', origin, hop.fk)}"
        else:
            rows = f"SELECT c.* FROM {child} JOIN wsrep_h{i - 1} p ON {_fk_match('c', 'p', hop.fk)}"
        if hop.closure:
            rows += (
                f" UNION SELECT c.* FROM {child} JOIN wsrep_h{i} p ON {_fk_match('c', 'p', hop.fk)}"
            )
        ctes.append(f"wsrep_h{i} AS ({rows})")
    reached = shapes[path[-1].table]
    old_keys = unique_keys_expr("h", reached) if origin == "OLD" else "NULL"
    return (
        f"{_INSERT_CAPTURE} WITH RECURSIVE {', '.join(ctes)} "
        f"SELECT CONNECTION_ID(), {reached.table_id}, {key_image_expr('h', reached)}, "
        f"{old_keys} FROM wsrep_h{len(path) - 1} h;"
    )


def _cascade_captures(
    paths: Sequence[Sequence[Hop]],
    shapes: dict[tuple[str, str], TableShape],
    event: str,
    origin: str,
) -> list[str]:
    """One capture per path; for UPDATE only when the referenced columns change."""
    parts = []
    for path in paths:
        work = cascade_capture(path, shapes, origin)
        if event == "UPDATE":
            same = " AND ".join(
                f"CAST(OLD.{ident(c)} AS BINARY) <=> CAST(NEW.{ident(c)} AS BINARY)"
                for c in path[0].fk.parent_columns
            )
            work = f"IF NOT ({same}) THEN {work} END IF;"
        parts.append(work)
    return parts


def before_trigger_body(
    shape: TableShape,
    event: str,
    paths: Sequence[Sequence[Hop]],
    shapes: dict[tuple[str, str], TableShape],
) -> str:
    """BEFORE DELETE/UPDATE of a parent: record rows its cascades are about to change."""
    parts = _cascade_captures(paths, shapes, event, "OLD")
    return f"IF {APPLIER_FLAG} IS NULL THEN BEGIN {' '.join(parts)} END; END IF"


def refusal_body(reason: str) -> str:
    """A BEFORE trigger body that fails every write with `reason` (SIGNAL, SQLSTATE 45000)."""
    message = reason.encode("ascii", "replace").decode()[:128].replace("'", "''")
    signal = f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'"
    return f"IF {APPLIER_FLAG} IS NULL THEN {signal}; END IF"


def guard(statement: str) -> str:
    return f"{GUARD_OPEN}{statement}{GUARD_CLOSE}"


def unguard(statement: str) -> str | None:
    """The user's own statement inside a guard, or None if it is not guarded."""
    if statement.startswith(GUARD_OPEN) and statement.endswith(GUARD_CLOSE):
        return statement[len(GUARD_OPEN) : -len(GUARD_CLOSE)]
    return None


def set_trigger_context(sql_mode: str, collation: str) -> str:
    """Session settings a re-created user trigger must be defined under."""
    mode, coll = string_literal(sql_mode), string_literal(collation)
    return f"SET SESSION sql_mode = {mode}, collation_connection = {coll}"


SAVE_CONTEXT = (
    "SET @wsrep_saved_mode = @@SESSION.sql_mode, @wsrep_saved_coll = @@collation_connection"
)
RESTORE_CONTEXT = (
    "SET SESSION sql_mode = @wsrep_saved_mode, collation_connection = @wsrep_saved_coll"
)


# --- drain (origin, inside the user's transaction) -------------------------------------

# A consistent (non-locking) read: only this connection writes rows with its id.
CAPTURED = (
    f"SELECT seq, table_id, key_image, old_keys FROM {CAPTURE} "
    "WHERE conn_id = CONNECTION_ID() ORDER BY seq"
)


def forget_captured(seqs: Sequence[int]) -> str:
    """Delete these capture rows, one primary-key lookup each. Not `seq IN (...)`: on a
    small table the optimizer scans it and locks every session's rows; nor a range on
    `by_conn`, which locks the gap up to the next session's rows; both until commit."""
    return "; ".join(f"DELETE FROM {CAPTURE} WHERE seq = {int(s)}" for s in seqs)


def row_literal(columns: Sequence[ColumnSpec], values: Sequence[Value]) -> str:
    """`(v1, v2, ...)`: one row (or key) for a VALUES or IN list."""
    if len(columns) != len(values):
        raise ValueError(f"{len(values)} values for {len(columns)} columns")
    shown = [
        "NULL" if v is None else _LITERALS[c.kind](c.kind, c.charset, v)
        for c, v in zip(columns, values)  # noqa: B905 - lengths checked
    ]
    return f"({', '.join(shown)})"


def _key_match(alias: str, spec: TableSpec) -> str:
    """`(k1, k2) IN (`: the rows follow."""
    names = [f"{alias}{ident(c.name)}" for c in spec.key_columns]
    return f"({', '.join(names)}) IN ("


def select_rows(shape: TableShape, keys: Sequence[Sequence[Value]]) -> str:
    """Final images of the rows with these keys, with their key image, unique keys and
    FK parent keys. A consistent (non-locking) read, so the drain never waits for another
    transaction's locks: rows this transaction changed read as changed; a row captured but
    not changed (a cascade whose statement `IGNORE` skipped) may read as of the snapshot,
    which certification makes safe: if a newer version committed since, this write set's
    EXCLUSIVE key on it conflicts and it aborts. In UTC, so FROM_UNIXTIME() of a TIMESTAMP
    key is exact even in a DST fall-back hour of the user's time zone."""
    key_columns = shape.spec.key_columns
    rows = [row_literal(key_columns, key) for key in keys]
    return f"{_select_prefix(shape)}{', '.join(rows)})"


# Shapes are immutable and a catalog reload makes new ones: the text is kept per shape
# object (by identity: hashing a shape walks all its columns and keys).
_SELECT_PREFIXES: dict[int, tuple[TableShape, str]] = {}


def _select_prefix(shape: TableShape) -> str:
    cached = _SELECT_PREFIXES.get(id(shape))
    if cached is not None and cached[0] is shape:
        return cached[1]
    spec = shape.spec
    exprs = [read_expr(f"u.{ident(c.name)}", c.kind) for c in spec.columns]
    prefix = (
        "SET STATEMENT time_zone = '+00:00' FOR "
        f"SELECT {key_image_expr('u', shape)}, {unique_keys_expr('u', shape)}, "
        f"{parent_keys_expr('u', shape)}, {', '.join(exprs)} "
        f"FROM {qualified(shape.schema, shape.name)} u "
        f"WHERE {_key_match('u.', spec)}"
    )
    if len(_SELECT_PREFIXES) >= 4096:
        _SELECT_PREFIXES.clear()
    _SELECT_PREFIXES[id(shape)] = (shape, prefix)
    return prefix


# --- applier --------------------------------------------------------------------------

APPLIER_SESSION = (
    "SET NAMES utf8mb4",
    # Values arrive exactly as the origin stored them: no auto-increment on 0, no date
    # checks, UTC for FROM_UNIXTIME, no FK checks or cascades (the write set already has
    # every row a cascade changed, and any apply order must work).
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION', "
    f"time_zone = '+00:00', foreign_key_checks = 0, {APPLIER_FLAG} = 1",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    # No BEGIN per write set (a statement and a result fewer): the first row statement
    # opens the transaction, the COMMIT or ROLLBACK after it ends it.
    "SET SESSION autocommit = 0",
)
BEGIN = "START TRANSACTION"


def scripts(statements: Sequence[str], limit: int) -> list[str]:
    """Join statements into multi-statement texts of at most about `limit` bytes each."""
    out: list[list[str]] = [[]]
    size = 0
    for statement in statements:
        if out[-1] and size + len(statement) > limit:
            out.append([])
            size = 0
        out[-1].append(statement)
        size += len(statement) + 2
    return ["; ".join(part) for part in out if part]


COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"


def delete_rows(spec: TableSpec, keys: Sequence[str]) -> str:
    """`keys` rendered by `row_literal`."""
    return f"{_delete_prefix(spec)}{', '.join(keys)})"


def replace_rows(spec: TableSpec, images: Sequence[str]) -> str:
    """`images` rendered by `row_literal`. REPLACE, not `upsert_rows`, on a table with
    several unique keys: a row that collides on any of them with a row this write set
    changes later must go (it is re-written with its own image)."""
    return f"{_replace_prefix(spec)}{', '.join(images)}"


def upsert_rows(spec: TableSpec, images: Sequence[str]) -> str:
    """`images` rendered by `row_literal`, written over the row they collide with, in place
    (INSERT ... ON DUPLICATE KEY UPDATE: no delete + insert, one trigger call, not two).
    The same rows as REPLACE only on a table with a single unique key."""
    prefix, suffix = _upsert_parts(spec)
    return f"{prefix}{', '.join(images)}{suffix}"


@functools.lru_cache(maxsize=4096)
def _delete_prefix(spec: TableSpec) -> str:
    return f"DELETE FROM {qualified(spec.schema, spec.name)} WHERE {_key_match('', spec)}"


@functools.lru_cache(maxsize=4096)
def _replace_prefix(spec: TableSpec) -> str:
    cols = ", ".join(ident(c.name) for c in spec.columns)
    return f"REPLACE INTO {qualified(spec.schema, spec.name)} ({cols}) VALUES "


@functools.lru_cache(maxsize=4096)
def _upsert_parts(spec: TableSpec) -> tuple[str, str]:
    names = [ident(c.name) for c in spec.columns]
    cols = ", ".join(names)
    # Every column, the key's too: right whichever single unique key the row collides on.
    assign = ", ".join(f"{n} = VALUES({n})" for n in names)
    return (
        f"INSERT INTO {qualified(spec.schema, spec.name)} ({cols}) VALUES ",
        f" ON DUPLICATE KEY UPDATE {assign}",
    )


# --- total order isolation (TOI) ------------------------------------------------------

# Session variables that change what a DDL/account statement does: they travel with it
# and are set on every other node before it runs (their values as SELECT @@ shows them).
TOI_VARIABLES = (
    "sql_mode",
    "character_set_client",
    "collation_connection",
    "character_set_results",
    "foreign_key_checks",
    "unique_checks",
    "time_zone",
    "timestamp",
    "default_storage_engine",
    "explicit_defaults_for_timestamp",
    "check_constraint_checks",
    "innodb_strict_mode",
    "old_mode",
    "div_precision_increment",
    "group_concat_max_len",
)
TOI_CONTEXT_QUERY = "SELECT DATABASE(), CURRENT_USER(), " + ", ".join(
    f"@@session.{name}" for name in TOI_VARIABLES
)
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_VARIABLE_NAME = re.compile(r"[a-z_]+")


def set_session_variable(name: str, value: str | None) -> str:
    """`SET SESSION name = value` for a value SELECT @@name showed (numbers stay numbers)."""
    if not _VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"bad session variable name {name!r}")
    if value is None:
        shown = "NULL"
    elif _NUMBER.fullmatch(value):
        shown = value
    else:
        shown = string_literal(value)
    return f"SET SESSION {name} = {shown}"


def use_schema(schema: str) -> str:
    return f"USE {ident(schema)}"


def account(current_user: str) -> str:
    """CURRENT_USER()'s `user@host` as an account literal for `DEFINER = ...`."""
    user, _, host = current_user.rpartition("@")
    return f"{ident(user)}@{ident(host)}"


# MariaDB's metadata_lock_info plugin lists who holds which metadata lock (MDL).
MDL_PLUGIN_INSTALLED = (
    "SELECT 1 FROM information_schema.PLUGINS "
    "WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'"
)
INSTALL_MDL_PLUGIN = "INSTALL SONAME 'metadata_lock_info'"


def mdl_blockers(
    waiters: Sequence[int], tables: Sequence[tuple[str, str]], schemas: Sequence[str]
) -> str:
    """Backend threads holding metadata locks on `tables` or in `schemas` (on anything,
    if neither is given) while one of the `waiters` waits for a metadata lock."""
    ids = ", ".join(str(int(t)) for t in waiters)
    scope = []
    if tables:
        rows = ", ".join(f"({string_literal(s)}, {string_literal(t)})" for s, t in tables)
        scope.append(f"(m.TABLE_SCHEMA, m.TABLE_NAME) IN ({rows})")
    if schemas:
        scope.append(f"m.TABLE_SCHEMA IN ({', '.join(map(string_literal, schemas))})")
    where = " OR ".join(scope) or "1"
    return (
        "SELECT DISTINCT m.THREAD_ID FROM information_schema.METADATA_LOCK_INFO m "
        f"WHERE m.THREAD_ID NOT IN ({ids}) AND ({where}) AND EXISTS (SELECT 1 FROM "
        f"information_schema.PROCESSLIST p WHERE p.ID IN ({ids}) "
        "AND p.STATE LIKE 'Waiting for%metadata lock')"
    )
