"""The cursor inserts of a call (server/storage/fast_insert.py) store what SQLAlchemy Core stores, on SQLite and on
PostgreSQL, and a database error is SQLAlchemy's own (so the storage-error handler and the jti claim see it)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from server.storage.fast_insert import insert_rows
from server.storage.schema import audit_events, issued_card_topics, issued_cards
from server.storage.store import Store

AT = datetime(2026, 12, 1, 14, 30, 15, 123456, tzinfo=timezone.utc)


def _issued(uuid: str) -> dict:
    return {"card_uuid": uuid, "service_id": "massive-hemoptysis", "hook_instance": "h-1", "indicator": "critical",
            "summary": "Massive hemoptysis: airway first", "suggestion_uuids": '["s-1"]',
            "override_codes": '[["sys", "code"]]', "issued_at": AT}


def _audit(jti: str) -> dict:
    return {"at": AT, "kind": "service", "service_id": "massive-hemoptysis", "client_iss": "https://ehr.example.org",
            "tenant": None, "jti": jti, "hook": "patient-view", "hook_instance": "h-1", "patient_hash": "ab" * 32,
            "cards": '[{"uuid": "c", "indicator": "critical"}]', "feedback_items": None, "status": 200,
            "reason": None, "latency_ms": 3.21}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = Store(f"sqlite:///{tmp_path}/cds.sqlite3")
    else:
        made = Store(request.getfixturevalue("postgres_url"))
    yield made
    made.engine.dispose()


def _rows(store, table, column, *keys):
    with store.engine.connect() as connection:
        found = {getattr(row, column): row._asdict() for row in connection.execute(select(table))}
    return [{k: v for k, v in found[key].items() if k not in ("id", column)} for key in keys]


def test_rows_read_back_as_the_ones_core_wrote(store):
    with store.engine.begin() as connection:
        connection.execute(insert(issued_cards), [_issued("by-core")])
        insert_rows(connection, issued_cards, [_issued("by-cursor-1"), _issued("by-cursor-2")])
        connection.execute(insert(issued_card_topics), [{"card_uuid": "by-core", "topic": "t"}])
        insert_rows(connection, issued_card_topics, [{"card_uuid": "by-cursor-1", "topic": "t"}])
        connection.execute(insert(audit_events), [_audit("by-core")])
        insert_rows(connection, audit_events, [_audit("by-cursor")])
    core, cursor_1, cursor_2 = _rows(store, issued_cards, "card_uuid", "by-core", "by-cursor-1", "by-cursor-2")
    assert core == cursor_1 == cursor_2
    assert core["issued_at"].replace(tzinfo=timezone.utc) == AT
    assert _rows(store, issued_card_topics, "card_uuid", "by-core") == _rows(store, issued_card_topics, "card_uuid", "by-cursor-1")
    assert _rows(store, audit_events, "jti", "by-core") == _rows(store, audit_events, "jti", "by-cursor")


def test_a_rolled_back_transaction_leaves_nothing_and_a_conflict_is_sqlalchemys_integrity_error(store):
    with pytest.raises(IntegrityError):
        with store.engine.begin() as connection:
            insert_rows(connection, issued_cards, [_issued("twice")])
            insert_rows(connection, issued_cards, [_issued("twice")])  # card_uuid is unique
    with store.engine.connect() as connection:
        assert connection.execute(select(issued_cards)).all() == []


def test_each_row_keeps_its_own_time_whether_or_not_it_shares_the_object_of_the_row_before(store):
    later = datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    equal_not_same = datetime(2026, 12, 1, 14, 30, 15, 123456, tzinfo=timezone.utc)
    times = [AT, AT, later, later, AT, equal_not_same]
    rows = [dict(_issued(f"row-{index}"), issued_at=moment) for index, moment in enumerate(times)]
    with store.engine.begin() as connection:
        insert_rows(connection, issued_cards, rows)
    stored = _rows(store, issued_cards, "card_uuid", *(f"row-{index}" for index in range(len(times))))
    assert [row["issued_at"].replace(tzinfo=timezone.utc) for row in stored] == times
