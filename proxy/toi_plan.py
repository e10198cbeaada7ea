"""What a DDL or account statement touches, for total order isolation (TOI). Pure.

`plan_isolation` reads the statement (with the classifier's `StatementInfo`) and says
whether it can run under TOI, which tables and schemas it touches (their certification
keys make concurrent row write sets on them fail), whether the capture machinery must
follow the new shape afterwards, and where a `DEFINER` clause goes when the statement
leaves it to the session's user (other nodes run it as another user).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from certification.keys import Key, table_key
from proxy.capture.mariadb_sql import SCHEMA as NODE_SCHEMA
from proxy.sql_text import SqlMode, TokenCursor
from proxy.statement_types import StatementInfo, StatementKind

Name = tuple[str, str]  # (schema, table)

# Objects of CREATE/ALTER/DROP that run under TOI, and the verbs each allows.
_OBJECTS: dict[str, frozenset[str]] = {
    "TABLE": frozenset({"CREATE", "ALTER", "DROP"}),
    "DATABASE": frozenset({"CREATE", "ALTER", "DROP"}),
    "SCHEMA": frozenset({"CREATE", "ALTER", "DROP"}),
    "INDEX": frozenset({"CREATE", "DROP"}),
    "VIEW": frozenset({"CREATE", "ALTER", "DROP"}),
    "USER": frozenset({"CREATE", "ALTER", "DROP"}),
    "ROLE": frozenset({"CREATE", "DROP"}),
    "TRIGGER": frozenset({"CREATE", "DROP"}),
    "PROCEDURE": frozenset({"CREATE", "ALTER", "DROP"}),
    "FUNCTION": frozenset({"CREATE", "ALTER", "DROP"}),
}
# Objects named so the refusal can say what is not replicated (and why).
_REFUSED = {
    "EVENT": "events run on every node's own schedule, so their writes would not replicate",
    "SEQUENCE": "sequence values are not captured",
    "SERVER": "federated servers are node-local",
    "TABLESPACE": "tablespaces are node-local",
    "LOGFILE": "tablespaces are node-local",
    "PACKAGE": "packages are not supported",
}
# Objects whose CREATE/ALTER takes DEFINER = ...; the session's user when it is left out.
_DEFINED = frozenset({"VIEW", "TRIGGER", "PROCEDURE", "FUNCTION"})
# Objects whose change the capture machinery must follow (triggers, catalog).
_RESHAPING = frozenset({"TABLE", "DATABASE", "SCHEMA", "INDEX", "TRIGGER"})


class NotIsolatable(Exception):
    """The statement cannot run under TOI; the message says why, for the client."""


@dataclass(frozen=True, slots=True)
class IsolationPlan:
    verb: str  # CREATE, ALTER, DROP, RENAME, TRUNCATE, GRANT, REVOKE, SET
    object: str  # TABLE, DATABASE, INDEX, VIEW, USER, TRIGGER, ... ("USER" for grants)
    tables: tuple[Name, ...]  # tables/views named, schema resolved; unresolvable left out
    schemas: tuple[str, ...]  # schemas all of whose tables are touched (DROP DATABASE ...)
    reshapes: bool  # capture triggers and the catalog must be regenerated afterwards
    definer_at: int | None  # where `DEFINER = user` goes if the text has none

    def keys(self, known_tables: Iterable[Name]) -> tuple[Key, ...]:
        """TABLE keys: the tables named, and every known table of a schema touched whole
        (the index has no schema wildcard; `known_tables`: the origin's catalog)."""
        names = dict.fromkeys(self.tables)
        wanted = set(self.schemas)
        for name in sorted(known_tables):
            if name[0] in wanted:
                names.setdefault(name)
        return tuple(table_key(schema, table) for schema, table in names)

    def with_definer(self, raw: bytes, text: str, definer: str) -> bytes:
        """The statement's bytes `raw` (read as `text`) with `DEFINER = definer` (an
        account literal) where it needs one; unchanged if the bytes before that point are
        not the text's (not utf-8: the keywords' position is unknown)."""
        if self.definer_at is None:
            return raw
        head = text[: self.definer_at].encode("utf-8")
        if not raw.startswith(head):
            return raw
        return head + f"DEFINER = {definer} ".encode() + raw[len(head) :]


def plan_isolation(
    text: str, info: StatementInfo, schema: str | None, mode: SqlMode = SqlMode.DEFAULT
) -> IsolationPlan:
    """The TOI plan of a DDL/account statement `text` classified as `info`, run with
    current database `schema`. Raises NotIsolatable for what TOI does not replicate."""
    if info.kind not in (StatementKind.DDL, StatementKind.ACCOUNT) or info.temporary:
        raise ValueError(f"not a statement for TOI: {info.kind.value}")
    cur = TokenCursor(text, 0, mode)
    verb = cur.word()
    cur.next()
    if verb == "SET" and cur.accept("STATEMENT"):  # SET STATEMENT ... FOR <statement>
        cur.skip_to("FOR", limit=1 << 20)
        verb = cur.word()
        cur.next()
    obj, definer_at = _object(cur, verb)
    if obj in _REFUSED:
        raise NotIsolatable(
            f"wsrep-proxy does not replicate {verb} {obj}: {_REFUSED[obj]}; run it on every "
            "node's backend if you must"
        )
    if verb in ("CREATE", "ALTER", "DROP"):
        if verb not in _OBJECTS.get(obj, ()):
            raise NotIsolatable(
                f"wsrep-proxy does not replicate {verb} {obj or '...'} by total order isolation"
            )
    elif verb not in ("RENAME", "TRUNCATE", "GRANT", "REVOKE", "SET"):
        raise NotIsolatable(f"wsrep-proxy does not replicate {verb} by total order isolation")
    tables = tuple(
        (name.schema or schema, name.name) for name in info.tables if name.schema or schema
    )
    schemas: tuple[str, ...] = ()
    if obj in ("DATABASE", "SCHEMA"):
        schemas = info.schemas or ((schema,) if schema else ())
        obj = "DATABASE"
    elif obj == "TRIGGER" and not tables:  # DROP TRIGGER: its table is not named
        schemas = (schema,) if schema else ()
    if NODE_SCHEMA in {s for s, _ in tables} | set(schemas):
        raise NotIsolatable(
            f"the {NODE_SCHEMA} schema belongs to each node's replication machinery: "
            "it is not replicated and not to be changed"
        )
    if verb == "CREATE" and obj == "DATABASE":
        schemas = ()  # a new database has no tables yet
    return IsolationPlan(
        verb=verb,
        object=obj,
        tables=tables,
        schemas=tuple(s for s in schemas if s),
        reshapes=info.kind is StatementKind.DDL and obj in _RESHAPING,
        definer_at=definer_at,
    )


def _object(cur: TokenCursor, verb: str) -> tuple[str, int | None]:
    """The object keyword after the verb (skipping OR REPLACE, ALGORITHM = ..., ...), and
    where a DEFINER clause would go if there is none."""
    if verb in ("GRANT", "REVOKE", "SET"):
        return "USER", None
    if verb == "RENAME":
        return ("USER" if cur.accept("USER") else "TABLE"), None
    if verb == "TRUNCATE":
        return "TABLE", None
    if verb not in ("CREATE", "ALTER", "DROP"):
        return "", None
    has_definer = False
    insert_at: int | None = None
    for _ in range(64):
        tok = cur.peek()
        if tok is None:
            return "", None
        word = tok.upper
        if word == "DEFINER":
            has_definer = True
        if insert_at is None and (
            word == "AGGREGATE" or (word == "SQL" and cur.word(1) == "SECURITY")
        ):
            insert_at = tok.start
        if word in _OBJECTS or word in _REFUSED:
            break
        cur.next()
    else:
        return "", None
    obj = cur.word()
    if obj not in _DEFINED or verb == "DROP" or has_definer:
        return obj, None
    if obj == "FUNCTION" and _is_udf(cur):
        return obj, None
    return obj, tok.start if insert_at is None else insert_at


def _is_udf(cur: TokenCursor) -> bool:
    """CREATE FUNCTION f RETURNS type SONAME 'lib': a loadable function, no definer."""
    cur.next()
    cur.accept_seq("IF", "NOT", "EXISTS")
    cur.qualified_name()
    return cur.word() == "RETURNS"
