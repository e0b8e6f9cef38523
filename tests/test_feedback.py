"""Feedback: validated against the cards actually issued, stored, read back."""
from __future__ import annotations

from tests import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def _issue_cards(client) -> list[dict]:
    resources = [f.patient(), f.hemoptysis(), f.spo2(86), f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")]
    return client.post(URL, json=f.patient_view_request(resources)).json["cards"]


def test_feedback_round_trip(client):
    card = _issue_cards(client)[0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
            "overrideReason": {"reason": {"system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes",
                                          "code": "cds-not-applicable", "display": "Not applicable"},
                               "userComment": "already intubated"}}
    response = client.post(f"{URL}/feedback", json={"feedback": [item]})
    assert response.status_code == 200 and response.json == {"received": 1, "stored": 1}
    again = client.post(f"{URL}/feedback", json={"feedback": [item]})
    assert again.json == {"received": 1, "stored": 0}  # the same feedback twice is stored once
    stored = client.get(f"/audit/feedback/{card['uuid']}").json["feedback"]
    assert len(stored) == 1
    assert stored[0]["outcome"] == "overridden"
    assert stored[0]["overrideReason"]["userComment"] == "already intubated"


def test_feedback_for_a_card_never_issued_is_refused(client):
    _issue_cards(client)
    item = {"card": "00000000-0000-0000-0000-000000000000", "outcome": "overridden",
            "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    response = client.post(f"{URL}/feedback", json={"feedback": [item]})
    assert response.status_code == 400
    assert "no card 00000000-0000-0000-0000-000000000000 was issued" in response.json["issue"][0]["diagnostics"]


def test_accepted_needs_a_suggestion_that_was_offered(client):
    card = _issue_cards(client)[0]
    missing = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    assert client.post(f"{URL}/feedback", json={"feedback": [missing]}).status_code == 400
    unknown = {**missing, "acceptedSuggestions": [{"id": "not-offered"}]}
    response = client.post(f"{URL}/feedback", json={"feedback": [unknown]})
    assert response.status_code == 400
    assert "offered no suggestion not-offered" in response.json["issue"][0]["diagnostics"]


def test_bad_feedback_bodies(client):
    assert client.post(f"{URL}/feedback", json={"feedback": []}).status_code == 400
    assert client.post(f"{URL}/feedback", json={"notfeedback": 1}).status_code == 400
    bad_outcome = {"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-11-23T10:00:00Z"}]}
    response = client.post(f"{URL}/feedback", json=bad_outcome)
    assert response.status_code == 400 and "outcome" in response.json["issue"][0]["diagnostics"]
    assert client.post("/cds-services/nope/feedback", json={"feedback": []}).status_code == 404
