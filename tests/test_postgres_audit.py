"""The same security records on PostgreSQL (several replicas share one database): audit row, cross-replica replay
refusal, feedback in the call's transaction. The database is a throwaway local cluster (tests/pg_scratch.py), or
the scratch database HEMOPTYSIS_CDS_TEST_POSTGRES_URL names (its tables are dropped first)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from server.http.app import create_app
from tests import fhir_factory as f
from tests import jwt_kit as k
from tests.conftest import PUBLIC_BASE_URL, SignedClient

URL = "/cds-services/massive-hemoptysis"


@pytest.fixture
def pg_settings(settings, postgres_url):
    return replace(settings, database_url=postgres_url)


def test_audit_replay_and_feedback_on_postgres(pg_settings):
    from sqlalchemy import select
    from server.storage.schema import audit_events
    replica_1, replica_2 = create_app(pg_settings), create_app(pg_settings)
    replica_1.test_client_class = replica_2.test_client_class = SignedClient
    token = k.sign(k.session_key("ES384"), k.claims(PUBLIC_BASE_URL + URL))
    body = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])
    first = replica_1.test_client().post(URL, json=body, headers=k.bearer(token))
    assert first.status_code == 200
    assert replica_2.test_client().post(URL, json=body, headers=k.bearer(token)).status_code == 401
    item = {"card": first.json["cards"][0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    assert replica_2.test_client().post(f"{URL}/feedback", json={"feedback": [item]}).json == {"received": 1, "stored": 1}
    assert replica_1.test_client().post(f"{URL}/feedback", json={"feedback": [item]}).json == {"received": 1, "stored": 0}
    with replica_1.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        rows = connection.execute(select(audit_events.c.kind, audit_events.c.status, audit_events.c.reason)
                                  .order_by(audit_events.c.id)).all()
    assert [tuple(row) for row in rows] == [("service", 200, None), ("service", 401, "replayed-jti"),
                                            ("feedback", 200, None), ("feedback", 200, None)]
