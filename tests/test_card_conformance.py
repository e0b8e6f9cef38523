"""Every card of every scenario, through the real HTTP app, checked against the CDS Hooks 2.0 response rules
(tests/cds_validator.py) and every suggested resource against FHIR R4 (fhir.resources.R4B)."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests import fhir_factory as f
from tests import scenarios
from tests.cds_validator import card_problems, fhir_problems, response_problems

PATIENT_VIEW_URL = "/cds-services/massive-hemoptysis"
ORDER_SIGN_URL = "/cds-services/hemoptysis-order-safety"
SMART_URL = "https://apps.example.org/hemoptysis/launch"


@pytest.fixture(params=["no SMART app", "SMART app configured"])
def settings(request, settings):
    """The conftest settings, with and without a SMART app (the `client` fixture is built on them)."""
    return replace(settings, smart_app_url=SMART_URL) if request.param == "SMART app configured" else settings


@pytest.fixture
def any_client(client):
    return client


def _conformant(response) -> list[dict]:
    assert response.status_code == 200, response.json
    body = response.json
    assert response_problems(body) == []
    for card in body["cards"]:
        for suggestion in card.get("suggestions", ()):
            for action in suggestion["actions"]:
                if "resource" in action:
                    assert fhir_problems(action["resource"], suggestion["label"]) == []
    return body["cards"]


@pytest.mark.parametrize("name", sorted(scenarios.PATIENT_VIEW))
def test_patient_view_cards_conform(any_client, name):
    request = f.patient_view_request(scenarios.PATIENT_VIEW[name]())
    request["context"]["encounterId"] = "enc-1"
    cards = _conformant(any_client.post(PATIENT_VIEW_URL, json=request))
    if name == "no hemoptysis":
        assert cards == []
        return
    assert cards, "a patient with hemoptysis always gets a card"
    smart = [link for card in cards for link in card.get("links", ()) if link["type"] == "smart"]
    assert bool(smart) == (any_client.application.extensions["hemoptysis_cds"]["settings"].smart_app_url == SMART_URL)
    for card in cards:
        for suggestion in card.get("suggestions", ()):
            for action in suggestion["actions"]:
                assert action["resource"]["encounter"] == {"reference": "Encounter/enc-1"}
                assert action["resource"]["subject"] == {"reference": "Patient/pat-1"}


@pytest.mark.parametrize("name", sorted(scenarios.ORDER_SIGN))
def test_order_sign_cards_conform(any_client, name):
    record, drafts = scenarios.ORDER_SIGN[name]()
    cards = _conformant(any_client.post(ORDER_SIGN_URL, json=f.order_sign_request(record, drafts)))
    expect_cards = "no hemoptysis" not in name and "without PE" not in name
    assert bool(cards) == expect_cards


def test_every_card_kind_is_emitted_by_some_scenario(client):
    """The scenarios above reach every topic the services can emit, so every kind of card is validated."""
    emitted = set()
    for build in scenarios.PATIENT_VIEW.values():
        emitted |= {c["source"]["topic"]["code"] for c in _conformant(client.post(PATIENT_VIEW_URL, json=f.patient_view_request(build())))}
    for build in scenarios.ORDER_SIGN.values():
        record, drafts = build()
        emitted |= {c["source"]["topic"]["code"] for c in _conformant(client.post(ORDER_SIGN_URL, json=f.order_sign_request(record, drafts)))}
    assert _literal_topics() <= emitted, f"never emitted: {sorted(_literal_topics() - emitted)}"


def _literal_topics() -> set[str]:
    """The card topics written as literals in hooks/: each card family names its topics as module constants
    (`TOPIC = "..."`, `ESCALATION_TOPIC = "..."`), passed both to its source and to the offers it gets."""
    hooks = Path(__file__).resolve().parent.parent / "hooks"
    pattern = re.compile(r'^\w*TOPIC\s*=\s*"([a-z0-9-]+)"', re.MULTILINE)
    return {topic for path in hooks.rglob("*.py") for topic in pattern.findall(path.read_text(encoding="utf-8"))}


# ------------------------------------------------------------------------------------------ the validator itself

def _good_card() -> dict:
    return {"uuid": "c1", "summary": "ok", "indicator": "info", "source": {"label": "x"},
            "detail": "**bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |"}


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c.update(summary="x" * 140), "must be < 140"),
    (lambda c: c.update(indicator="hard-stop"), "is not info, warning or critical"),
    (lambda c: c.pop("source"), "source.label"),
    (lambda c: c.update(suggestions=[{"label": "a", "uuid": "s1"}]), "MUST be at-most-one or any"),
    (lambda c: c.update(selectionBehavior="any"), "given without suggestions"),
    (lambda c: c.update(suggestions=[{"label": "a", "uuid": "s1", "isRecommended": True},
                                     {"label": "b", "uuid": "s2", "isRecommended": True}],
                        selectionBehavior="at-most-one"), "several recommended"),
    (lambda c: c.update(overrideReasons=[{"system": "s", "code": "c"}]), "overrideReasons[0].display"),
    (lambda c: c.update(links=[{"label": "l", "url": "https://x.org", "type": "absolute", "appContext": "a"}]),
     "only valid on smart links"),
    (lambda c: c.update(links=[{"label": "l", "url": "/relative", "type": "absolute"}]), "absolute URL"),
    (lambda c: c.update(suggestions=[{"label": "a", "uuid": "s1", "actions": [
        {"type": "delete", "description": "d", "resource": {"resourceType": "MedicationRequest"}}]}],
        selectionBehavior="any"), "needs a relative reference"),
    (lambda c: c.update(suggestions=[{"label": "a", "uuid": "s1", "actions": [
        {"type": "create", "description": "d", "resource": {"resourceType": "ServiceRequest", "status": "draft"}}]}],
        selectionBehavior="any"), "not valid FHIR R4"),
    (lambda c: c.update(detail="**unclosed bold"), "unrendered"),
    (lambda c: c.update(detail="| a | b |\n| 1 | 2 |"), "table lines"),
    (lambda c: c.update(detail="<b>html</b>"), "raw HTML"),
    (lambda c: c.update(colour="red"), "not a CDS Hooks card member"),
])
def test_validator_flags_each_rule(mutate, expected):
    card = _good_card()
    assert card_problems(card) == []
    mutate(card)
    assert any(expected in problem for problem in card_problems(card)), card_problems(card)


def test_validator_flags_empties_and_duplicate_uuids():
    card = _good_card()
    assert response_problems({"cards": [card, dict(card)]}) == ["response: card and suggestion uuids must be unique"]
    assert "cards[0].links: null or empty value is prohibited" in response_problems({"cards": [{**card, "links": []}]})
    assert response_problems({"cards": [], "systemActions": []}) == ["response.systemActions: omit it when empty"]
