"""Row-image codec: round trips, and garbage always gets a RowImageError."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.capture.rowimage import (
    MAGIC,
    ColumnSpec,
    Kind,
    Op,
    RowChange,
    RowImageError,
    TableSpec,
    Value,
    decode_changes,
    encode_changes,
)

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
digits = st.text("0123456789", min_size=1, max_size=20)


def values_of(kind: Kind) -> st.SearchStrategy[Value]:
    if kind is Kind.INT:
        return st.integers(-(2**63), 2**64 - 1)
    if kind in (Kind.BITS, Kind.ENUM, Kind.SET):
        return st.integers(0, 2**64 - 1)
    if kind is Kind.FLOAT32:
        return st.floats(width=32, allow_nan=False, allow_infinity=False)
    if kind is Kind.FLOAT64:
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind is Kind.DECIMAL:
        return st.builds(lambda s, a, b: f"{s}{a}.{b}", st.sampled_from(["", "-"]), digits, digits)
    if kind is Kind.TEMPORAL:
        return st.sampled_from(["2024-02-29", "-838:59:59.000001", "0000-00-00 00:00:00", "2155"])
    if kind is Kind.TIMESTAMP:
        return st.builds(lambda s, f: f"{s}.{f:06}", st.integers(0, 2**31), st.integers(0, 999999))
    return st.binary(max_size=300)


@st.composite
def tables(draw: st.DrawFn) -> TableSpec:
    kinds = draw(st.lists(st.sampled_from(list(Kind)), min_size=1, max_size=12))
    col_names = draw(st.lists(names, min_size=len(kinds), max_size=len(kinds), unique=True))
    columns = tuple(
        ColumnSpec(n, k, draw(st.sampled_from(["utf8mb4", "latin1"])) if k is Kind.TEXT else "")
        for n, k in zip(col_names, kinds, strict=True)
    )
    key = draw(st.lists(st.integers(0, len(kinds) - 1), min_size=1, max_size=3, unique=True))
    return TableSpec(draw(names), draw(names), columns, tuple(key))


@st.composite
def changes(draw: st.DrawFn) -> list[RowChange]:
    specs = draw(st.lists(tables(), min_size=1, max_size=3))
    out = []
    for _ in range(draw(st.integers(0, 8))):
        spec = draw(st.sampled_from(specs))
        if draw(st.booleans()):
            vals = tuple(draw(values_of(c.kind)) for c in spec.key_columns)
            out.append(RowChange(spec, Op.DELETE, vals))
        else:
            image = tuple(
                None if draw(st.integers(0, 5)) == 0 else draw(values_of(c.kind))
                for c in spec.columns
            )
            out.append(RowChange(spec, Op.UPSERT, image))
    return out


def same(a: list[RowChange], b: list[RowChange]) -> bool:
    def norm(v: Value) -> object:  # -0.0 == 0.0 in Python; compare floats by their bits
        return struct.pack("<d", v) if isinstance(v, float) else v

    return len(a) == len(b) and all(
        x.table == y.table
        and x.op is y.op
        and list(map(norm, x.values)) == list(map(norm, y.values))
        for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=300, deadline=None)
@given(changes())
def test_round_trip(rows: list[RowChange]) -> None:
    assert same(decode_changes(encode_changes(rows)), rows)


@settings(max_examples=300, deadline=None)
@given(changes(), st.data())
def test_truncated_or_flipped_never_crashes(rows: list[RowChange], data: st.DataObject) -> None:
    blob = encode_changes(rows)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(RowImageError):
        decode_changes(blob[:cut])
    with pytest.raises(RowImageError):
        decode_changes(blob + data.draw(st.binary(min_size=1, max_size=4)))
    pos = data.draw(st.integers(0, len(blob) - 1))
    flipped = blob[:pos] + bytes([blob[pos] ^ data.draw(st.integers(1, 255))]) + blob[pos + 1 :]
    try:
        decoded = decode_changes(flipped)
    except RowImageError:
        return
    # A flip that still decodes gives well-formed changes (they re-encode identically).
    assert decode_changes(encode_changes(decoded)) is not None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_rejected_with_a_clear_error(blob: bytes) -> None:
    try:
        decode_changes(MAGIC + b"\x02" + blob)
    except RowImageError as exc:
        assert str(exc)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "bad magic"),
        (b"XYZ\x01\x00\x00", "bad magic"),
        (MAGIC + b"\x01\x00\x00", "version 1 not supported"),
        (MAGIC + b"\x02\x00\x01\x00", "table index 0 of 0"),
        (MAGIC + b"\x02\x00\x00\x00", "trailing bytes"),
        (MAGIC + b"\x02" + b"\xff" * 11, "overlong varint"),
        (MAGIC + b"\x02\x05", "truncated"),
    ],
)
def test_specific_errors(blob: bytes, message: str) -> None:
    with pytest.raises(RowImageError, match=message):
        decode_changes(blob)


def _one(kind: Kind, value: Value) -> list[RowChange]:
    spec = TableSpec("s", "t", (ColumnSpec("id", Kind.INT), ColumnSpec("v", kind)), (0,))
    return [RowChange(spec, Op.UPSERT, (1, value))]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Kind.DECIMAL, "1; DROP TABLE t"),
        (Kind.TEMPORAL, "2020-01-01' OR '1"),
        (Kind.TIMESTAMP, "1e9"),
        (Kind.FLOAT64, math.inf),
        (Kind.FLOAT64, math.nan),
        (Kind.FLOAT32, 0.1),  # not a binary32
        (Kind.FLOAT32, 1e300),  # beyond binary32's range
        (Kind.INT, 2**64),
        (Kind.ENUM, -1),
        (Kind.BYTES, "text"),
    ],
)
def test_encoder_refuses_values_that_are_not_their_kind(kind: Kind, value: Value) -> None:
    with pytest.raises(RowImageError):
        encode_changes(_one(kind, value))


def test_decoder_refuses_sql_in_a_text_value() -> None:
    blob = encode_changes(_one(Kind.DECIMAL, "12.5"))
    evil = blob.replace(b"\x0412.5", b"\x041;--")
    assert evil != blob
    with pytest.raises(RowImageError, match="malformed DECIMAL"):
        decode_changes(evil)


def test_delete_needs_its_key_values() -> None:
    spec = TableSpec("s", "t", (ColumnSpec("id", Kind.INT),), (0,))
    with pytest.raises(RowImageError):
        encode_changes([RowChange(spec, Op.DELETE, (None,))])
    with pytest.raises(RowImageError):
        encode_changes([RowChange(spec, Op.UPSERT, (1, 2))])


def test_bad_table_specs_are_refused() -> None:
    col = ColumnSpec("id", Kind.INT)
    for spec in (
        TableSpec("s", "t", (col,), ()),
        TableSpec("s", "t", (col,), (1,)),
        TableSpec("s", "t", (col, col), (0, 0)),
        TableSpec("s", "t", (ColumnSpec("x", Kind.TEXT, "utf8mb4; --"),), (0,)),
        TableSpec("", "t", (col,), (0,)),
    ):
        with pytest.raises(RowImageError):
            encode_changes([RowChange(spec, Op.DELETE, (1,) * len(spec.key))])


INT_EDGES = [-(2**63), -(2**63) + 1, -129, -128, -1, 0, 1, 127, 128, 255, 256, 2**63 - 1, 2**63,
             2**64 - 1]  # fmt: skip


@pytest.mark.parametrize("kind", [Kind.INT, Kind.BITS, Kind.ENUM, Kind.SET])
def test_integer_edges_round_trip(kind: Kind) -> None:
    values = [v for v in INT_EDGES if kind is Kind.INT or v >= 0]
    rows = [row for v in values for row in _one(kind, v)]
    assert [c.values for c in decode_changes(encode_changes(rows))] == [(1, v) for v in values]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x00", "integer of 0 bytes"),
        (b"\x0a" + bytes(10), "integer of 10 bytes"),
        (b"\x09" + (2**64).to_bytes(9, "little"), "out of range"),
        (b"\x09" + (-(2**63) - 1).to_bytes(9, "little", signed=True), "out of range"),
    ],
)
def test_integers_out_of_their_range_are_refused(value: bytes, message: str) -> None:
    blob = encode_changes(_one(Kind.INT, 5))
    assert blob.endswith(b"\x01\x05")  # the value 5: one byte
    with pytest.raises(RowImageError, match=message):
        decode_changes(blob[:-2] + value)


def test_equal_specs_are_equal_keys_whatever_their_codec() -> None:
    make = lambda: TableSpec("s", "t", (ColumnSpec("id", Kind.INT),), (0,))  # noqa: E731
    used, fresh = make(), make()
    encode_changes([RowChange(used, Op.DELETE, (1,))])  # compiles `used`'s codec
    assert used == fresh and hash(used) == hash(fresh) and {used: 1}[fresh] == 1
    assert decode_changes(encode_changes([RowChange(fresh, Op.DELETE, (1,))]))[0].table == used
