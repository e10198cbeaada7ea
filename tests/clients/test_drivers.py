"""Python MySQL drivers through the proxy see exactly what they see from MariaDB itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from client_workload import DRIVERS, STEPS, Endpoint, Observation, applies, run_step

pytestmark = pytest.mark.mariadb

WORKLOAD = Path(__file__).with_name("client_workload.py")
# mysql-connector-python's C extension must load before anything loads OpenSSL (see
# client_workload's module doc), so its steps run in a fresh interpreter that starts with it.
CEXT_BOOT = (
    "import _mysql_connector, runpy, sys; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
CASES = [
    pytest.param(driver, step, id=f"{driver}-{step}")
    for driver in DRIVERS
    for step in STEPS
    if applies(DRIVERS[driver], step)
]


def _observe(driver: str, ep: Endpoint, schema: str, step: str) -> Observation:
    if driver != "connector-c":
        return run_step(driver, ep, schema, step)
    argv = [sys.executable, "-c", CEXT_BOOT, str(WORKLOAD), driver, ep.host, str(ep.port)]
    res = subprocess.run([*argv, schema, step], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{driver} {step} via {ep}:\n{res.stderr[-5000:]}"
    return res.stdout


@pytest.mark.parametrize(("driver", "step"), CASES)
def test_driver_step(
    driver: str, step: str, target: Endpoint, direct: Endpoint, schema: str
) -> None:
    expected = _observe(driver, direct, schema, step)
    assert _observe(driver, target, schema, step) == expected
