"""A token is used up as soon as it is verified (issue 11 item 10): a first use refused with 400 / 403 / 412 cannot
be replayed through another worker or after a restart."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from server.http.app import create_app
from server.storage.schema import audit_events
from tests import fhir_factory as f
from tests import jwt_kit as k
from tests.conftest import PUBLIC_BASE_URL

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
