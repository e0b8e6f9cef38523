"""Attacks on the two surfaces CDS Hooks opens: the client's JWT and the call-back to the client's FHIR server.
Each attack is sent through the real HTTP app and must be refused with its status; none may reach the engine's
answer, fetch a URL it should not, or leak why (a bad JWT gets a bare 401).

ATTACKS is the list the issue asks for; docs/security.md reports what each returned."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import responses
from sqlalchemy import select

from server.storage.schema import audit_events
from tests.support import fhir_factory as f
from tests.support import jwt_kit as k
from tests.conftest import FHIR_BASE, PUBLIC_BASE_URL

URL = "/cds-services/massive-hemoptysis"
AUD = PUBLIC_BASE_URL + URL
ATTACKER = "https://attacker.example.net"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)])


def _hs256_with_public_key() -> str:
    """The classic key-confusion forgery: HMAC-SHA256 keyed with the service's copy of the client's public key."""
    key = k.session_key("RS384")
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(k.claims(AUD)).encode())])
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _call(client, token: str | None, body: dict | None = None):
    headers = {"Authorization": "" if token is None else f"Bearer {token}"}
    return client.post(URL, json=body or _valid_body(), headers=headers)


def _valid_body() -> dict:
    return f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])


def _signed(**claim_changes) -> str:
    return k.sign(k.session_key("ES384"), {**k.claims(AUD), **claim_changes})


def attack_no_token(client):
    return _call(client, None)


def attack_alg_none(client):
    return _call(client, _unsigned({"alg": "none", "typ": "JWT", "kid": "test-es384"}, k.claims(AUD)))


def attack_hs256_signed_with_public_key(client):
    return _call(client, _hs256_with_public_key())


def attack_wrong_key(client):
    impostor = k.new_key("ES384", kid="test-es384")  # same kid as the registered key, different private key
    return _call(client, k.sign(impostor, k.claims(AUD)))


def attack_expired(client):
    return _call(client, k.sign(k.session_key("ES384"), k.claims(AUD, now=int(time.time()) - 900, lifetime=300)))


def attack_future_iat(client):
    now = int(time.time())
    return _call(client, _signed(iat=now + 600, exp=now + 900))


def attack_wrong_aud(client):
    return _call(client, _signed(aud=f"{PUBLIC_BASE_URL}/cds-services/another-service"))


def attack_replayed_jti(client):
    token = _signed()
    first = _call(client, token)
    assert first.status_code == 200, "the first use of the token must be served"
    return _call(client, token)


def attack_jku_not_on_allowlist(client):
    with responses.RequestsMock() as mock:  # any fetch of the attacker's JWK Set would fail here
        response = _call(client, k.sign(k.session_key("ES384"), k.claims(AUD), jku=f"{ATTACKER}/jwks.json"))
        assert len(mock.calls) == 0
    return response


def attack_unknown_issuer(client):
    return _call(client, _signed(iss=ATTACKER))


def attack_fhir_server_elsewhere(client):
    body = f.patient_view_request([], with_prefetch=False, fhir_server=f"{ATTACKER}/fhir", access_token="ehr-token-7")
    with responses.RequestsMock() as mock:
        response = _call(client, _signed(), body)
        assert len(mock.calls) == 0  # nothing fetched, the token went nowhere
    return response


def attack_fhir_redirect_to_another_host(client):
    body = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="ehr-token-8")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", status=302,
                 headers={"Location": f"{ATTACKER}/fhir/Patient/pat-1"})
        for resource_type in ("Condition", "Observation", "MedicationStatement", "MedicationRequest"):
            mock.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
        response = _call(client, _signed(), body)
        assert all(call.request.url.startswith(FHIR_BASE) for call in mock.calls)
    return response


# name -> (attack, status it must get, reason the audit trail must give)
ATTACKS = {
    "no token": (attack_no_token, 401, "missing-token"),
    "alg none": (attack_alg_none, 401, "alg-not-allowed (none)"),
    "HS256 signed with the public key": (attack_hs256_signed_with_public_key, 401, "alg-not-allowed (HS256)"),
    "wrong key (same kid)": (attack_wrong_key, 401, "bad-signature"),
    "expired": (attack_expired, 401, "expired"),
    "iat in the future": (attack_future_iat, 401, "iat-in-future"),
    "wrong aud": (attack_wrong_aud, 401, "wrong-audience"),
    "replayed jti": (attack_replayed_jti, 401, "replayed-jti"),
    "jku not on the allowlist": (attack_jku_not_on_allowlist, 401, "jku-not-allowed"),
    "unknown issuer": (attack_unknown_issuer, 401, "unknown-issuer"),
    "fhirServer not the client's FHIR base": (attack_fhir_server_elsewhere, 403, "http-403"),
    "FHIR server redirects to another host": (attack_fhir_redirect_to_another_host, 412, "http-412"),
}


def refusals(app) -> list:
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        return connection.execute(select(audit_events).where(audit_events.c.status != 200)
                                  .order_by(audit_events.c.id)).all()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused(client, app, name):
    attack, status, reason = ATTACKS[name]
    response = attack(client)
    assert response.status_code == status, (name, response.status_code, response.json)
    assert "cards" not in response.json
    if status == 401:
        # CDS Hooks best practice: a bad JWT gets a 401 "without any additional information"
        assert response.json["issue"][0]["diagnostics"] == "authentication failed"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # the refusal is in the audit trail, with why, and with no patient hash
    [row] = refusals(app)
    assert (row.status, row.reason, row.patient_hash) == (status, reason, None)
    assert row.client_iss == (None if reason in ("missing-token",) else ATTACKER if "issuer" in name else k.ISSUER)


# ------------------------------------------------------------------------------------------ more refusals
def _token_without_kid() -> str:
    key = k.session_key("ES384")
    import jwt
    return jwt.encode(k.claims(AUD), key.private_key, algorithm="ES384", headers={"typ": "JWT"})


MORE_REFUSALS = {
    "Basic scheme": lambda: "Basic dXNlcjpwYXNz",
    "garbage bearer": lambda: "Bearer not.a.jwt",
    "no kid": lambda: f"Bearer {_token_without_kid()}",
    "kid of an EC key, alg RS384": lambda: "Bearer " + k.sign(k.new_key("RS384", kid="test-es384"), k.claims(AUD)),
    "lifetime over an hour": lambda: "Bearer " + k.sign(k.session_key("ES384"), k.claims(AUD, lifetime=7200)),
    "missing jti": lambda: "Bearer " + k.sign(k.session_key("ES384"),
                                              {key: v for key, v in k.claims(AUD).items() if key != "jti"}),
    "missing exp": lambda: "Bearer " + k.sign(k.session_key("ES384"),
                                              {key: v for key, v in k.claims(AUD).items() if key != "exp"}),
    "nbf in the future": lambda: "Bearer " + _signed(nbf=int(time.time()) + 600),
    "aud = the discovery URL": lambda: "Bearer " + _signed(aud=f"{PUBLIC_BASE_URL}/cds-services"),
    "typ not JWT": lambda: "Bearer " + k.sign(k.session_key("ES384"), k.claims(AUD), typ="at+jwt"),
}


@pytest.mark.parametrize("name", list(MORE_REFUSALS))
def test_more_bad_tokens_are_refused(client, name):
    response = client.post(URL, json=_valid_body(), headers={"Authorization": MORE_REFUSALS[name]()})
    assert response.status_code == 401, (name, response.json)
    assert response.json["issue"][0]["diagnostics"] == "authentication failed"


def test_fhir_server_elsewhere_is_refused_even_with_complete_prefetch(client):
    body = _valid_body()
    body["fhirServer"] = f"{ATTACKER}/fhir"
    assert client.post(URL, json=body).status_code == 403


def test_next_link_outside_the_fhir_base_is_not_followed(client):
    page_1 = f.searchset([f.hemoptysis()])  # Conditions: a required key, so the failure is a 412
    page_1["link"] = [{"relation": "next", "url": "https://ehr.example.org/admin/export?page=2"}]
    body = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="ehr-token-9")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=f.patient())
        mock.add(responses.GET, f"{FHIR_BASE}/Condition", json=page_1)
        for resource_type in ("Observation", "MedicationStatement", "MedicationRequest"):
            mock.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
        response = client.post(URL, json=body)
        assert all(call.request.url.startswith(FHIR_BASE + "/") for call in mock.calls)
    assert response.status_code == 412
    assert "outside the FHIR server's base URL" in response.json["issue"][0]["diagnostics"]


def _fetching_body(token: str) -> dict:
    return f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token=token)


@pytest.mark.parametrize("name", ["huge answer", "slow answer"])
def test_fhir_call_backs_are_bounded(client, app, name):
    import requests
    settings = app.extensions["hemoptysis_cds"]["settings"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        if name == "huge answer":  # one resource bigger than the whole byte budget
            padding = "x" * (settings.fhir_max_bytes + 1)
            mock.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json={**f.patient(), "text": {"div": padding}})
        else:
            mock.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", body=requests.exceptions.ReadTimeout())
        for resource_type in ("Condition", "Observation", "MedicationStatement", "MedicationRequest"):
            mock.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
        response = client.post(URL, json=_fetching_body("ehr-token-10"))
        assert all(call.request.headers["Authorization"] == "Bearer ehr-token-10" for call in mock.calls)
    assert response.status_code == 412
    words = "exceed" if name == "huge answer" else "did not answer in time"
    assert words in response.json["issue"][0]["diagnostics"]
    assert "ehr-token-10" not in json.dumps(response.json)


def _segment(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# read without the key only to find the issuer (tokens._unverified_parts): what is not two JSON objects is malformed
MALFORMED = {
    "two segments": lambda: f"{_segment({'alg': 'ES384'})}.{_segment({'iss': k.ISSUER})}",
    "four segments": lambda: "a.b.c.d",
    "header not base64url": lambda: f"!!!.{_segment({'iss': k.ISSUER})}.sig",
    "header not JSON": lambda: f"{_segment(b'not json')}.{_segment({'iss': k.ISSUER})}.sig",
    "header a JSON list": lambda: f"{_segment(['ES384'])}.{_segment({'iss': k.ISSUER})}.sig",
    "claims a JSON string": lambda: f"{_segment({'alg': 'ES384', 'kid': 'k'})}.{_segment('iss')}.sig",
    "claims not UTF-8": lambda: f"{_segment({'alg': 'ES384'})}.{_segment(b'{' + bytes([0xff]) + b'}')}.sig",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_token_is_refused_and_audited_as_malformed(client, app, name):
    response = client.post(URL, json=_valid_body(), headers={"Authorization": f"Bearer {MALFORMED[name]()}"})
    assert response.status_code == 401, (name, response.json)
    [row] = refusals(app)
    assert (row.reason, row.client_iss, row.patient_hash) == ("malformed-jwt", None, None)
