"""Whether a DML statement is a *locking write*: every existing row it reads, it reads
with an InnoDB lock, as the latest committed version (docs/design/certification.md, "A
later last_seen").

That holds for a single-table UPDATE/DELETE and for INSERT/REPLACE ... VALUES (ON
DUPLICATE KEY UPDATE included) whose expressions read nothing but the row itself: no
subquery, no other table, no user or system variable, no stored function. A transaction
made only of such statements may certify from the seqno the node had committed at COMMIT
(`Replication`), instead of the one before its first statement.

The verdict is conservative (False when in doubt) and cheap on a hit: the statement's
tokens with literals blanked out (its *shape*) key an LRU cache, so texts that differ in
their values only (literal SQL from an ORM) reach sqlglot once. Both halves of the
verdict depend on the shape alone: the token rules read no literal, and a literal's value
never changes sqlglot's tree around it.
"""

from __future__ import annotations

from proxy.sql_text import SqlMode, Tok, tokens
from proxy.statement_sqlglot import single_table_row_write

# Longer texts (bulk INSERTs) are judged "not a locking write" without looking: keeping
# the snapshot rule costs them nothing in practice, parsing them would.
MAX_TEXT = 4096
CACHE_SIZE = 4096

# Words that may stand before "(" in a locking write: MariaDB's own functions that read no
# table and no variable, and reserved words (neither kind can name a stored function
# when written unqualified: a native function wins over a stored one of the same name).
# Anything else before "(" may be a stored function, which may read anything.
_CALL_WORDS = """
    VALUES VALUE IN AND OR NOT XOR WHERE BY WHEN THEN ELSE CASE IS LIKE BETWEEN DIV MOD
    INTERVAL PARTITION ROW BINARY CHAR DECIMAL DATETIME TIME DATE TIMESTAMP DEFAULT
    NOW CURRENT_TIMESTAMP LOCALTIME LOCALTIMESTAMP SYSDATE CURDATE CURRENT_DATE CURTIME
    CURRENT_TIME UTC_TIMESTAMP UTC_DATE UTC_TIME UNIX_TIMESTAMP FROM_UNIXTIME DATE_ADD
    DATE_SUB ADDDATE SUBDATE ADDTIME SUBTIME DATEDIFF TIMEDIFF TIMESTAMPDIFF TIMESTAMPADD
    DATE_FORMAT STR_TO_DATE YEAR MONTH DAY HOUR MINUTE SECOND MICROSECOND LAST_DAY
    RAND UUID UUID_SHORT CONCAT CONCAT_WS SUBSTRING SUBSTR MID LEFT RIGHT LENGTH
    OCTET_LENGTH CHAR_LENGTH CHARACTER_LENGTH UPPER UCASE LOWER LCASE TRIM LTRIM RTRIM
    REPLACE LPAD RPAD REPEAT REVERSE LOCATE INSTR FIELD ELT FIND_IN_SET SPACE ASCII
    COALESCE IFNULL NULLIF IF GREATEST LEAST ABS SIGN CEIL CEILING FLOOR ROUND TRUNCATE
    POW POWER SQRT EXP LN LOG LOG2 LOG10 CAST CONVERT HEX UNHEX MD5 SHA1 SHA2 CRC32
    TO_BASE64 FROM_BASE64 JSON_SET JSON_INSERT JSON_REPLACE JSON_REMOVE JSON_OBJECT
    JSON_ARRAY JSON_ARRAY_APPEND JSON_MERGE_PATCH JSON_EXTRACT JSON_VALUE JSON_QUOTE
    JSON_UNQUOTE INET_ATON INET_NTOA INET6_ATON INET6_NTOA BIN OCT CONV LAST_INSERT_ID
"""
_CALLS = frozenset(_CALL_WORDS.split())
# Words that start a read of something else: a subquery, another statement's rows, a
# sequence (NEXT VALUE FOR s).
_READS = frozenset({"SELECT", "WITH", "TABLE", "EXISTS", "FOR", "LATERAL"})
_VERBS = frozenset({"UPDATE", "DELETE", "INSERT", "REPLACE"})

Shape = tuple[str, ...]


def is_locking_write(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> bool:
    """Whether `sql` (one statement) is a locking write; False when in doubt."""
    if len(sql) > MAX_TEXT:
        return False
    return _judged(shape(sql, mode), sql, mode)


def shape(sql: str, mode: SqlMode = SqlMode.DEFAULT) -> Shape:
    """The statement's tokens with every literal (string, number) as "?": words upper
    case, names and punctuation as written, variables kept (they decide)."""
    out: list[str] = []
    for tok in tokens(sql, 0, mode):
        kind = tok.kind
        if kind is Tok.STRING or (kind is Tok.WORD and tok.text[0].isdigit()):
            out.append("?")
        elif kind is Tok.WORD:
            out.append(tok.upper)
        elif kind is Tok.QIDENT:
            out.append("`" + tok.text)  # never equal to a word or punctuation
        elif kind is Tok.VAR:
            out.append("@" + tok.text)
        else:
            out.append(tok.text)
    return tuple(out)


def _judged(key: Shape, sql: str, mode: SqlMode) -> bool:
    hit = _verdicts.get((key, mode))
    if hit is not None:
        return hit
    verdict = tokens_allow(key) and single_table_row_write(sql, mode, _CALLS)
    if len(_verdicts) >= CACHE_SIZE:
        _verdicts.pop(next(iter(_verdicts)))  # oldest first: dicts keep insertion order
    _verdicts[(key, mode)] = verdict
    return verdict


_verdicts: dict[tuple[Shape, SqlMode], bool] = {}


def tokens_allow(key: Shape) -> bool:
    """The token rules: a DML verb first, no variable, no word that starts a read, and
    before every "(" a function of `_CALLS`, a reserved word, or the INSERT's table."""
    if not key or key[0] not in _VERBS:
        return False
    target = _insert_target_end(key)
    for i, part in enumerate(key):
        if part[0] == "@" or part in _READS:
            return False
        if part == "(" and i > 0 and i - 1 != target:
            before = key[i - 1]
            if not _punctuation(before) and before not in _CALLS:
                return False
    return True


def _punctuation(part: str) -> bool:
    """An operator or bracket; not a word, a name, a literal or a placeholder ("?")."""
    return len(part) == 1 and not (part.isalnum() or part in "_$?")


def _insert_target_end(key: Shape) -> int:
    """Index of the last token of the table name after INSERT/REPLACE ... INTO (-1: none),
    which a column list may follow: `INSERT INTO db.t (a, b)`."""
    if key[0] not in ("INSERT", "REPLACE"):
        return -1
    try:
        at = key.index("INTO") + 1
    except ValueError:
        return -1
    if at + 2 < len(key) and key[at + 1] == ".":
        at += 2
    return at if at < len(key) else -1
