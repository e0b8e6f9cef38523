"""What a browser-based CDS Hooks client (the CDS Hooks sandbox, an EHR's web view) needs from the service:
CORS pre-flights on every endpoint it calls, readable errors across origins, discovery, and the response shape."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from server.replay.request_files import load_request
from tests.support.fixture_library import SCENARIOS, offline_requests

SANDBOX = "https://sandbox.cds-hooks.org"
CARD_INDICATORS = {"info", "warning", "critical"}
LINK_TYPES = {"absolute", "smart"}


@pytest.mark.parametrize("path, method", [
    ("/cds-services", "GET"),
    ("/cds-services/massive-hemoptysis", "POST"),
    ("/cds-services/massive-hemoptysis/feedback", "POST"),
])
def test_preflight_for_every_endpoint_the_sandbox_calls(client, path, method):
    response = client.options(path, headers={"Origin": SANDBOX, "Access-Control-Request-Method": method,
                                             "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX)
    assert method in response.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    # '*' with credentials is refused by browsers; the sandbox does not send cookies
    assert response.headers.get("Access-Control-Allow-Credentials") != "true" or \
        response.headers["Access-Control-Allow-Origin"] != "*"


def test_discovery_as_the_sandbox_reads_it(client):
    response = client.get("/cds-services", headers={"Origin": SANDBOX, "Accept": "application/json"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX)
    services = response.get_json()["services"]
    assert services
    for service in services:
        assert service["hook"] and service["id"] and service["description"]
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in service.get("prefetch", {}).items())
    assert any(s["hook"] == "patient-view" for s in services)  # the sandbox's default view


def test_errors_are_readable_across_origins(client):
    response = client.post("/cds-services/massive-hemoptysis", data="{not json", content_type="application/json",
                           headers={"Origin": SANDBOX})
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX)
    assert response.get_json()["resourceType"] == "OperationOutcome"


def _answers(client):
    """Every fixture request, from the sandbox's origin. Without fhirServer: an incomplete prefetch is answered
    412, and the test never reaches out to a FHIR server."""
    for path, body in offline_requests():
        response = client.post("/cds-services/massive-hemoptysis", data=json.dumps(body),
                               content_type="application/json", headers={"Origin": SANDBOX})
        yield path, response


def test_response_shape_over_the_fixture_library(client):
    answered = cards_seen = 0
    for path, response in _answers(client):
        assert response.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX), path
        assert response.mimetype == "application/json", path
        if response.status_code != 200:
            assert 400 <= response.status_code < 500 and response.get_json()["resourceType"] == "OperationOutcome"
            continue
        answered += 1
        body = response.get_json()
        assert isinstance(body["cards"], list), path
        uuids = [card["uuid"] for card in body["cards"]]
        assert len(set(uuids)) == len(uuids), path
        for card in body["cards"]:
            cards_seen += 1
            assert isinstance(card["summary"], str) and 0 < len(card["summary"]) < 140, (path, card["summary"])
            assert card["indicator"] in CARD_INDICATORS
            assert card["source"]["label"]
            assert isinstance(card.get("detail", ""), str)
            for link in card.get("links", ()):
                assert link["label"] and link["url"].startswith(("http://", "https://")) and link["type"] in LINK_TYPES
            for suggestion in card.get("suggestions", ()):
                assert suggestion["label"]
                for action in suggestion.get("actions", ()):
                    assert action["type"] in ("create", "update", "delete") and action.get("description") is not None
            for key, value in card.items():  # CDS Hooks: optional members are omitted, not sent empty or null
                assert value not in (None, [], {}), (path, key)
    assert answered >= 40 and cards_seen >= 60


def test_feedback_from_the_sandbox_origin(client):
    """The sandbox posts feedback from the page when a clinician dismisses a card."""
    body = load_request(SCENARIOS / "antithrombotics" / "vka-warfarin-massive.json", datetime.now(timezone.utc)).body
    cards = client.post("/cds-services/massive-hemoptysis", data=json.dumps(body), content_type="application/json",
                        headers={"Origin": SANDBOX}).get_json()["cards"]
    feedback = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden",
                              "outcomeTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    response = client.post("/cds-services/massive-hemoptysis/feedback", data=json.dumps(feedback),
                           content_type="application/json", headers={"Origin": SANDBOX})
    assert response.status_code == 200, response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] in ("*", SANDBOX)
