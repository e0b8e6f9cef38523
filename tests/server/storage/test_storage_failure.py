"""Ready only while commits succeed (issue 11 item 12): when the database can be read but no longer written (disk
full, read-only file system: here SQLite's query_only, which refuses every write as those do), /healthz says 503
and every call that must be recorded answers 503 with an OperationOutcome, never 200 or an HTML 500; it recovers by
itself when writes succeed again."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


@contextmanager
def commits_fail(store):
    def read_only(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()
    store.engine.dispose()
    event.listen(store.engine, "connect", read_only)
    try:
        yield
    finally:
        event.remove(store.engine, "connect", read_only)
        store.engine.dispose()


def test_readiness_and_calls_fail_with_503_while_commits_fail_and_recover(client, app):
    store = app.extensions["hemoptysis_cds"]["store"]
    assert client.get("/healthz").status_code == 200
    with commits_fail(store):
        assert store.ping()  # reading still works: a read-only check would say "healthy"
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json["database"] == "cannot commit"
        call = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)]))
        assert call.status_code == 503
        assert call.json["resourceType"] == "OperationOutcome" and call.json["issue"][0]["code"] == "transient"
        assert call.headers["Retry-After"]
        feedback = client.post(f"{URL}/feedback", json={"feedback": [
            {"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}]})
        assert feedback.status_code == 503 and feedback.json["resourceType"] == "OperationOutcome"
    assert client.get("/healthz").status_code == 200
    assert client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])).status_code == 200


def test_liveness_does_not_depend_on_the_database(client, app):
    with commits_fail(app.extensions["hemoptysis_cds"]["store"]):
        assert client.get("/healthz").status_code == 503
        assert client.get("/livez").status_code == 200
