"""Certification keys of captured rows: unique keys old and new, FK parents shared."""

from __future__ import annotations

import pytest

from certification.keys import Key, KeyKind, row_key
from proxy.capture.certkeys import merge, parent_keys, unique_keys
from proxy.capture.rowimage import Kind
from proxy.capture.shape import Column, ForeignKey, NotReplicable, TableShape, UniqueKey
from tests.capture.conftest import PairFactory


def _col(name: str, nullable: bool = False) -> Column:
    return Column(name, "int", Kind.INT, None, None, nullable, False)


SHAPE = TableShape(
    "s",
    "t",
    1,
    "InnoDB",
    (_col("id"), _col("u", nullable=True), _col("pid", nullable=True)),
    (UniqueKey("PRIMARY", ("id",), (None,)), UniqueKey("u", ("u",), (None,))),
    (ForeignKey("fk", "s", "t", ("pid",), "s", "p", "PRIMARY", ("id",), "CASCADE", "RESTRICT"),),
)


def test_unique_and_parent_keys() -> None:
    keys = list(unique_keys(SHAPE, [(b"1",), None])) + list(parent_keys(SHAPE, [(b"9",)]))
    assert keys == [
        row_key("s", "t", "PRIMARY", [b"1"]),
        row_key("s", "p", "PRIMARY", [b"9"], KeyKind.SHARED),
    ]
    with pytest.raises(ValueError, match="shape changed"):
        list(unique_keys(SHAPE, [(b"1",)]))


def test_merge_keeps_the_stronger_key_once() -> None:
    shared = row_key("s", "p", "PRIMARY", [b"9"], KeyKind.SHARED)
    exclusive = row_key("s", "p", "PRIMARY", [b"9"])
    other = row_key("s", "t", "PRIMARY", [b"1"])
    assert merge([shared, other, exclusive, shared, other]) == [exclusive, other]


def test_identifying_key_needs_not_null_columns() -> None:
    nullable_only = TableShape(
        "s", "t", 1, "InnoDB", (_col("u", nullable=True),), (UniqueKey("u", ("u",), (None,)),), ()
    )
    with pytest.raises(NotReplicable, match="no primary key or unique NOT NULL key"):
        nullable_only.check_replicable()
    assert SHAPE.identifying_key().name == "PRIMARY"


@pytest.mark.mariadb
async def test_keys_from_a_real_transaction(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE p (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE c (id INT PRIMARY KEY, email VARCHAR(40) COLLATE utf8mb4_general_ci UNIQUE, "
        "pid INT, FOREIGN KEY (pid) REFERENCES p (id)) ENGINE=InnoDB",
    )
    s = pair.schema
    await pair.replicate("INSERT INTO p VALUES (1), (2)", "INSERT INTO c VALUES (1, 'Ann@x', 1)")
    captured = await pair.replicate(
        "UPDATE c SET email = 'bob@x', pid = 2 WHERE id = 1", "INSERT INTO c VALUES (2, NULL, NULL)"
    )

    def weight(text: str) -> bytes:  # utf8mb4_general_ci weights: upper-cased UCS-2
        return b"".join(b"\x00" + ch.upper().encode() for ch in text)

    expected: list[Key] = [
        row_key(s, "c", "PRIMARY", [b"1"]),
        row_key(s, "c", "email", [weight("ann@x")]),  # the old unique value
        row_key(s, "c", "email", [weight("BOB@X")]),  # and the new one
        row_key(s, "p", "PRIMARY", [b"2"], KeyKind.SHARED),  # the new parent
        row_key(s, "c", "PRIMARY", [b"2"]),  # NULL unique value and FK: no key
    ]
    assert sorted(k.ident for k in captured.keys) == sorted(k.ident for k in expected)
    assert {k.ident: k.kind for k in captured.keys} == {k.ident: k.kind for k in expected}
