"""Helpers the proxy's integration tests share (conftest.py only holds fixtures)."""

from __future__ import annotations

import pymysql


def connect(port: int, **kw: object) -> pymysql.connections.Connection:
    params: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "user": "root",
        "password": "",
        "autocommit": True,
        "connect_timeout": 10,
        "read_timeout": 60,
        "client_flag": pymysql.constants.CLIENT.MULTI_STATEMENTS,
    }
    params.update(kw)
    return pymysql.connect(**params)  # type: ignore[arg-type]
