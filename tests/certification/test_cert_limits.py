from __future__ import annotations

import pytest

from certification import WriteSetLimits, WriteSetTooLarge


def test_row_limit_refuses_only_above_it() -> None:
    limits = WriteSetLimits(max_rows=3)
    limits.check_rows(3)
    with pytest.raises(WriteSetTooLarge, match="4 rows, over the limit of 3") as err:
        limits.check_rows(4)
    assert (err.value.what, err.value.value, err.value.limit) == ("rows", 4, 3)


def test_byte_limit_refuses_only_above_it() -> None:
    limits = WriteSetLimits(max_bytes=1024)
    limits.check_bytes(1024)
    with pytest.raises(WriteSetTooLarge, match="1025 bytes, over the limit of 1024"):
        limits.check_bytes(1025)


def test_defaults_are_galeras() -> None:
    limits = WriteSetLimits()
    limits.check_rows(10**9)  # wsrep_max_ws_rows=0: no row limit
    limits.check_bytes(2**31 - 1)
    with pytest.raises(WriteSetTooLarge):
        limits.check_bytes(2**31)


@pytest.mark.parametrize(("rows", "size"), [(-1, 10), (0, 0), (5, -1)])
def test_nonsense_limits_are_refused(rows: int, size: int) -> None:
    with pytest.raises(ValueError):
        WriteSetLimits(max_rows=rows, max_bytes=size)
