"""The transaction of a guarded call (server/storage/call_transaction.py): on SQLite it commits on the pool's DBAPI
connection without a Core Connection, and is still all-or-nothing, committed before the answer, seen by the WAL
checkpoint thread, with SQLAlchemy's own error classes; on PostgreSQL it is Core's."""
from __future__ import annotations

import shutil
import sqlite3
import time

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from server.storage.audit import AuditTrail
from server.storage.call_transaction import call_transaction
from server.storage.fast_insert import insert_rows
from server.storage.schema import audit_events, issued_cards, seen_jwts
from server.storage.store import Store
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def _core_connections(engine) -> list[int]:
    opened = [0]
    event.listen(engine, "engine_connect", lambda _connection: opened.__setitem__(0, opened[0] + 1))
    return opened


def _rows_in_file_alone(database, tmp_path, table: str) -> int | None:
    """Rows in the database file without its -wal (only checkpointed pages); None while the table is not there."""
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(database, copy)
    with sqlite3.connect(copy) as connection:
        try:
            return connection.execute(f"select count(*) from {table}").fetchone()[0]
        except sqlite3.OperationalError:
            return None


def test_a_service_call_commits_its_cards_and_audit_row_without_a_core_connection(client, app, settings, tmp_path):
    engine = app.extensions["hemoptysis_cds"]["store"].engine
    opened = _core_connections(engine)
    for _ in range(3):  # the later ones find the database marked for the checkpoint thread already
        answer = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)]))
        assert answer.status_code == 200 and answer.json["cards"]
    assert opened[0] == 0  # no Connection, Transaction or their events on the call's path
    database = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as reader:  # committed: another connection sees it
        stored = {row[0] for row in reader.execute("select card_uuid from issued_cards")}
        audited = reader.execute("select kind, status from audit_events").fetchall()
    assert {card["uuid"] for card in answer.json["cards"]} <= stored
    assert audited[-3:] == [("service", 200)] * 3
    deadline = time.monotonic() + 10  # the checkpoint thread was told of the commit Core did not see
    while _rows_in_file_alone(database, tmp_path, "audit_events") != len(audited) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows_in_file_alone(database, tmp_path, "audit_events") == len(audited)


def _card_row(uuid: str) -> dict:
    from datetime import datetime, timezone
    return {"card_uuid": uuid, "service_id": "massive-hemoptysis", "hook_instance": "h-1", "indicator": "critical",
            "summary": "test card", "suggestion_uuids": "[]", "override_codes": "[]",
            "issued_at": datetime.now(timezone.utc)}


def test_a_failed_commit_is_sqlalchemys_error_leaves_nothing_and_the_connection_serves_again(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/cds.sqlite3")
    with store.engine.begin() as connection:  # a constraint SQLite checks only at COMMIT
        connection.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) "
                                   "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(IntegrityError):
        with call_transaction(store.engine) as transaction:
            dbapi_connection = transaction.connection.dbapi_connection
            dbapi_connection.execute("PRAGMA foreign_keys = ON")
            insert_rows(transaction, issued_cards, [_card_row("before-the-failed-commit")])
            dbapi_connection.execute("INSERT INTO child (parent_id) VALUES (7)")  # no parent 7: the commit fails
    with call_transaction(store.engine) as transaction:
        insert_rows(transaction, issued_cards, [_card_row("after")])
    with store.engine.connect() as connection:
        assert connection.execute(select(issued_cards.c.card_uuid)).scalars().all() == ["after"]
        assert connection.exec_driver_sql("SELECT count(*) FROM child").scalar() == 0
    store.engine.dispose()


def test_an_exception_in_the_writes_rolls_them_back(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/cds.sqlite3")
    with pytest.raises(IntegrityError):
        with call_transaction(store.engine) as transaction:
            insert_rows(transaction, issued_cards, [_card_row("first")])
            insert_rows(transaction, issued_cards, [_card_row("first")])  # card_uuid is unique
    with store.engine.connect() as connection:
        assert connection.execute(select(issued_cards)).all() == []
    store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_of(request, tmp_path):
    url = f"sqlite:///{tmp_path}/cds.sqlite3" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = Store(url)
    yield store.engine
    store.engine.dispose()


def test_postgresql_keeps_cores_connection_and_core_can_be_asked_for_on_sqlite(engine_of):
    with call_transaction(engine_of, core=True) as connection:
        assert isinstance(connection, Connection)
    with call_transaction(engine_of) as connection:
        assert isinstance(connection, Connection) == (engine_of.dialect.name != "sqlite")


def test_expired_tokens_are_forgotten_in_the_claims_transaction(engine_of):
    audit = AuditTrail(engine_of, b"k" * 32)
    now = int(time.time())
    with call_transaction(engine_of) as connection:
        audit.claim_jti(connection, "https://ehr.example.org", "long-expired", now - 3600)
    audit._claims = 499  # the next claim is the 500th, which forgets tokens expired over 10 minutes ago
    with call_transaction(engine_of) as connection:
        audit.claim_jti(connection, "https://ehr.example.org", "fresh", now + 300)
        audit.record(connection, _audit_entry())
    with engine_of.connect() as connection:
        assert connection.execute(select(seen_jwts.c.jti)).scalars().all() == ["fresh"]
        assert connection.execute(select(audit_events.c.kind)).scalars().all() == ["service"]


def _audit_entry():
    from server.storage.audit import AuditEntry
    return AuditEntry(kind="service", status=200, latency_ms=1.0, service_id="massive-hemoptysis")


def _dbapi_connection_of(engine):
    with call_transaction(engine) as transaction:
        return transaction.connection.dbapi_connection


def test_the_connection_is_kept_for_the_next_call_and_let_go_on_dispose(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/cds.sqlite3")
    first = _dbapi_connection_of(store.engine)
    assert _dbapi_connection_of(store.engine) is first  # no pool checkout and checkin per call
    assert not first.in_transaction  # kept with nothing open
    store.engine.dispose()  # e.g. new connect events must apply: the kept connection is not used again
    after_dispose = _dbapi_connection_of(store.engine)
    assert after_dispose is not first
    store.engine.dispose()


def test_at_most_a_few_connections_are_kept_and_none_takes_a_slot_of_the_pool(tmp_path):
    from server.storage.call_transaction import HeldConnections, _held_for
    store = Store(f"sqlite:///{tmp_path}/cds.sqlite3")
    with call_transaction(store.engine) as one, call_transaction(store.engine) as two, \
            call_transaction(store.engine) as three:  # three transactions at once (three threads)
        connections = [t.connection.dbapi_connection for t in (one, two, three)]
        assert len({id(c) for c in connections}) == 3
    assert len(_held_for(store.engine).idle) == HeldConnections.MOST
    assert store.engine.pool.checkedout() == 0
    with pytest.raises(sqlite3.ProgrammingError):  # the one more than MOST was closed
        connections[0].execute("SELECT 1")
    store.engine.dispose()


def test_an_engine_let_go_without_dispose_closes_its_kept_connections(tmp_path):
    import gc
    import os
    import weakref

    from server.storage import wal_checkpoint

    def open_files() -> int:
        # the checkpoint thread opens a database for a moment, and a pass takes strong references to the engines
        # marked before it: those it took before the collection are garbage again only after it, so collect after
        assert wal_checkpoint.settle()
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    for n in range(5):
        store = Store(f"sqlite:///{tmp_path}/cds-{n}.sqlite3")
        _dbapi_connection_of(store.engine)
        engine = weakref.ref(store.engine)
        del store
    after = open_files()
    assert engine() is None
    assert after <= before  # database, -wal and -shm of each closed


@pytest.mark.parametrize(("configured", "level"), [("NORMAL", 1), ("FULL", 2), ("EXTRA", 3)])
def test_the_call_transaction_commits_at_the_configured_synchronous_level_in_wal_mode(tmp_path, configured, level):
    store = Store(f"sqlite:///{tmp_path}/cds.sqlite3", sqlite_synchronous=configured)
    with call_transaction(store.engine) as transaction:
        dbapi_connection = transaction.connection.dbapi_connection
        assert dbapi_connection.execute("PRAGMA synchronous").fetchone()[0] == level
        assert dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.engine.dispose()


def test_a_raw_dbapi_error_in_the_writes_is_sqlalchemys_and_rolls_them_back(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/cds.sqlite3")
    with pytest.raises(OperationalError):
        with call_transaction(store.engine) as transaction:
            insert_rows(transaction, issued_cards, [_card_row("first")])
            transaction.connection.dbapi_connection.execute("INSERT INTO no_such_table VALUES (1)")
    with call_transaction(store.engine) as transaction:  # the kept connection serves the next call
        insert_rows(transaction, issued_cards, [_card_row("second")])
    with store.engine.connect() as connection:
        assert connection.execute(select(issued_cards.c.card_uuid)).scalars().all() == ["second"]
    store.engine.dispose()
