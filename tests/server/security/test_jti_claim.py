"""A token is used up by the first thing its call does (issue 11 item 10, server/security/call_guard.py): a first
use refused with 400 / 403 / 412 cannot be replayed through another worker or after a restart; an answered call
claims its jti in the answer's own transaction; a call that must fetch claims it before its first outbound
request, so a replayed token never gets an answer and never makes the service call out."""
from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import select

from server.http.app import create_app
from server.storage.schema import audit_events
from tests.support import fhir_factory as f
from tests.support import jwt_kit as k
from tests.conftest import FHIR_BASE, PUBLIC_BASE_URL

URL = "/cds-services/massive-hemoptysis"
AUD = PUBLIC_BASE_URL + URL


def _incomplete_prefetch() -> dict:  # 412: a key missing and no fhirServer to fetch it from
    body = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])
    del body["prefetch"]["conditions"]
    return body


def _other_fhir_server() -> dict:  # 403: a fhirServer not registered for this client
    return f.patient_view_request([f.patient()], fhir_server="https://elsewhere.example.net/fhir")


REFUSED_FIRST_USES = [("400 invalid body", {"hook": "patient-view"}, 400),
                      ("403 other FHIR server", _other_fhir_server(), 403),
                      ("412 prefetch incomplete", _incomplete_prefetch(), 412)]


@pytest.mark.parametrize("name,body,status", REFUSED_FIRST_USES, ids=[r[0] for r in REFUSED_FIRST_USES])
def test_a_token_refused_on_first_use_cannot_be_replayed_through_another_worker(settings, name, body, status):
    worker_1, worker_2 = create_app(settings), create_app(settings)  # two processes on one database
    token = k.sign(k.session_key("ES384"), k.claims(AUD))
    first = worker_1.test_client().post(URL, json=body, headers=k.bearer(token))
    assert first.status_code == status, first.json
    valid = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])
    replay = worker_2.test_client().post(URL, json=valid, headers=k.bearer(token))
    assert replay.status_code == 401
    with worker_2.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        reasons = [row.reason for row in connection.execute(select(audit_events).order_by(audit_events.c.id))]
    assert reasons[-1] == "replayed-jti"


def test_a_token_refused_on_first_use_cannot_be_replayed_after_a_restart(settings):
    token = k.sign(k.session_key("ES384"), k.claims(AUD))
    assert create_app(settings).test_client().post(URL, json=_incomplete_prefetch(),
                                                   headers=k.bearer(token)).status_code == 412
    restarted = create_app(settings)
    assert restarted.test_client().post(URL, json=f.patient_view_request([f.patient()]),
                                        headers=k.bearer(token)).status_code == 401


def _commits(app) -> list[int]:
    """A counter of the transactions committed on the app's database, counted by SQLite itself (every statement
    its connections run, through sqlite3's trace callback): a call's commit is on the DBAPI connection, which
    SQLAlchemy's commit event does not see (server/storage/call_transaction.py)."""
    from sqlalchemy import event
    counted = [0]

    def traced(statement: str) -> None:
        counted[0] += statement.strip().upper() == "COMMIT"

    engine = app.extensions["hemoptysis_cds"]["store"].engine
    engine.dispose()  # the connections opened from now on are traced
    event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(traced))
    return counted


def _seen_jtis(app) -> list[str]:
    from server.storage.schema import seen_jwts
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        return [row.jti for row in connection.execute(select(seen_jwts.c.jti))]


def test_an_answered_call_claims_its_jti_in_the_answers_own_transaction(settings):
    app = create_app(settings)
    commits = _commits(app)
    claims = k.claims(AUD)
    response = app.test_client().post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)]),
                                      headers=k.bearer(k.sign(k.session_key("ES384"), claims)))
    assert response.status_code == 200
    assert commits[0] == 1  # cards, audit row and jti: one transaction
    assert claims["jti"] in _seen_jtis(app)


def test_a_replay_through_another_worker_is_refused_at_its_commit_and_leaves_no_cards(settings):
    from server.storage.schema import issued_cards
    worker_1, worker_2 = create_app(settings), create_app(settings)
    token = k.sign(k.session_key("ES384"), k.claims(AUD))
    body = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])
    first = worker_1.test_client().post(URL, json=body, headers=k.bearer(token))
    assert first.status_code == 200 and first.json["cards"]
    replay = worker_2.test_client().post(URL, json=body, headers=k.bearer(token))
    assert replay.status_code == 401 and "cards" not in replay.json
    with worker_2.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        stored = connection.execute(select(issued_cards.c.card_uuid)).scalars().all()
        reasons = [row.reason for row in connection.execute(select(audit_events).order_by(audit_events.c.id))]
    assert sorted(stored) == sorted(card["uuid"] for card in first.json["cards"])  # the replay's cards rolled back
    assert reasons == [None, "replayed-jti"]


@responses.activate
def test_a_call_that_fetches_claims_its_jti_before_the_first_outbound_request(settings):
    app = create_app(settings)
    claims = k.claims(AUD)
    seen_at_first_request: list[list[str]] = []

    def patient(request):
        seen_at_first_request.append(_seen_jtis(app))
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(f.patient())

    responses.add_callback(responses.GET, f"{FHIR_BASE}/Patient/pat-1", callback=patient)
    for resource_type in ("Condition", "Observation", "MedicationStatement", "MedicationRequest",
                          "MedicationAdministration", "Procedure", "DiagnosticReport", "ImagingStudy",
                          "QuestionnaireResponse"):
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    body = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="tok")
    response = app.test_client().post(URL, json=body, headers=k.bearer(k.sign(k.session_key("ES384"), claims)))
    assert response.status_code == 200, response.json
    assert seen_at_first_request and claims["jti"] in seen_at_first_request[0]


@responses.activate
def test_a_replayed_token_never_makes_the_service_call_a_fhir_server(settings):
    worker_1, worker_2 = create_app(settings), create_app(settings)
    token = k.sign(k.session_key("ES384"), k.claims(AUD))
    assert worker_1.test_client().post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis()]),
                                       headers=k.bearer(token)).status_code == 200
    fetching = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="tok")
    replay = worker_2.test_client().post(URL, json=fetching, headers=k.bearer(token))
    assert replay.status_code == 401
    assert len(responses.calls) == 0  # refused at the claim before the first request (responses has no route)
