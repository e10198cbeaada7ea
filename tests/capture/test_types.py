"""Binary exactness: random rows of every column type written on a, captured, encoded,
decoded and applied on b give identical CHECKSUM TABLE and identical rows."""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess
from collections.abc import Callable

import pytest

from tests.capture.conftest import PairFactory

pytestmark = pytest.mark.mariadb

ENUM = ("a", "b", "ç", "😀")
TYPES_DDL = """
CREATE TABLE types (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
  mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, bu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d5 DECIMAL(5,2) UNSIGNED,
  f FLOAT, d DOUBLE,
  b1 BIT(1), b64 BIT(64),
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, yr YEAR,
  c CHAR(10), vc VARCHAR(300), tx TEXT, lt LONGTEXT, lat VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(8), vb VARBINARY(300), bl BLOB,
  en ENUM('a','b','ç','😀'), st SET('x','y','z'),
  js JSON, i4 INET4, i6 INET6,
  gv BIGINT AS (i + 1) VIRTUAL,
  gs VARCHAR(8) AS (LEFT(vc, 8)) STORED
) ENGINE=InnoDB
"""

Gen = Callable[[random.Random], str]


def _int(bits: int, unsigned: bool) -> Gen:
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return lambda r: str(r.choice([low, high, 0, r.randint(low, high)]))


def _utf8(text: str) -> str:
    return f"_utf8mb4 X'{text.encode().hex()}'"


def _text(r: random.Random, n: int) -> str:
    alphabet = "aZ 09'\"\\\n\t%_ç€😀𝄞中\u0000"
    return "".join(r.choice(alphabet) for _ in range(r.randint(0, n)))


def _double_literal(value: float) -> str:
    shown = repr(value)
    return shown if "e" in shown else shown + "e0"


def _double(r: random.Random) -> str:
    while True:
        value = struct.unpack("<d", r.randbytes(8))[0]
        if math.isfinite(value):
            extremes = [0.1, -2.2250738585072014e-308, 5e-324, 1.7976931348623157e308]
            return _double_literal(r.choice([value, value, *extremes]))


def _float(r: random.Random) -> str:
    while True:
        value = struct.unpack("<f", r.randbytes(4))[0]
        if math.isfinite(value):
            return _double_literal(value)


def _decimal(r: random.Random) -> str:
    whole = "".join(r.choice("0123456789") for _ in range(r.randint(1, 35)))
    frac = "".join(r.choice("0123456789") for _ in range(r.randint(0, 30)))
    return r.choice(["", "-"]) + whole + ("." + frac if frac else "")


def _datetime(r: random.Random) -> str:
    return (
        f"'{r.randint(1000, 9999):04}-{r.randint(1, 12):02}-{r.randint(1, 28):02} "
        f"{r.randint(0, 23):02}:{r.randint(0, 59):02}:{r.randint(0, 59):02}."
        f"{r.randint(0, 999999):06}'"
    )


def _time(r: random.Random) -> str:
    sign = r.choice(["", "-"])
    hours, minutes, seconds = r.randint(0, 838), r.randint(0, 59), r.randint(0, 59)
    return f"'{sign}{hours}:{minutes:02}:{seconds:02}.{r.randint(0, 999999):06}'"


def _timestamp(r: random.Random) -> str:
    seconds = r.choice([1, 2**31 - 1, r.randint(1, 2**31 - 1)])
    return f"FROM_UNIXTIME({seconds}.{r.randint(0, 999999):06})"


def _json(r: random.Random) -> str:
    doc = {
        _text(r, 5): r.choice([None, True, r.randint(-(10**18), 10**18), _text(r, 20), [1.5]])
        for _ in range(r.randint(0, 4))
    }
    return _utf8(json.dumps(doc, ensure_ascii=r.random() < 0.5))


GENERATORS: dict[str, Gen] = {
    "ti": _int(8, False),
    "tu": _int(8, True),
    "si": _int(16, False),
    "su": _int(16, True),
    "mi": _int(24, False),
    "mu": _int(24, True),
    "i": _int(32, False),
    "iu": _int(32, True),
    "bi": _int(64, False),
    "bu": _int(64, True),
    "d65": _decimal,
    "d5": lambda r: f"{r.randint(0, 999)}.{r.randint(0, 99):02}",
    "f": _float,
    "d": _double,
    "b1": lambda r: str(r.randint(0, 1)),
    "b64": lambda r: str(r.choice([2**64 - 1, 0, r.getrandbits(64)])),
    "dt": lambda r: _datetime(r)[:11] + "'",
    "tm": _time,
    "dtm": _datetime,
    "ts": _timestamp,
    "yr": lambda r: str(r.choice([0, 1901, 2155, r.randint(1901, 2155)])),
    "c": lambda r: _utf8(_text(r, 10).replace("\u0000", "")),
    "vc": lambda r: _utf8(_text(r, 300)),
    "tx": lambda r: _utf8(_text(r, 2000)),
    "lt": lambda r: _utf8(_text(r, 5000)),
    "lat": lambda r: (
        "X'" + bytes(r.choice(range(32, 256)) for _ in range(r.randint(0, 20))).hex() + "'"
    ),
    "bn": lambda r: "X'" + r.randbytes(r.randint(0, 8)).hex() + "'",
    "vb": lambda r: "X'" + r.randbytes(r.randint(0, 300)).hex() + "'",
    "bl": lambda r: (
        "X'" + (bytes(range(256)) * r.randint(0, 3) + r.randbytes(r.randint(0, 99))).hex() + "'"
    ),
    "en": lambda r: _utf8(r.choice(ENUM)),
    "st": lambda r: str(r.randint(0, 7)),
    "js": _json,
    "i4": lambda r: "X'" + r.randbytes(4).hex() + "'",
    "i6": lambda r: "X'" + r.randbytes(16).hex() + "'",
}


def random_row(r: random.Random, row_id: int) -> str:
    values = [str(row_id)]
    for _column, gen in GENERATORS.items():
        values.append("NULL" if r.random() < 0.15 else gen(r))
    return f"({', '.join(values)})"


INSERT = f"INSERT INTO types (id, {', '.join(GENERATORS)}) VALUES "


async def test_every_type_round_trips_exactly(pair_factory: PairFactory) -> None:
    rng = random.Random(20261125)
    pair = await pair_factory(TYPES_DDL)
    # The origin's session time zone must not leak into TIMESTAMP values.
    await pair.a.query("SET time_zone = '+05:30', sql_mode = 'NO_ENGINE_SUBSTITUTION'")
    await pair.replicate(
        INSERT + ", ".join(random_row(rng, i) for i in range(1, 121)),
        # all 256 byte values, 4-byte characters and the extremes, in one known row
        INSERT.replace("VALUES", "")
        + " SELECT 1000, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648,"
        " 4294967295, -9223372036854775808, 18446744073709551615,"
        " -99999999999999999999999999999999999.999999999999999999999999999999, 999.99,"
        " -3.4028234663852886e38, 2.2250738585072014e-308, 1, 18446744073709551615,"
        " '0000-00-00', '-838:59:59.999999', '9999-12-31 23:59:59.999999',"
        " '0000-00-00 00:00:00', 0, 'ab  ', _utf8mb4 X'f09f9880', _utf8mb4 X'f09d849e',"
        f" '', X'e9', X'0000000000000000', X'00ff', X'{bytes(range(256)).hex()}',"
        " 4, 7, '[]', '255.255.255.255', 'ffff::1'",
    )
    await pair.assert_same()
    # Updates of every column, deletes and primary-key changes in one more transaction.
    updates = [
        f"UPDATE types SET {col} = {gen(rng)} WHERE id = {rng.randint(1, 120)}"
        for col, gen in GENERATORS.items()
        for _ in range(3)
    ]
    await pair.replicate(
        *updates,
        "DELETE FROM types WHERE id BETWEEN 10 AND 19",
        "UPDATE types SET id = id + 5000 WHERE id BETWEEN 20 AND 29",
        "DELETE FROM types WHERE id = 40",
        "UPDATE types SET id = id - 1 WHERE id BETWEEN 41 AND 49 ORDER BY id",
    )
    await pair.assert_same()
    count = (await pair.b.query("SELECT COUNT(*) FROM types")).rows
    assert count == [(b"110",)]


async def test_timestamp_key_in_a_dst_fall_back_hour(pair_factory: PairFactory) -> None:
    """02:30 happens twice in Berlin on 2025-10-26; the two rows must stay two rows."""
    pair = await pair_factory(
        "CREATE TABLE ticks (at TIMESTAMP(6) NOT NULL PRIMARY KEY, n INT) ENGINE=InnoDB"
    )
    zone = subprocess.run(
        ["mariadb-tzinfo-to-sql", "/usr/share/zoneinfo/Europe/Berlin", "Europe/Berlin"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for srv in pair.servers:
        subprocess.run(
            ["mariadb", "-h", srv.host, "-P", str(srv.port), "-uroot", "mysql"],
            input=zone,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    first, second = 1761438600, 1761442200  # 00:30 and 01:30 UTC, both 02:30 in Berlin
    await pair.a.query("SET time_zone = '+00:00'")
    await pair.replicate(
        f"INSERT INTO ticks VALUES (FROM_UNIXTIME({first}.5), 1), (FROM_UNIXTIME({second}.5), 2)"
    )
    await pair.a.query("SET time_zone = 'Europe/Berlin'")
    await pair.replicate("UPDATE ticks SET n = n + 10 WHERE n = 2")
    await pair.assert_same()
    rows = (await pair.b.query("SELECT UNIX_TIMESTAMP(at), n FROM ticks ORDER BY at")).rows
    assert rows == [(f"{first}.500000".encode(), b"1"), (f"{second}.500000".encode(), b"12")]
