"""Every call leaves an audit row, whatever the caller sends (issue 11 item 11): strings are cut to their column
(on PostgreSQL a longer one fails the insert), and a claim of the wrong JSON type is a 401, never a 500 (item 15:
a JWT `exp` given as a string is refused)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from server.http.app import create_app
from server.storage.schema import audit_events
from tests import fhir_factory as f
from tests import jwt_kit as k
from tests.conftest import PUBLIC_BASE_URL

URL = "/cds-services/massive-hemoptysis"
AUD = PUBLIC_BASE_URL + URL


def _rows(app):
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        return connection.execute(select(audit_events).order_by(audit_events.c.id)).all()


def _body() -> dict:
    return f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database_app(request, settings):
    if request.param == "postgresql":
        settings = replace(settings, database_url=request.getfixturevalue("postgres_url"))
    return create_app(settings)


def test_over_long_strings_are_cut_to_their_audit_column_and_the_call_is_audited(any_database_app):
    client = any_database_app.test_client()
    long_path = "/cds-services/" + "s" * 150
    assert client.post(long_path, json=_body()).status_code == 401  # no token: refused, and still audited
    token = k.sign(k.session_key("ES384"), k.claims(AUD, tenant="t" * 5000))
    answered = client.post(URL, json={**_body(), "hookInstance": "h" * 200}, headers=k.bearer(token))
    assert answered.status_code == 200
    refused, served = _rows(any_database_app)
    assert refused.status == 401 and refused.service_id == "s" * 100
    assert served.status == 200 and served.tenant == "t" * 200


@pytest.mark.parametrize("claim,value", [("tenant", {"id": "hospital-a"}), ("tenant", ["a"]), ("jti", 12345),
                                         ("sub", {"x": 1}), ("exp", "9999999999"), ("iat", "1700000000"),
                                         ("exp", True), ("nbf", {"at": 1}), ("iat", [1])])
def test_a_claim_of_the_wrong_type_is_401_and_audited(client, app, claim, value):
    claims = {**k.claims(AUD), claim: value}
    response = client.post(URL, json=_body(), headers=k.bearer(k.sign(k.session_key("ES384"), claims)))
    assert response.status_code == 401, response.json
    row = _rows(app)[-1]
    assert row.status == 401 and row.reason.startswith(("claim-not-a", "bad-jti", "invalid-jwt", "expired"))
