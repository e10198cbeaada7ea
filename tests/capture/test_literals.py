"""Parsing the drain's text values and rendering the applier's literals (no database: the
exactness of both against a real server is `test_types.py`'s)."""

from __future__ import annotations

import pytest

from proxy.capture import mariadb_sql as sql
from proxy.capture.rowimage import ColumnSpec, Kind, RowImageError, TableSpec, Value

EVERY_KIND = TableSpec(
    "s",
    "t",
    tuple(ColumnSpec(f"c{k.value}", k, "latin1" if k is Kind.TEXT else "") for k in Kind),
    (0,),
)
TEXT_ROW = [b"-5", b"-1.50", b"0.5", b"1e-300", b"5", b"2024-02-29 01:02:03", b"0.5",
            b"a'b", b"\x00\xff", b"2", b"3"]  # fmt: skip
VALUES: tuple[Value, ...] = (-5, "-1.50", 0.5, 1e-300, 5, "2024-02-29 01:02:03", "0.5",
                             b"a'b", b"\x00\xff", 2, 3)  # fmt: skip


def test_a_row_parses_to_the_values_of_its_kinds() -> None:
    assert sql.parse_row(EVERY_KIND, TEXT_ROW) == VALUES
    assert sql.parse_row(EVERY_KIND, [None] * len(Kind)) == (None,) * len(Kind)
    parsed = [sql.parse_value(c.kind, v) for c, v in zip(EVERY_KIND.columns, TEXT_ROW, strict=True)]
    assert parsed == list(VALUES)


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="10 values for 11 columns"):
        sql.parse_row(EVERY_KIND, TEXT_ROW[:-1])
    with pytest.raises(ValueError, match="10 values for 11 columns"):
        sql.row_literal(EVERY_KIND.columns, VALUES[:-1])


def test_literals_of_every_kind() -> None:
    assert sql.row_literal(EVERY_KIND.columns, VALUES) == (
        "(-5, -1.50, 0.5e0, 1e-300, 5, '2024-02-29 01:02:03', FROM_UNIXTIME(0.5), "
        "_latin1 X'612762', X'00ff', 2, 3)"
    )
    assert sql.literal(Kind.TIMESTAMP, "", "0.000000") == "'0000-00-00 00:00:00'"
    assert sql.literal(Kind.INT, "", None) == "NULL"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Kind.INT, "1; DROP TABLE t"),
        (Kind.INT, 2**64),
        (Kind.SET, -1),
        (Kind.DECIMAL, "1 OR 1"),
        (Kind.FLOAT64, float("nan")),
        (Kind.TEMPORAL, "2020-01-01' OR '1"),
        (Kind.TIMESTAMP, "NOW()"),
        (Kind.TEXT, "text, not bytes"),
        (Kind.BYTES, 7),
    ],
)
def test_a_value_not_of_its_kind_never_becomes_sql(kind: Kind, value: Value) -> None:
    with pytest.raises(RowImageError):
        sql.literal(kind, "utf8mb4", value)
