"""DDL latency under total order isolation: through node 1's proxy vs its backend directly.

    wsrepctl cluster up --nodes 3 --dir D --base-port P --detach
    python -m bench.toi_latency D [count]
    wsrepctl cluster down --dir D

Each line: mean milliseconds per statement over `count` tables (CREATE TABLE, ALTER TABLE
ADD COLUMN, DROP TABLE), in a database of its own per side.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pymysql

STATEMENTS = (
    ("CREATE TABLE", "CREATE TABLE {db}.t{i} (id INT PRIMARY KEY, v INT)"),
    ("ALTER ADD COLUMN", "ALTER TABLE {db}.t{i} ADD COLUMN c INT"),
    ("DROP TABLE", "DROP TABLE {db}.t{i}"),
)


def measure(address: str, label: str, db: str, count: int) -> None:
    host, port = address.rsplit(":", 1)
    conn = pymysql.connect(host=host, port=int(port), user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
            for name, statement in STATEMENTS:
                start = time.perf_counter()
                for i in range(count):
                    cur.execute(statement.format(db=db, i=i))
                ms = (time.perf_counter() - start) / count * 1000
                print(f"{label:8} {name:18} {ms:7.2f} ms")
            cur.execute(f"DROP DATABASE {db}")
    finally:
        conn.close()


def main() -> None:
    cluster = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    status = json.loads((cluster / "node1" / "status.json").read_text())
    measure(status["backend"], "direct", "toi_latency_direct", count)
    measure(status["proxy"], "proxy", "toi_latency_proxy", count)


if __name__ == "__main__":
    main()
