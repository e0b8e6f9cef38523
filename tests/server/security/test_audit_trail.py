"""The audit trail and the logs: what a call leaves behind, and what it must never leave (tokens, patient ids)."""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from dataclasses import replace

import pytest
import responses
from sqlalchemy import create_engine, select

from server.http.app import create_app
from server.storage.audit import AuditTrail, load_audit_key
from server.storage.schema import audit_events
from server.run.logjson import configure_logging, scrub
from tests.support import fhir_factory as f
from tests.support import jwt_kit as k
from tests.conftest import FHIR_BASE, PUBLIC_BASE_URL

URL = "/cds-services/massive-hemoptysis"
PATIENT_ID = "mrn-4471-hemo"


def _rows(app) -> list:
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        return connection.execute(select(audit_events).order_by(audit_events.c.id)).all()


def _massive(patient_id: str = PATIENT_ID) -> dict:
    resources = [f.patient(patient_id), f.hemoptysis(patient_id=patient_id), f.spo2(86, patient_id=patient_id),
                 f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet", patient_id=patient_id)]
    return f.patient_view_request(resources, patient_id=patient_id)


def test_a_service_call_leaves_one_complete_audit_row(client, app, settings):
    request = _massive()
    request["hookInstance"] = "b1c7e2f0-hook-instance"
    response = client.post(URL, json=request)
    assert response.status_code == 200
    [row] = _rows(app)
    key = load_audit_key(settings.audit_key, settings.audit_key_file)
    assert row.kind == "service" and row.service_id == "massive-hemoptysis" and row.status == 200
    assert row.client_iss == k.ISSUER and row.jti and row.reason is None
    assert (row.hook, row.hook_instance) == ("patient-view", "b1c7e2f0-hook-instance")
    assert row.patient_hash == hmac.new(key, PATIENT_ID.encode(), hashlib.sha256).hexdigest()
    assert json.loads(row.cards) == [{"uuid": c["uuid"], "indicator": c["indicator"]} for c in response.json["cards"]]
    assert row.latency_ms > 0
    assert PATIENT_ID not in json.dumps([str(value) for value in row])


def test_feedback_and_audit_reads_are_audited(client, app):
    card = client.post(URL, json=_massive()).json["cards"][0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    assert client.post(f"{URL}/feedback", json={"feedback": [item]}).status_code == 200
    assert client.get(f"/audit/feedback/{card['uuid']}").status_code == 200
    bad = client.post(f"{URL}/feedback", json={"feedback": [{**item, "card": "no-such-card"}]})
    assert bad.status_code == 400
    kinds = [(row.kind, row.status, row.feedback_items) for row in _rows(app)]
    assert kinds == [("service", 200, None), ("feedback", 200, 1), ("audit-read", 200, None), ("feedback", 400, 1)]


def test_the_same_patient_hashes_the_same_across_restarts(settings, client, app):
    client.post(URL, json=_massive())
    restarted = create_app(settings)  # same audit key file: the key was generated once and kept
    restarted.test_client_class = type(client)
    restarted.test_client().post(URL, json=_massive())
    first, second = _rows(restarted)
    assert first.patient_hash == second.patient_hash
    other_key = create_app(replace(settings, audit_key="another-key-of-at-least-32-characters!!"))
    assert other_key.extensions["hemoptysis_cds"]["audit"].patient_hash(PATIENT_ID) != first.patient_hash


def test_audit_key_file_is_private_and_short_keys_are_refused(settings, app, tmp_path):
    import os
    import stat
    mode = stat.S_IMODE(os.stat(settings.audit_key_file).st_mode)
    assert mode == 0o600
    with pytest.raises(ValueError, match="at least 32"):
        load_audit_key("short", str(tmp_path / "unused"))


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream)
    yield stream
    logging.getLogger().removeHandler(handler)


@responses.activate
def test_no_token_or_patient_id_in_logs_or_database(app, client, json_log):
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/{PATIENT_ID}", status=503)
    for resource_type in ("Condition", "Observation", "MedicationStatement", "MedicationRequest"):
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    token = k.sign(k.session_key("ES384"), k.claims(PUBLIC_BASE_URL + URL))
    assert client.post(URL, json=_massive(), headers=k.bearer(token)).status_code == 200
    assert client.post(URL, json=_massive(), headers=k.bearer(token)).status_code == 401  # replay: logged refusal
    fetching = f.patient_view_request([], patient_id=PATIENT_ID, with_prefetch=False, fhir_server=FHIR_BASE,
                                      access_token="fhir-access-token-31337")
    assert client.post(URL, json=fetching).status_code == 412
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert {line["msg"] for line in lines} >= {"call", "call refused"}
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    text = json_log.getvalue()
    for secret in (token, token.split(".")[2], "fhir-access-token-31337", PATIENT_ID):
        assert secret not in text
    # nor in the database: every column of every table, as text
    from sqlalchemy import MetaData
    engine = app.extensions["hemoptysis_cds"]["store"].engine
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as connection:
        stored = json.dumps([[str(v) for v in row] for table in tables.sorted_tables
                             for row in connection.execute(table.select())])
    assert "issued_cards" in tables.tables and "audit_events" in tables.tables and len(stored) > 100
    for secret in (token, token.split(".")[2], "fhir-access-token-31337", PATIENT_ID):
        assert secret not in stored


def test_scrub_removes_jwts_and_bearer_credentials():
    token = k.sign(k.session_key("ES384"), k.claims("x"))
    text = scrub(f'header Authorization: Bearer abc.def-ghi and {token} and "access_token": "s3cr3t"')
    assert token not in text and "abc.def-ghi" not in text and "s3cr3t" not in text


def test_each_patient_hash_is_the_keyed_hmac_of_that_id_alone(tmp_path):
    """The keyed state is made once and copied per hash: no id leaks into the next one's hash."""
    key = b"k" * 40
    trail = AuditTrail(create_engine(f"sqlite:///{tmp_path}/audit.sqlite3"), key)
    ids = ["p-1", "p-1", "another-patient", "é-ü", "x" * 64, "p-1"]
    assert [trail.patient_hash(one) for one in ids] == [
        hmac.new(key, one.encode(), hashlib.sha256).hexdigest() for one in ids]
    assert trail.patient_hash("") is None and trail.patient_hash(None) is None
