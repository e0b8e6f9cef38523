"""Feedback: validated against the cards actually issued, stored, read back."""
from __future__ import annotations

import pytest

from tests.support import fhir_factory as f

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


# ------------------------------------------------------------------------------------------ suggestions & reasons
NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"


def _escalation(client) -> dict:
    cards = _issue_cards(client)
    return next(card for card in cards if card["source"]["topic"]["code"] == "massive-hemoptysis-escalation")


def _overridden(card: dict, reason: dict | None = None, comment: str | None = None) -> dict:
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:05:00Z",
            "overrideReason": {}}
    if reason:
        item["overrideReason"]["reason"] = reason
    if comment:
        item["overrideReason"]["userComment"] = comment
    return item


def test_accepted_suggestions_round_trip(client):
    card = _escalation(client)
    icu, bae = card["suggestions"][0], card["suggestions"][1]
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:01:00Z",
            "acceptedSuggestions": [{"id": bae["uuid"]}, {"id": icu["uuid"]}]}
    response = client.post(f"{URL}/feedback", json={"feedback": [item]})
    assert response.status_code == 200 and response.json == {"received": 1, "stored": 1}
    stored = client.get(f"/audit/feedback/{card['uuid']}").json["feedback"]
    assert stored[0]["outcome"] == "accepted"
    assert {s["id"] for s in stored[0]["acceptedSuggestions"]} == {icu["uuid"], bae["uuid"]}


def test_offered_override_reason_is_stored_with_its_display(client):
    card = _escalation(client)
    offered = card["overrideReasons"][0]
    response = client.post(f"{URL}/feedback", json={"feedback": [_overridden(card, offered)]})
    assert response.status_code == 200
    assert client.get(f"/audit/feedback/{card['uuid']}").json["feedback"][0]["overrideReason"]["reason"] == offered


def test_client_added_reason_in_its_own_code_system_is_accepted(client):
    card = _escalation(client)
    local = {"system": "https://ehr.example.org/override-reasons", "code": "already-in-icu"}
    assert client.post(f"{URL}/feedback", json={"feedback": [_overridden(card, local)]}).status_code == 200


def test_reason_the_card_did_not_offer_is_refused(client):
    card = _escalation(client)
    offered = {reason["code"] for reason in card["overrideReasons"]}
    assert "patient-fears-discomfort" not in offered
    not_offered = {"system": NON_ADHERENCE, "code": "patient-fears-discomfort"}
    response = client.post(f"{URL}/feedback", json={"feedback": [_overridden(card, not_offered)]})
    assert response.status_code == 400
    assert "offered no override reason" in response.json["issue"][0]["diagnostics"]
    assert client.get(f"/audit/feedback/{card['uuid']}").json["feedback"] == []  # nothing stored


@pytest.mark.parametrize("override, expected", [
    ({"reason": {"code": "x"}}, "system"),
    ({"reason": {"system": NON_ADHERENCE}}, "code"),
    ({}, "needs a reason or a userComment"),
])
def test_malformed_override_reason_is_a_400(client, override, expected):
    card = _escalation(client)
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:05:00Z",
            "overrideReason": override}
    response = client.post(f"{URL}/feedback", json={"feedback": [item]})
    assert response.status_code == 400 and expected in response.json["issue"][0]["diagnostics"]


def test_contradictory_outcomes_are_refused(client):
    card = _escalation(client)
    overridden_with_accepts = {**_overridden(card, comment="no"), "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
    assert client.post(f"{URL}/feedback", json={"feedback": [overridden_with_accepts]}).status_code == 400
    accepted_with_reason = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:05:00Z",
                            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                            "overrideReason": {"userComment": "?"}}
    assert client.post(f"{URL}/feedback", json={"feedback": [accepted_with_reason]}).status_code == 400


def test_one_bad_item_refuses_the_whole_batch(client):
    card = _escalation(client)
    good = _overridden(card, comment="intubated already")
    bad = {"card": "never-issued", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:05:00Z"}
    assert client.post(f"{URL}/feedback", json={"feedback": [good, bad]}).status_code == 400
    assert client.get(f"/audit/feedback/{card['uuid']}").json["feedback"] == []


def test_feedback_on_an_order_sign_card_accepting_the_delete(client):
    from tests.support import scenarios
    record, drafts = scenarios.ORDER_SIGN["apixaban drafted, active hemoptysis"]()
    card = client.post("/cds-services/hemoptysis-order-safety", json=f.order_sign_request(record, drafts)).json["cards"][0]
    delete = card["suggestions"][0]
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:06:00Z",
            "acceptedSuggestions": [{"id": delete["uuid"]}]}
    # feedback goes to the service that issued the card
    assert client.post(f"{URL}/feedback", json={"feedback": [item]}).status_code == 400
    response = client.post("/cds-services/hemoptysis-order-safety/feedback", json={"feedback": [item]})
    assert response.status_code == 200 and response.json["stored"] == 1
    assert client.get(f"/audit/feedback/{card['uuid']}").json["feedback"][0]["acceptedSuggestions"] == [{"id": delete["uuid"]}]
