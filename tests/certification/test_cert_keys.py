from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certification.keys import (
    Key,
    KeyFormatError,
    KeyKind,
    decode_key,
    decode_varint,
    encode_varint,
    row_key,
    table_key,
)

no_deadline = settings(deadline=None)  # timing on a shared machine is no property

EX, SH = KeyKind.EXCLUSIVE, KeyKind.SHARED

names = st.text(min_size=1, max_size=8)
values = st.lists(st.none() | st.binary(max_size=6), min_size=1, max_size=3).map(tuple)
row_specs = st.tuples(names, names, names, values, st.sampled_from([EX, SH]))


def key_from(spec: tuple[str, str, str, tuple[bytes | None, ...], KeyKind]) -> Key:
    schema, table, index, vals, kind = spec
    return row_key(schema, table, index, vals, kind)


keys = row_specs.map(key_from) | st.tuples(names, names).map(lambda t: table_key(*t))


# ---- the type rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "t", "PRIMARY", [b"1"]), True),
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "t", "PRIMARY", [b"2"]), False),
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "t", "uk", [b"1"]), False),
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "u", "PRIMARY", [b"1"]), False),
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("r", "t", "PRIMARY", [b"1"]), False),
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "t", "PRIMARY", [b"1"], SH), True),
        (row_key("s", "t", "PRIMARY", [b"1"], SH), row_key("s", "t", "PRIMARY", [b"1"], SH), False),
        (table_key("s", "t"), row_key("s", "t", "PRIMARY", [b"1"]), True),
        (table_key("s", "t"), row_key("s", "t", "PRIMARY", [b"1"], SH), True),
        (table_key("s", "t"), table_key("s", "t"), True),
        (table_key("s", "t"), table_key("s", "u"), False),
        (table_key("s", "t"), row_key("s", "u", "PRIMARY", [b"1"]), False),
        # lower_case_table_names=0: schema and table names are case-sensitive ...
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "T", "PRIMARY", [b"1"]), False),
        (table_key("S", "t"), table_key("s", "t"), False),
        # ... index names are not
        (row_key("s", "t", "PRIMARY", [b"1"]), row_key("s", "t", "primary", [b"1"]), True),
        # NULL is not the empty string, and column boundaries matter
        (row_key("s", "t", "uk", [None]), row_key("s", "t", "uk", [b""]), False),
        (row_key("s", "t", "uk", [b"ab", b""]), row_key("s", "t", "uk", [b"a", b"b"]), False),
    ],
)
def test_type_rule(a: Key, b: Key, conflict: bool) -> None:
    assert a.conflicts_with(b) is conflict
    assert b.conflicts_with(a) is conflict


def test_a_row_key_carries_its_table() -> None:
    assert row_key("shop", "orders", "PRIMARY", [b"7"]).table == table_key("shop", "orders").ident


# ---- encoding -----------------------------------------------------------------------------


@no_deadline
@given(keys)
def test_wire_form_round_trips(key: Key) -> None:
    data = key.to_bytes()
    assert decode_key(data) == (key, len(data))
    assert decode_key(b"xx" + data + b"yy", 2) == (key, 2 + len(data))


@no_deadline
@given(row_specs, row_specs)
def test_encoding_is_injective(a: tuple, b: tuple) -> None:
    normalized = (a[0], a[1], a[2].lower(), a[3]) == (b[0], b[1], b[2].lower(), b[3])
    assert (key_from(a).ident == key_from(b).ident) is normalized


@no_deadline
@given(st.binary(max_size=64), st.integers(0, 8))
def test_garbage_raises_only_key_format_error(data: bytes, pos: int) -> None:
    try:
        key, end = decode_key(data, pos)
    except KeyFormatError:
        return
    assert key.to_bytes() == data[pos:end]  # accepted bytes are exactly a key's wire form


@no_deadline
@given(keys, st.data())
def test_truncation_is_detected(key: Key, data: st.DataObject) -> None:
    wire = key.to_bytes()
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(KeyFormatError):
        decode_key(wire[:cut])


# Names and values past 127 bytes take the varint paths of the decoder, short ones its
# fast paths; both must accept and refuse exactly the same bytes.
long_names = names | st.text(min_size=100, max_size=140)
long_values = st.lists(st.none() | st.binary(max_size=300), min_size=1, max_size=200).map(tuple)
long_keys = st.tuples(long_names, long_names, long_names, long_values, st.sampled_from([EX, SH]))


@no_deadline
@given(keys | long_keys.map(key_from), st.data())
def test_a_flipped_byte_is_refused_or_a_well_formed_key(key: Key, data: st.DataObject) -> None:
    wire = key.to_bytes()
    assert decode_key(wire) == (key, len(wire))  # its table and index are known from now on
    pos = data.draw(st.integers(0, len(wire) - 1))
    flipped = wire[:pos] + bytes([wire[pos] ^ data.draw(st.integers(1, 255))]) + wire[pos + 1 :]
    try:
        got, end = decode_key(flipped)
    except KeyFormatError:
        return
    assert got.to_bytes() == flipped[:end]
    assert got.describe()  # every part of an accepted key parses


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x07\x02\x01s", "unknown key kind"),
        (b"\x02\x05\x01s\x01t\x00", "trailing bytes"),
        (b"\x00\x07\x01s\x01t\x01i\x00", "at least one value"),
        (b"\x02\x05\x01s\x02\xff\xfe", "utf-8"),
        (b"\x02\x05\x01s\x00\x01t", "empty or truncated name"),
        (b"\x02\x85\x00\x01s\x01t", "non-minimal varint"),
        (b"\x00\x08\x01s\x01t\x01i\xff\x7f", "value count"),
    ],
)
def test_malformed_keys_say_what_is_wrong(wire: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        decode_key(wire)


@no_deadline
@given(st.integers(0, 2**64 - 1))
def test_varint_round_trips(n: int) -> None:
    data = encode_varint(n)
    assert decode_varint(data, 0) == (len(data), n)


def test_varint_refuses_overlong_input() -> None:
    with pytest.raises(KeyFormatError):
        decode_varint(b"\xff" * 11, 0)
    with pytest.raises(ValueError):
        encode_varint(-1)


# ---- building keys ------------------------------------------------------------------------


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="bytes or None"):
        row_key("s", "t", "PRIMARY", [1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="table_key"):
        row_key("s", "t", "PRIMARY", [b"1"], KeyKind.TABLE)
    with pytest.raises(ValueError, match="at least one"):
        row_key("s", "t", "PRIMARY", [])
    with pytest.raises(ValueError, match="empty"):
        table_key("", "t")


def test_describe_names_the_row_for_logs() -> None:
    key = row_key("shop", "Orders", "PRIMARY", [b"1", None], SH)
    assert key.describe() == "SHARED `shop`.`Orders` primary(0x31, NULL)"
    assert table_key("shop", "Orders").describe() == "TABLE `shop`.`Orders`"
