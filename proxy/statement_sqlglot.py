"""The slow, general path: sqlglot's MySQL parser, for what the keyword path cannot name.

Used for the target tables of multi-table UPDATE/DELETE and WITH ... DML, and as an
independent second opinion the tests compare the fast path with. Never raises: text
sqlglot cannot parse gives an empty answer (or None).
"""

from __future__ import annotations

import logging

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from proxy.sql_text import SqlMode, Tok, tokens, unquote_ident, unquote_string
from proxy.statement_types import StatementInfo, StatementKind, TableName

log = logging.getLogger("wsrep.classify")

K = StatementKind


# sqlglot's trees for malformed text have no guaranteed shape, so reading them can fail in
# these ways too; any of them means "no answer from sqlglot", never a crashed session.
_FAILURES = (SqlglotError, RecursionError, ValueError, AttributeError, TypeError, KeyError)


def _as_mariadb_reads_it(sql: str, mode: SqlMode) -> str:
    """The text as MariaDB's lexer reads it under `mode`, rewritten for sqlglot's MySQL
    dialect: comments dropped, executable comments opened (sqlglot knows neither `/*! */`
    nor all of MariaDB's comment rules), names in backticks, strings with escapes."""
    out: list[str] = []
    end = 0
    for tok in tokens(sql, 0, mode):
        if out and tok.start != end:
            out.append(" ")
        text = tok.text
        if tok.kind is Tok.QIDENT:
            text = "`" + unquote_ident(tok).replace("`", "``") + "`"
        elif tok.kind is Tok.STRING:
            text = "'" + unquote_string(tok, mode).replace("\\", "\\\\").replace("'", "''") + "'"
        out.append(text)
        end = tok.end
    return "".join(out)


def _parse(sql: str, mode: SqlMode) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(_as_mariadb_reads_it(sql, mode), read="mysql")
    except _FAILURES as e:
        log.debug("sqlglot cannot parse %.80r: %s", sql, e)
        return None


def _name(table: exp.Table) -> TableName:
    return TableName(table.db or None, table.name)


def _base_tables(node: exp.Expression | None) -> list[exp.Table]:
    """Tables of a FROM/JOIN clause, not those inside its subqueries."""
    if not isinstance(node, exp.Expression):
        return []
    return [t for t in node.find_all(exp.Table) if not t.find_ancestor(exp.Subquery)]


def _resolve(refs: list[str], candidates: list[exp.Table]) -> tuple[TableName, ...]:
    """Map target names/aliases of a multi-table DELETE to the tables they stand for."""
    by_alias = {t.alias_or_name: t for t in candidates}
    out = []
    for ref in refs:
        table = by_alias.get(ref)
        out.append(_name(table) if table is not None else TableName(None, ref))
    return tuple(dict.fromkeys(out))


def _targets(tree: exp.Expression) -> tuple[TableName, ...]:
    if isinstance(tree, exp.Insert):
        table = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
        return (_name(table),) if table is not None else ()
    if isinstance(tree, exp.Update):
        candidates = _base_tables(tree.this) + [
            t for j in tree.args.get("joins") or () for t in _base_tables(j)
        ]
        qualifiers = {eq.this.table for eq in tree.expressions if isinstance(eq.this, exp.Column)}
        if "" in qualifiers or not qualifiers:  # an unqualified column: any table may be it
            return tuple(dict.fromkeys(_name(t) for t in candidates))
        return _resolve(sorted(qualifiers), candidates)
    if isinstance(tree, exp.Delete):
        if tree.args.get("using"):  # DELETE FROM t1, t2 USING <joins>
            refs = [t.name for t in _base_tables(tree.this)]
            return _resolve(refs, [t for u in tree.args["using"] for t in _base_tables(u)])
        if tree.args.get("tables"):  # DELETE t1, t2 FROM <joins>
            return _resolve([t.name for t in tree.args["tables"]], _base_tables(tree.this))
        return tuple(dict.fromkeys(_name(t) for t in _base_tables(tree.this)))
    return ()


def dml_targets(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> tuple[TableName, ...]:
    """The tables an INSERT/UPDATE/DELETE (multi-table, or under WITH) writes to."""
    tree = _parse(sql, mode)
    try:
        # an empty name is sqlglot reading junk (an unterminated string) as a table
        return tuple(t for t in _targets(tree) if t.name) if tree is not None else ()
    except _FAILURES as e:
        log.debug("no tables from sqlglot's tree of %.80r: %s", sql, e)
        return ()


_DDL_KINDS = frozenset(
    {
        "TABLE",
        "VIEW",
        "INDEX",
        "SEQUENCE",
        "DATABASE",
        "SCHEMA",
        "PROCEDURE",
        "FUNCTION",
        "TRIGGER",
        "EVENT",
    }
)


def _ddl_tables(tree: exp.Create | exp.Drop | exp.Alter, kind: str) -> tuple[TableName, ...]:
    tables: list[exp.Expression | None]
    if kind == "INDEX":  # the index's table
        if isinstance(tree, exp.Create):
            tables = [tree.this.args.get("table")]
        else:
            on = tree.args.get("cluster")
            tables = [on.this if on is not None else None]
    elif kind not in ("TABLE", "VIEW", "SEQUENCE"):
        tables = []
    elif isinstance(tree, exp.Drop):
        tables = tree.args.get("tables") or [tree.this]
    elif isinstance(tree, exp.Alter):  # the table, and its new name if renamed
        actions = tree.args.get("actions") or ()
        tables = [tree.this, *(a.this for a in actions if isinstance(a, exp.AlterRename))]
    else:  # CREATE: `this` is the table, or a Schema(table, columns)
        tables = [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this]
    return tuple(_name(t) for t in tables if isinstance(t, exp.Table))


def classify_with_sqlglot(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> StatementInfo | None:
    """Kind and tables as sqlglot sees them; None where sqlglot has no structured answer."""
    tree = _parse(sql, mode)
    try:
        return _classify_tree(tree) if tree is not None else None
    except _FAILURES as e:
        log.debug("no class from sqlglot's tree of %.80r: %s", sql, e)
        return None


def _classify_tree(tree: exp.Expression) -> StatementInfo | None:
    if isinstance(tree, exp.Command):
        return None
    if isinstance(tree, exp.Query):  # SELECT, UNION, ...
        locked = any(lock.args.get("update") is not None for lock in tree.find_all(exp.Lock))
        return StatementInfo(K.LOCKING_READ if locked else K.READ)
    if isinstance(tree, exp.Insert | exp.Update | exp.Delete):
        return StatementInfo(K.DML, tables=_targets(tree))
    if isinstance(tree, exp.TruncateTable):
        tables = tuple(map(_name, tree.expressions))
        return StatementInfo(K.DDL, implicit_commit=True, tables=tables)
    if isinstance(tree, exp.Create | exp.Drop | exp.Alter):
        kind = str(tree.args.get("kind") or "").upper()
        if kind not in _DDL_KINDS:
            return None
        temporary = bool(tree.args.get("temporary")) or tree.find(exp.TemporaryProperty) is not None
        return StatementInfo(
            K.DDL,
            implicit_commit=not temporary,
            temporary=temporary,
            tables=_ddl_tables(tree, kind),
        )
    if isinstance(tree, exp.Rollback) and tree.args.get("savepoint"):
        return StatementInfo(K.SAVEPOINT, name=tree.args["savepoint"].name)
    kinds: dict[type[exp.Expression], StatementKind] = {
        exp.Transaction: K.TXN_BEGIN,
        exp.Commit: K.TXN_COMMIT,
        exp.Rollback: K.TXN_ROLLBACK,
        exp.Set: K.SET,
        exp.Show: K.SHOW,
        exp.Use: K.USE,
        exp.Describe: K.EXPLAIN,
    }
    kind = kinds.get(type(tree))
    return StatementInfo(kind) if kind is not None else None


# What a locking write may not contain anywhere: a read of other rows (subquery, EXISTS,
# a sequence), a variable.
_NOT_IN_LOCKING_WRITE = (
    exp.Query,
    exp.Subquery,
    exp.Exists,
    exp.Parameter,
    exp.SessionParameter,
    exp.NextValueFor,
)


def single_table_row_write(sql: str, mode: SqlMode, calls: frozenset[str]) -> bool:
    """sqlglot's half of `proxy.locking_write`: a single-table UPDATE or DELETE, or an
    INSERT/REPLACE of VALUES, that names one table, reads no other rows and no variable,
    and calls no function sqlglot does not know unless `calls` names it (sqlglot knows
    neither stored functions nor some of MariaDB's, e.g. NOW()). False when sqlglot
    cannot tell."""
    text = _as_mariadb_reads_it(sql, mode)
    verb, _, rest = text.partition(" ")
    if verb.upper() == "REPLACE":  # sqlglot has no REPLACE: its grammar is INSERT's
        text = "INSERT " + rest
    try:
        tree = sqlglot.parse_one(text, read="mysql")
        return _single_table_row_write(tree, calls)
    except _FAILURES as e:
        log.debug("sqlglot cannot judge %.80r: %s", sql, e)
        return False


def _single_table_row_write(tree: exp.Expression, calls: frozenset[str]) -> bool:
    if isinstance(tree, exp.Insert):
        shape_ok = isinstance(tree.expression, exp.Values)
    elif isinstance(tree, exp.Update):
        shape_ok = not tree.args.get("from") and not tree.args.get("joins")
    elif isinstance(tree, exp.Delete):
        shape_ok = not tree.args.get("tables") and not tree.args.get("using")
    else:
        return False
    if not shape_ok or sum(1 for _ in tree.find_all(exp.Table)) != 1:
        return False
    if tree.find(*_NOT_IN_LOCKING_WRITE) is not None:
        return False
    return all(f.name.upper() in calls for f in tree.find_all(exp.Anonymous))
