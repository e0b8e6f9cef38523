"""Discovery, CORS, health and every kind of bad request: each answered with a 4xx that names the problem."""
from __future__ import annotations

import json

import pytest

from tests import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def test_discovery_lists_the_service_with_its_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json["services"]}
    service = services["massive-hemoptysis"]
    assert service["hook"] == "patient-view"
    for field in ("title", "description", "usageRequirements", "prefetch"):
        assert service[field]
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "59408-5" in service["prefetch"]["vitals"] and "6301-6" in service["prefetch"]["labs"]
    assert "sort:desc" not in json.dumps(service["prefetch"])  # not R4 search syntax


def test_cors_preflight_and_headers(client):
    preflight = client.options(URL, headers={"Origin": "https://sandbox.cds-hooks.org",
                                             "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    discovery = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert discovery.headers["Access-Control-Allow-Origin"] == "*"


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "ok"


def _valid() -> dict:
    return f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(90)])


def _without(path: str) -> dict:
    body = _valid()
    parts = path.split(".")
    target = body
    for part in parts[:-1]:
        target = target[part]
    del target[parts[-1]]
    return body


def _with(path: str, value) -> dict:
    body = _valid()
    parts = path.split(".")
    target = body
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value
    return body


BAD_JSON_BODIES = [
    ("empty body", b"", 400, "body is empty"),
    ("truncated JSON", b'{"hook": "patient-view", ', 400, "not valid JSON"),
    ("JSON with a comment", b'{"hook": "patient-view" /* x */}', 400, "not valid JSON"),
    ("not UTF-8", b'\xff\xfe{"a": 1}', 400, "not"),
    ("array, not object", b"[1, 2]", 400, "invalid request"),
    ("string, not object", b'"patient-view"', 400, "invalid request"),
]


@pytest.mark.parametrize("name,raw,status,words", BAD_JSON_BODIES, ids=[b[0] for b in BAD_JSON_BODIES])
def test_malformed_bodies(client, name, raw, status, words):
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == status
    assert response.json["resourceType"] == "OperationOutcome"
    assert words in response.json["issue"][0]["diagnostics"]


BAD_FIELDS = [
    ("missing hook", lambda: _without("hook"), 400, "hook: Field required"),
    ("missing hookInstance", lambda: _without("hookInstance"), 400, "hookInstance: Field required"),
    ("missing context", lambda: _without("context"), 400, "context: Field required"),
    ("missing context.patientId", lambda: _without("context.patientId"), 400, "context.patientId: Field required"),
    ("missing context.userId", lambda: _without("context.userId"), 400, "context.userId: Field required"),
    ("patientId with a slash", lambda: _with("context.patientId", "../Patient/x"), 400, "context.patientId"),
    ("userId not Type/id", lambda: _with("context.userId", "dr-1"), 400, "context.userId"),
    ("hook the service does not serve", lambda: _with("hook", "order-sign"), 400, "answers hook 'patient-view'"),
    ("hook empty", lambda: _with("hook", ""), 400, "hook"),
    ("context not an object", lambda: _with("context", "pat-1"), 400, "context"),
    ("prefetch not an object", lambda: _with("prefetch", []), 400, "prefetch"),
    ("prefetch value not a resource", lambda: _with("prefetch.patient", "Patient/1"), 400, "prefetch 'patient'"),
    ("fhirServer not a URL", lambda: _with("fhirServer", "ftp://x"), 400, "fhirServer must be an absolute http(s) URL"),
    ("fhirAuthorization without fhirServer",
     lambda: _with("fhirAuthorization", {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                         "scope": "user/Patient.read", "subject": "cds"}), 400,
     "fhirAuthorization is given without fhirServer"),
    ("token_type not Bearer",
     lambda: {**_with("fhirAuthorization", {"access_token": "t", "token_type": "MAC", "expires_in": 300,
                                            "scope": "s", "subject": "cds"}), "fhirServer": "https://ehr.example.org/fhir"},
     400, "token_type must be 'Bearer'"),
]


@pytest.mark.parametrize("name,body,status,words", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_fields_are_named(client, name, body, status, words):
    response = client.post(URL, json=body())
    assert response.status_code == status, response.json
    text = json.dumps(response.json)
    assert words in text


def test_unknown_service_is_404(client):
    response = client.post("/cds-services/no-such-service", json=_valid())
    assert response.status_code == 404
    assert "no-such-service" in response.json["issue"][0]["diagnostics"]


def test_wrong_method_is_405(client):
    assert client.get(URL).status_code == 405
    assert client.delete("/cds-services").status_code == 405


def test_wrong_content_type_is_415(client):
    response = client.post(URL, data="hook=patient-view", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_fhir_json_content_type_is_accepted(client):
    response = client.post(URL, data=json.dumps(_valid()), content_type="application/fhir+json")
    assert response.status_code == 200


def test_body_over_the_limit_is_413(settings):
    from dataclasses import replace

    from server.http.app import create_app
    from tests.conftest import SignedClient
    small_app = create_app(replace(settings, max_body_bytes=2048))
    small_app.test_client_class = SignedClient
    small = small_app.test_client()
    response = small.post(URL, data=json.dumps(_valid()), content_type="application/json")
    assert response.status_code == 413
    assert "larger than 2048 bytes" in response.json["issue"][0]["diagnostics"]


def test_extra_members_and_extensions_are_tolerated(client):
    body = _valid()
    body["extension"] = {"com.example.timestamp": "2017-11-27T22:13:25Z"}
    body["vendorThing"] = {"x": 1}
    assert client.post(URL, json=body).status_code == 200
