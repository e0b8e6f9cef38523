"""No card offers an order that its own text or another card of the same answer advises against: checked over
every fixture of the library and every scenario the tests build, through the real HTTP app."""
from __future__ import annotations

import json

import pytest

from cql_equivalents.tables import load
from hooks.cards import answer_guard, builder
from tests.support import fhir_factory as f
from tests.support import scenarios
from tests.support.fixture_library import offline_requests

PATIENT_VIEW_URL = "/cds-services/massive-hemoptysis"
ORDER_SIGN_URL = "/cds-services/hemoptysis-order-safety"
# What a card says when it rules out bronchial artery embolisation (read independently of the declarations, so a
# card family that forgets to declare is caught too).
NOT_BAE = ("not a bronchial artery embolisation target", "not bronchial artery embolisation", "not bronchial bae")


def _order_texts() -> dict[str, str]:
    """orders.toml key -> the text its ServiceRequest / MedicationRequest carries (to recognise an order by content)."""
    orders = load("orders")
    return {**{row["key"]: row["text"] for row in orders["service"]},
            **{row["key"]: row["medication"] for row in orders["medication"]}}


def _created(suggestion: dict) -> list[dict]:
    return [action["resource"] for action in suggestion["actions"] if action["type"] == "create"]


def _resource_text(resource: dict) -> str:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    return concept.get("text", "")


def _contradictions(cards: list[dict]) -> list[str]:
    problems = []
    known = answer_guard.every_order_key()
    against = answer_guard.advised_against(cards)
    texts = _order_texts()
    for card in cards:
        topic = card["source"]["topic"]["code"]
        for suggestion in card.get("suggestions", ()):
            if _created(suggestion) and answer_guard.order_key(suggestion) not in known:
                problems.append(f"{topic}: '{suggestion['label']}' creates an order but names no orders.toml key")
            if answer_guard.order_key(suggestion) in against:
                problems.append(f"{topic}: offers {answer_guard.order_key(suggestion)}, which the answer advises against")
    words = " ".join((card["summary"] + " " + card.get("detail", "")).lower() for card in cards)
    if any(phrase in words for phrase in NOT_BAE):
        for card in cards:
            for suggestion in card.get("suggestions", ()):
                if any(_resource_text(r) == texts["ir_bae"] for r in _created(suggestion)):
                    problems.append(f"{card['source']['topic']['code']}: offers BAE while the answer rules it out")
    if "contraindicated: 4f-pcc" in words:
        for card in cards:
            for suggestion in card.get("suggestions", ()):
                if any(_resource_text(r) == texts["pcc_4f"] for r in _created(suggestion)):
                    problems.append(f"{card['source']['topic']['code']}: offers 4F-PCC the answer says is contraindicated")
    for card in cards:
        if card["source"]["topic"]["code"] == "hemoptysis-not-adult" and any(c.get("suggestions") for c in cards):
            problems.append("an answer for a child carries orders")
    return problems


def test_no_answer_of_the_fixture_library_offers_what_it_advises_against(client):
    checked = declared = 0
    for name, body in offline_requests():
        response = client.post(PATIENT_VIEW_URL, data=json.dumps(body), content_type="application/json")
        if response.status_code != 200:
            continue
        cards = response.json["cards"]
        assert _contradictions(cards) == [], name
        checked += 1
        declared += bool(answer_guard.advised_against(cards))
    assert checked >= 60 and declared >= 5  # the library holds answers that do rule orders out


@pytest.mark.parametrize("name", sorted(scenarios.PATIENT_VIEW))
def test_no_patient_view_scenario_offers_what_it_advises_against(client, name):
    response = client.post(PATIENT_VIEW_URL, json=f.patient_view_request(scenarios.PATIENT_VIEW[name]()))
    assert response.status_code == 200, response.json
    assert _contradictions(response.json["cards"]) == []


@pytest.mark.parametrize("name", sorted(scenarios.ORDER_SIGN))
def test_no_order_sign_scenario_offers_what_it_advises_against(client, name):
    record, drafts = scenarios.ORDER_SIGN[name]()
    response = client.post(ORDER_SIGN_URL, json=f.order_sign_request(record, drafts))
    assert response.status_code == 200, response.json
    assert _contradictions(response.json["cards"]) == []


def _card(topic: str, keys=(), offers=()) -> dict:
    card = builder.card("s", "warning", "d", builder.source("https://cds.example.org", topic))
    answer_guard.declare(card, keys)
    if offers:
        card["suggestions"] = [answer_guard.tag({"label": key, "uuid": key, "actions": []}, key) for key in offers]
        card["selectionBehavior"] = "any"
    return card


def test_enforce_withdraws_an_order_another_card_advises_against():
    offering = _card("massive-hemoptysis-escalation", offers=("icu_transfer", "ir_bae"))
    lonely = _card("hemoptysis-severe-by-terrain", offers=("ir_bae",))
    advising = _card("special-population-dah-vasculitis", keys=("ir_bae",))
    cards = answer_guard.enforce([offering, lonely, advising])
    assert [s["label"] for s in cards[0]["suggestions"]] == ["icu_transfer"]
    assert "suggestions" not in cards[1] and "selectionBehavior" not in cards[1]
    assert answer_guard.violations(cards) == []


def test_declarations_name_only_existing_orders():
    with pytest.raises(ValueError):
        answer_guard.declare(_card("x"), ["no_such_order"])
    assert answer_guard.declared(answer_guard.declare(_card("x"), [answer_guard.ALL_ORDERS])) == set(answer_guard.every_order_key())
    rows = [*load("populations")["population"], *load("contraindications")["rule"]]
    named = {key for row in rows for key in row.get("advises_against", ())}
    assert named and named <= answer_guard.every_order_key()


def test_a_declaration_naming_an_order_not_in_the_table_is_refused_every_time():
    """The order keys are made once per process: a key outside the table is still refused, on every card."""
    for _ in range(2):
        with pytest.raises(ValueError, match="no_such_order"):
            answer_guard.declare(_card("x"), ["no_such_order"])
    assert answer_guard.every_order_key() == frozenset(
        row["key"] for row in (*load("orders")["service"], *load("orders")["medication"]))
