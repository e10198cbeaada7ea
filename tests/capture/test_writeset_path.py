"""Captured rows through the real write-set codec and certification index: a and b each
run a transaction from the same snapshot; when their rows collide (equal `_ci` key
spellings, a child insert against its parent's delete) the later write set fails
certification and rolls back, otherwise both commit; the winners apply on the other
server and both servers end equal."""

from __future__ import annotations

import itertools

import pytest

from certification.index import CertificationIndex
from proxy.backend_client import BackendClient
from proxy.capture import (
    Catalog,
    Position,
    apply_write_set,
    decode_changes,
    drain,
    load_catalog,
    prepare_applier_session,
    read_position,
    record_position,
)
from tests.capture.conftest import CLUSTER, PairFactory, connect
from wsrep import writeset

pytestmark = pytest.mark.mariadb

CASES = [  # (statements on a, statements on b, does b's write set pass too?)
    (
        ["UPDATE p SET name = 'ANNA' WHERE name = 'anna'"],
        ["DELETE FROM p WHERE name = 'anna'"],
        False,
    ),
    (
        ["DELETE FROM c WHERE id = 1", "DELETE FROM p WHERE name = 'bo'"],
        ["INSERT INTO c VALUES (2, 'Bo ')"],
        False,
    ),
    (["INSERT INTO p VALUES ('cy')"], ["INSERT INTO p VALUES ('dee')"], True),
]


async def test_conflicting_write_sets_fail_certification(pair_factory: PairFactory) -> None:
    pair = await pair_factory(
        "CREATE TABLE p (name VARCHAR(9) COLLATE utf8mb4_general_ci PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE c (id INT PRIMARY KEY, p VARCHAR(9) COLLATE utf8mb4_general_ci, "
        "FOREIGN KEY (p) REFERENCES p (name)) ENGINE=InnoDB",
        "INSERT INTO p VALUES ('anna'), ('bo')",
        "INSERT INTO c VALUES (1, 'bo')",
    )
    origin_b, applier_a = await connect(pair.servers[1]), await connect(pair.servers[0])
    try:
        await origin_b.query(f"USE {pair.schema}")
        await prepare_applier_session(applier_a)
        origins: dict[str, tuple[BackendClient, Catalog, BackendClient]] = {
            "a": (pair.a, pair.catalog, pair.b),  # (origin session, its catalog, applier elsewhere)
            "b": (origin_b, await load_catalog(origin_b, [pair.schema]), applier_a),
        }
        index = CertificationIndex(initial_seqno=0)
        trx_ids = itertools.count(1)
        for on_a, on_b, b_passes in CASES:
            last_seen = index.last_seqno
            delivered = []  # in total order: a's write set, then b's
            for name, statements in (("a", on_a), ("b", on_b)):
                conn, catalog, _ = origins[name]
                await conn.query("START TRANSACTION")
                for statement in statements:
                    await conn.query(statement)
                captured = await drain(conn, catalog)
                ws = writeset.WriteSet(
                    name, next(trx_ids), last_seen, tuple(captured.keys), captured.payload()
                )
                delivered.append(writeset.decode(writeset.encode(ws)))
            verdicts = []
            for ws in delivered:
                seqno = index.last_seqno + 1
                verdicts.append((seqno, index.certify(ws.certification_request(seqno))))
            assert [v.passed for _, v in verdicts] == [True, b_passes]
            for ws, (_, verdict) in zip(delivered, verdicts, strict=True):
                if not verdict.passed:  # (the real node BF-aborts it; here it just waits)
                    await origins[ws.origin][0].query("ROLLBACK")
            for ws, (seqno, verdict) in zip(delivered, verdicts, strict=True):
                if verdict.passed:  # commit at the origin, apply on the other, in seqno order
                    conn, _, applier = origins[ws.origin]
                    await record_position(conn, Position(CLUSTER, seqno))
                    await conn.query("COMMIT")
                    changes = decode_changes(ws.data)
                    await apply_write_set(applier, changes, Position(CLUSTER, seqno))
        await pair.assert_same()
        last = Position(CLUSTER, index.last_seqno)
        assert [await read_position(c) for c in (pair.a, origin_b)] == [last, last]
    finally:
        await origin_b.aclose()
        await applier_a.aclose()
