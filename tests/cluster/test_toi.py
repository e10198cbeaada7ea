"""Total order isolation on a real 3-node cluster: DDL and account statements sent to any
node run on every node at their seqno; tables, users and capture follow."""

from __future__ import annotations

import random
import re
import threading
import time

import mysql.connector
import pymysql
import pytest

from tests.cluster.conftest import NODES, Cluster


def _on_all(cluster: Cluster, sql: str) -> list[tuple[tuple[object, ...], ...]]:
    cluster.wait_same_position()
    result = []
    for i in range(NODES):
        with cluster.backend(i) as conn, conn.cursor() as cur:
            cur.execute(sql)
            result.append(tuple(cur.fetchall()))
    return result


def _same_everywhere(cluster: Cluster, *tables: str) -> None:
    """CHECKSUM TABLE and SHOW CREATE TABLE identical on all backends."""
    assert len(set(cluster.checksums(*tables))) == 1
    for table in tables:
        # the next auto-increment value is per node (each node its own offset, as in Galera)
        shown = {
            re.sub(r" AUTO_INCREMENT=\d+", "", str(each))
            for each in _on_all(cluster, f"SHOW CREATE TABLE {table}")
        }
        assert len(shown) == 1, shown


def _login(cluster: Cluster, i: int, password: str) -> pymysql.connections.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=cluster.base_port + i,
        user="toi_user",
        password=password,
        autocommit=True,
    )


def _write_on_each_node(cluster: Cluster, sql: str, rows: list[tuple[object, ...]]) -> None:
    """(After the DDL ran everywhere: like Galera, a node runs it when its turn comes.)"""
    cluster.wait_same_position()
    for i, row in enumerate(rows):
        with cluster.proxy(i % NODES) as conn, conn.cursor() as cur:
            cur.execute(sql, row)


def test_create_table_on_one_node_then_writes_everywhere(cluster: Cluster) -> None:
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.made (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
    _write_on_each_node(
        cluster, "INSERT INTO app.made VALUES (%s, %s)", [(i, f"n{i}") for i in range(6)]
    )
    assert _on_all(cluster, "SELECT COUNT(*) FROM app.made") == [((6,),)] * NODES
    _same_everywhere(cluster, "app.made")


def test_alter_add_column_and_change_primary_key_then_writes(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.shape (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.execute("INSERT INTO app.shape VALUES (1, 10), (2, 20)")
        cur.execute("ALTER TABLE app.shape ADD COLUMN note VARCHAR(30) NULL DEFAULT 'x'")
    _write_on_each_node(
        cluster,
        "INSERT INTO app.shape VALUES (%s, %s, %s)",
        [(10 + i, i, f"n{i}") for i in range(3)],
    )
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        # the key the capture triggers name rows by changes: (id) -> (v, id)
        cur.execute("ALTER TABLE app.shape DROP PRIMARY KEY, ADD PRIMARY KEY (v, id)")
    _write_on_each_node(
        cluster,
        "UPDATE app.shape SET note = %s WHERE id = %s",
        [(f"u{i}", 10 + i) for i in range(3)],
    )
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM app.shape WHERE id = 1")
    assert (
        _on_all(cluster, "SELECT id, v, note FROM app.shape ORDER BY id")
        == [((2, 20, "x"), (10, 0, "u0"), (11, 1, "u1"), (12, 2, "u2"))] * NODES
    )
    _same_everywhere(cluster, "app.shape")


def test_rename_into_another_database(cluster: Cluster) -> None:
    """MariaDB refuses to move a table with triggers across databases (1435): our capture
    triggers step aside for the RENAME and follow the table to its new name."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE moved_to")
        cur.execute("CREATE TABLE app.mover (id INT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO app.mover VALUES (1, 1)")
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("RENAME TABLE app.mover TO moved_to.mover")
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE moved_to.mover RENAME TO app.mover2")
        with pytest.raises(pymysql.err.MySQLError):  # a failed move keeps its capture
            cur.execute("RENAME TABLE app.mover2 TO no_such_db.mover")
        cur.execute("INSERT INTO app.mover2 VALUES (2, 2)")  # captured under its new name
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("UPDATE app.mover2 SET v = 20 WHERE id = 2")
    assert _on_all(cluster, "SELECT * FROM app.mover2 ORDER BY id") == [((1, 1), (2, 20))] * NODES
    _same_everywhere(cluster, "app.mover2")


def test_rename_truncate_drop(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.old (id INT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO app.old VALUES (1, 1), (2, 2)")
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("RENAME TABLE app.old TO app.renamed")
        cur.execute("INSERT INTO app.renamed VALUES (3, 3)")  # captured under its new name
    _same_everywhere(cluster, "app.renamed")
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE app.renamed")
        cur.execute("INSERT INTO app.renamed VALUES (4, 4)")
    assert _on_all(cluster, "SELECT * FROM app.renamed") == [((4, 4),)] * NODES
    _same_everywhere(cluster, "app.renamed")
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE app.renamed")
    gone = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME IN ('old', 'renamed')"
    assert _on_all(cluster, gone) == [((0,),)] * NODES


def test_create_database_and_a_table_inside(cluster: Cluster) -> None:
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute("USE shop")
        # no schema named: the session's current database travels with the statement
        cur.execute("CREATE TABLE items (sku VARCHAR(20) PRIMARY KEY, qty INT NOT NULL)")
        cur.execute("INSERT INTO items VALUES ('a', 1), ('ß', 2)")
    with cluster.proxy(0, database="shop") as conn, conn.cursor() as cur:
        cur.execute("UPDATE items SET qty = qty + 1")
    _same_everywhere(cluster, "shop.items")
    assert len(set(_on_all(cluster, "SHOW CREATE DATABASE shop"))) == 1


def test_create_unique_index_then_conflicting_writes(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.idx (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL)")
        cur.execute("INSERT INTO app.idx VALUES (1, 'a@x'), (2, 'b@x')")
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("CREATE UNIQUE INDEX by_email ON app.idx (email)")
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.IntegrityError) as dup:
            cur.execute("INSERT INTO app.idx VALUES (3, 'a@x')")
        assert dup.value.args[0] == 1062
        cur.execute("INSERT INTO app.idx VALUES (3, 'c@x')")
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("DROP INDEX by_email ON app.idx")
        cur.execute("INSERT INTO app.idx VALUES (4, 'a@x')")
    _same_everywhere(cluster, "app.idx")


def test_create_view_has_the_same_definition_everywhere(cluster: Cluster) -> None:
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW app.big AS SELECT id, v FROM app.t WHERE v > 0")
        cur.execute("SELECT COUNT(*) FROM app.big")
    shown = _on_all(cluster, "SHOW CREATE VIEW app.big")
    assert len(set(shown)) == 1 and "DEFINER" in str(shown[0])
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE VIEW app.big AS SELECT id FROM app.t")
    assert len(set(_on_all(cluster, "SHOW CREATE VIEW app.big"))) == 1


def test_create_user_and_grant_then_log_in_through_every_node(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE USER 'toi_user'@'%' IDENTIFIED BY 's3cret'")
        cur.execute("GRANT SELECT, INSERT ON app.* TO 'toi_user'@'%'")
        cur.execute("GRANT SELECT, DELETE ON wsrep.capture TO 'toi_user'@'%'")
    cluster.wait_same_position()
    for i in range(NODES):
        with (
            _login(cluster, i, "s3cret") as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone() == ("toi_user@%",)
            cur.execute("INSERT INTO app.t VALUES (%s, 0, 'by toi_user')", (700 + i,))
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cur.execute("DELETE FROM app.t WHERE id = 700")
            assert denied.value.args[0] == 1142
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("REVOKE INSERT ON app.* FROM 'toi_user'@'%'")
        cur.execute("SET PASSWORD FOR 'toi_user'@'%' = PASSWORD('other')")
    grants = _on_all(cluster, "SHOW GRANTS FOR 'toi_user'@'%'")
    assert len(set(grants)) == 1 and "INSERT" not in str(grants[0])
    for i in range(NODES):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            _login(cluster, i, "s3cret")
        assert refused.value.args[0] == 1045
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute("DROP USER 'toi_user'@'%'")
    users = _on_all(cluster, "SELECT COUNT(*) FROM mysql.user WHERE User = 'toi_user'")
    assert users == [((0,),)] * NODES
    mine = _on_all(cluster, "SELECT id FROM app.t WHERE id >= 700 ORDER BY id")
    assert mine == [((700,), (701,), (702,))] * NODES
    _same_everywhere(cluster, "app.t")


def test_statement_bytes_and_session_context_travel_exactly(cluster: Cluster) -> None:
    """A latin1 client, non-ASCII text, a sql_mode of its own, no database named: every
    node creates the same table."""
    with cluster.proxy(1, charset="latin1", database="app") as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'")
        cur.execute(
            "CREATE TABLE \"latin\" (id INT PRIMARY KEY, s VARCHAR(10) DEFAULT 'é\\', "
            "t TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) CHARACTER SET utf8mb4 "
            "COMMENT 'größe'"
        )
        cur.execute("INSERT INTO latin (id) VALUES (1)")
    _same_everywhere(cluster, "app.latin")
    assert _on_all(cluster, "SELECT s FROM app.latin") == [(("é\\",),)] * NODES


def test_ddl_in_an_open_transaction_commits_it_first(cluster: Cluster) -> None:
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        conn.begin()
        cur.execute("INSERT INTO app.t VALUES (800, 8, 'before the DDL')")
        cur.execute("CREATE TABLE app.after_trx (id INT PRIMARY KEY)")
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (0,)
    rows = _on_all(cluster, "SELECT note FROM app.t WHERE id = 800")
    assert rows == [(("before the DDL",),)] * NODES
    _same_everywhere(cluster, "app.t", "app.after_trx")


def test_user_trigger_and_procedure(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.audited (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.execute("CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, seen INT)")
        cur.execute(
            "CREATE TRIGGER app.audit_ins AFTER INSERT ON app.audited FOR EACH ROW "
            "INSERT INTO app.audit (seen) VALUES (NEW.v)"
        )
        cur.execute(
            "CREATE PROCEDURE app.add_audited(IN n INT) INSERT INTO app.audited VALUES (n, n * 10)"
        )
    cluster.wait_same_position()
    for i in range(NODES):
        with cluster.proxy(i) as conn, conn.cursor() as cur:
            cur.execute("CALL app.add_audited(%s)", (i + 1,))
    # the trigger ran once, at each write's origin; its rows replicated as rows
    assert (
        _on_all(cluster, "SELECT seen FROM app.audit ORDER BY seen")
        == [((10,), (20,), (30,))] * NODES
    )
    assert len(set(_on_all(cluster, "SHOW CREATE PROCEDURE app.add_audited"))) == 1
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("DROP TRIGGER app.audit_ins")
        cur.execute("DROP PROCEDURE app.add_audited")
        cur.execute("INSERT INTO app.audited VALUES (9, 9)")
    _same_everywhere(cluster, "app.audited", "app.audit")


def test_child_table_with_cascade_regenerates_its_parents_capture(cluster: Cluster) -> None:
    """InnoDB cascades fire no triggers: the parent's capture must learn of a new child."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.parent (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO app.parent VALUES (1), (2)")
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE app.child (id INT PRIMARY KEY, parent INT NOT NULL, "
            "FOREIGN KEY (parent) REFERENCES app.parent (id) ON DELETE CASCADE)"
        )
        cur.execute("INSERT INTO app.child VALUES (10, 1), (11, 1), (20, 2)")
    cluster.wait_same_position()
    with cluster.proxy(2) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM app.parent WHERE id = 1")  # cascades to 10 and 11
    assert _on_all(cluster, "SELECT id FROM app.child") == [((20,),)] * NODES
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE app.child")  # the parent's cascade capture goes away
        cur.execute("DELETE FROM app.parent WHERE id = 2")
    _same_everywhere(cluster, "app.parent")


def test_table_that_cannot_replicate_is_created_but_refuses_writes(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.nokey (a INT, b INT)")
    cluster.wait_same_position()
    for i in range(NODES):
        with (
            cluster.proxy(i) as conn,
            conn.cursor() as cur,
            pytest.raises(pymysql.err.MySQLError, match="no primary key"),
        ):
            cur.execute("INSERT INTO app.nokey VALUES (1, 2)")
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE app.nokey ADD PRIMARY KEY (a)")  # now it can
        cur.execute("INSERT INTO app.nokey VALUES (1, 2)")
    _same_everywhere(cluster, "app.nokey")


def test_failing_ddl_fails_alike_with_the_servers_own_error(cluster: Cluster) -> None:
    seqno = cluster.wait_same_position()
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as exists:
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
        assert exists.value.args[0] == 1050 and "already exists" in exists.value.args[1]
        with pytest.raises(pymysql.err.ProgrammingError) as syntax:
            cur.execute("ALTER TABLE app.t ADD COLUMN")
        assert syntax.value.args[0] == 1064  # the server's own parse error, replicated
        with pytest.raises(pymysql.err.OperationalError) as missing:
            cur.execute("DROP TABLE app.never_there")
        assert missing.value.args[0] == 1051
        cur.execute("CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY)")
        assert cur.warning_count == 1  # the server's own note, as direct
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall()[0][:2] == ("Note", 1050)
        cur.execute("SELECT COUNT(*) FROM app.t")  # the session goes on
    # each failure was ordered and its outcome reported: positions moved on together
    assert cluster.wait_same_position() > seqno
    for i in range(NODES):
        status = cluster.fresh_status(i)
        assert status["ready"] and status["toi_inconsistencies"] == 0
    _same_everywhere(cluster, "app.t")


def test_refused_statements_are_named(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError, match="SEQUENCE"):
            cur.execute("CREATE SEQUENCE app.seq")
        with pytest.raises(pymysql.err.MySQLError, match="belongs to each node"):
            cur.execute("DROP DATABASE wsrep")
        with pytest.raises(pymysql.err.MySQLError, match="not through PREPARE or EXECUTE"):
            cur.execute("EXECUTE IMMEDIATE 'CREATE TABLE app.hidden (i INT PRIMARY KEY)'")
        with pytest.raises(pymysql.err.MySQLError, match="not through PREPARE or EXECUTE"):
            cur.execute("PREPARE s FROM 'DROP TABLE app.t'")
        cur.execute("CREATE TEMPORARY TABLE app.tmp (i INT)")  # session-local: not replicated
        cur.execute("DROP TEMPORARY TABLE app.tmp")


# 1213: certification failed (the row write set did not see the DDL) or the transaction
# was BF-aborted for it; 1205: a lock wait behind an applier timed out.
RETRYABLE = (1213, 1205)


def test_ddl_as_a_prepared_statement_is_refused_clearly(cluster: Cluster) -> None:
    conn = mysql.connector.connect(
        host="127.0.0.1", port=cluster.base_port, user="root", autocommit=True
    )
    try:
        cur = conn.cursor(prepared=True)
        with pytest.raises(mysql.connector.Error) as refused:
            cur.execute("CREATE TABLE app.prepared (id INT PRIMARY KEY)")
        assert refused.value.errno == 1235 and "as text only" in str(refused.value)
        cur.close()
        text = conn.cursor()
        text.execute("SELECT COUNT(*) FROM app.t")  # the session goes on
        text.fetchall()
    finally:
        conn.close()
    tables = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'prepared'"
    assert _on_all(cluster, tables) == [((0,),)] * NODES


def test_ddl_racing_with_writes_on_every_node(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.race (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.execute("INSERT INTO app.race VALUES " + ", ".join(f"({i}, 0)" for i in range(20)))
    stop = threading.Event()
    unexpected: list[BaseException] = []
    counts = {"ok": 0, "1213": 0}

    def writer(node: int, seed: int) -> None:
        rng = random.Random(seed)
        conn = cluster.proxy(node)
        try:
            with conn.cursor() as cur:
                for n in range(400):  # bounded; stops earlier once the DDLs are done
                    if stop.is_set() and n > 20:
                        return
                    choice = rng.random()
                    try:
                        if choice < 0.3:
                            cur.execute(
                                "INSERT INTO app.race (id, v) VALUES (%s, %s)",
                                (1000 * seed + n, n),
                            )
                        elif choice < 0.7:
                            cur.execute(
                                "UPDATE app.race SET v = v + 1 WHERE id = %s", (rng.randrange(20),)
                            )
                        else:  # an explicit transaction, committed whatever runs meanwhile
                            conn.begin()
                            for _ in range(2):
                                cur.execute(
                                    "UPDATE app.race SET v = v + 2 WHERE id = %s",
                                    (rng.randrange(20),),
                                )
                            conn.commit()
                        counts["ok"] += 1
                    except pymysql.err.MySQLError as exc:
                        if exc.args[0] not in RETRYABLE:
                            raise
                        counts["1213"] += 1
                        conn.rollback()
        except BaseException as exc:  # reported below
            unexpected.append(exc)
        finally:
            conn.close()

    # writers on every node, the DDL's own included
    threads = [threading.Thread(target=writer, args=(i % NODES, i + 1)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        with cluster.proxy(0) as conn, conn.cursor() as cur:
            for n in range(3):
                time.sleep(0.3)
                cur.execute(f"ALTER TABLE app.race ADD COLUMN c{n} INT NOT NULL DEFAULT {n}")
            time.sleep(0.3)
            cur.execute("ALTER TABLE app.race DROP COLUMN c1")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not unexpected, unexpected
    assert counts["ok"] > 0
    _same_everywhere(cluster, "app.race")


def test_the_same_ddl_on_two_nodes_at_once_runs_once(cluster: Cluster) -> None:
    """Total order: whichever is ordered first adds the column everywhere; the other
    fails everywhere with the server's own 1060, and no node is inconsistent."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.twice (id INT PRIMARY KEY)")
    cluster.wait_same_position()
    conns = [cluster.proxy(i) for i in range(NODES)]
    outcomes: list[object] = [None] * NODES
    barrier = threading.Barrier(NODES, timeout=30)

    def alter(i: int) -> None:
        barrier.wait()
        try:
            with conns[i].cursor() as cur:
                cur.execute("ALTER TABLE app.twice ADD COLUMN dup INT")
            outcomes[i] = "ok"
        except pymysql.err.MySQLError as exc:
            outcomes[i] = exc.args[0]

    threads = [threading.Thread(target=alter, args=(i,)) for i in range(NODES)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for conn in conns:
            conn.close()
    assert sorted(map(str, outcomes)) == ["1060", "1060", "ok"], outcomes
    _same_everywhere(cluster, "app.twice")
    for i in range(NODES):
        assert cluster.fresh_status(i)["toi_inconsistencies"] == 0


def test_local_transactions_holding_the_table_are_bf_aborted_by_ddl(cluster: Cluster) -> None:
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.held (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.execute("INSERT INTO app.held VALUES (1, 0), (2, 0)")
    cluster.wait_same_position()
    remote = cluster.proxy(1)  # on another node than the DDL's
    local = cluster.proxy(0)  # on the DDL's own node
    bystander = cluster.proxy(1)  # another table of the same schema: left alone
    try:
        with remote.cursor() as rcur, local.cursor() as lcur, bystander.cursor() as bcur:
            bystander.begin()
            bcur.execute("UPDATE app.t SET note = 'bystander' WHERE id = 2")
            remote.begin()
            rcur.execute("UPDATE app.held SET v = 1 WHERE id = 1")  # idle, holding the table
            local.begin()
            lcur.execute("SELECT * FROM app.held WHERE id = 2")  # a read holds it too
            with cluster.proxy(0) as conn, conn.cursor() as cur:
                cur.execute("ALTER TABLE app.held ADD COLUMN note VARCHAR(10) NULL")
            cluster.wait_same_position()
            for cur in (rcur, lcur):
                with pytest.raises(pymysql.err.OperationalError) as aborted:
                    cur.execute("SELECT COUNT(*) FROM app.held")
                assert aborted.value.args[0] == 1213
            rcur.execute("UPDATE app.held SET v = 2, note = 'again' WHERE id = 1")
            remote.commit()
            bystander.commit()
    finally:
        remote.close()
        local.close()
        bystander.close()
    notes = _on_all(cluster, "SELECT note FROM app.t WHERE id = 2")
    assert notes == [(("bystander",),)] * NODES
    assert (
        _on_all(cluster, "SELECT id, v, note FROM app.held ORDER BY id")
        == [((1, 2, "again"), (2, 0, None))] * NODES
    )
    assert cluster.fresh_status(1)["local_bf_aborts"] >= 1
    _same_everywhere(cluster, "app.held")


def _wait_not_ready(cluster: Cluster, i: int) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while cluster.status(i)["ready"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return cluster.fresh_status(i)


def test_ddl_that_diverges_is_reported_and_the_odd_node_leaves(cluster: Cluster) -> None:
    """Runs last: it leaves nodes 1 and 3 out of the cluster. The majority's outcome is the
    cluster's (Galera's inconsistency voting), even when the odd one out is the origin; the
    odd node leaves the group (so it neither applies nor votes any more) but stays up,
    answering 1047 and saying why. Of two nodes, a tie goes to the origin."""
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE app.diverge (id INT PRIMARY KEY)")
        cur.execute("CREATE TABLE app.diverge2 (id INT PRIMARY KEY)")
    cluster.wait_same_position()
    # the origin is the odd one out: its client gets its error, the others go on
    with cluster.backend(0) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE app.diverge2")  # behind the proxy's back
    with cluster.proxy(0) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.ProgrammingError) as missing:
            cur.execute("ALTER TABLE app.diverge2 ADD COLUMN c INT")
        assert missing.value.args[0] == 1146
    status = _wait_not_ready(cluster, 0)
    assert not status["ready"] and status["toi_inconsistencies"] == 1
    _wait_left(cluster, 0, stay=(1, 2))
    assert "`c` int" in str(_rows_of(cluster, 1, "SHOW CREATE TABLE app.diverge2"))
    assert "`c` int" in str(_rows_of(cluster, 2, "SHOW CREATE TABLE app.diverge2"))

    # of the two left, node 3 disagrees with the origin node 2: the origin wins the tie
    with cluster.backend(2) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE app.diverge")
    with cluster.proxy(1) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE app.diverge ADD COLUMN c INT")  # OK here, 1146 on node 3
    status = _wait_not_ready(cluster, 2)
    assert not status["ready"] and status["toi_inconsistencies"] == 1
    log = (cluster.dir / "node3" / "node.log").read_text()
    assert re.search(
        r"ERROR .*TOI seqno \d+ came out differently: error 1146 here, OK in the cluster", log
    )
    _wait_left(cluster, 2, stay=(1,))
    with (
        pytest.raises(pymysql.err.OperationalError) as refused,
        cluster.proxy(2) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT COUNT(*) FROM app.t")
    assert refused.value.args[0] == 1047
    assert cluster.fresh_status(1)["ready"] and cluster.status(1)["toi_inconsistencies"] == 0
    with cluster.proxy(1) as conn, conn.cursor() as cur:  # node 2 alone is still primary
        cur.execute("INSERT INTO app.diverge VALUES (1, 1)")


def _wait_left(cluster: Cluster, odd: int, stay: tuple[int, ...]) -> None:
    """Node `odd` left the group: the others' view is `stay`, it reports why it is out."""
    names = sorted(f"node{i + 1}" for i in stay)
    deadline = time.monotonic() + 60
    while not all(
        sorted(cluster.status(i)["members"]) == names and cluster.status(i)["ready"] for i in stay
    ):
        assert time.monotonic() < deadline, [cluster.status(i) for i in stay]
        time.sleep(0.2)
    status = cluster.fresh_status(odd)
    assert status["cluster_status"] == "non-Primary" and not status["ready"], status
    assert status["local_state_comment"].startswith("Inconsistent: TOI seqno "), status
    # it stays out: no longer applying what the others commit
    seqno = cluster.positions([odd])[0]
    with cluster.proxy(stay[0]) as conn, conn.cursor() as cur:
        cur.execute("UPDATE app.counters SET n = n + 1 WHERE id = 1")
    cluster.wait_same_position(nodes=stay)
    assert cluster.positions([odd])[0] == seqno


def _rows_of(cluster: Cluster, i: int, sql: str) -> tuple[tuple[object, ...], ...]:
    with cluster.backend(i) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return tuple(cur.fetchall())
