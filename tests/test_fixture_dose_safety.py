"""Issue 14, over every fixture request: no proposed dose above its label maximum (reversal.toml
`label_maximum`), no duplicate order in one answer, and no reversal card without an antithrombotic record the
card names and the request holds as given / taken / ordered (not entered-in-error, cancelled, not-done or
doNotPerform)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.readers import map_inputs
from cql_equivalents.tables import load
from server.replay.request_files import load_request

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = sorted(p for p in (ROOT / "fixtures" / "scenarios").rglob("*.json") if not p.name.endswith(".cards.json"))
URL = "/cds-services/massive-hemoptysis"
NOT_TAKEN = {"entered-in-error", "cancelled", "not-done", "not-taken"}
CITED = re.compile(r"\(`((?:MedicationRequest|MedicationStatement|MedicationAdministration)/[^`]+)`")


def _maxima() -> dict[str, dict]:
    return {row["order"]: row for row in load("reversal")["label_maximum"]}


def _order_keys() -> dict[str, str]:
    return {row["medication"]: row["key"] for row in load("orders")["medication"]}


def _resources(body: dict) -> dict[str, dict]:
    found = {}
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        entries = [entry.get("resource") for entry in value.get("entry", ())] if value.get("resourceType") == "Bundle" \
            else [value]
        for resource in entries:
            if isinstance(resource, dict) and resource.get("id"):
                found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def _proposed(cards: list[dict]) -> list[dict]:
    return [action["resource"] for card in cards for suggestion in card.get("suggestions", ())
            for action in suggestion["actions"] if action["type"] == "create"]


@pytest.fixture(scope="module")
def answers(app):
    client = app.test_client()
    now = datetime.now(timezone.utc)
    results = []
    for path in REQUESTS:
        loaded = load_request(path, now)
        if loaded.body.get("hook") != "patient-view" or loaded.fixture.get("service", "massive-hemoptysis") != "massive-hemoptysis":
            continue
        response = client.post(URL, json=loaded.body, headers={"Authorization": "Bearer dev"})
        if response.status_code == 200:
            results.append((path.relative_to(ROOT), loaded.body, response.json["cards"]))
    return results


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from server.http.app import create_app
    from server.replay.target import in_process_settings
    return create_app(in_process_settings(tmp_path_factory.mktemp("safety")))


def test_the_library_is_replayed(answers):
    assert len(answers) >= 70
    assert sum(1 for _, _, cards in answers if any(c["source"]["topic"]["code"] == "antithrombotic-reversal"
                                                  for c in cards)) >= 25


def test_no_dose_above_the_label_maximum(answers):
    maxima, keys = _maxima(), _order_keys()
    checked = 0
    for path, body, cards in answers:
        weight = map_inputs(pool_from_values(body.get("prefetch") or {}), datetime.now(timezone.utc)).value("body_weight")
        for resource in _proposed(cards):
            if resource["resourceType"] != "MedicationRequest":
                continue
            key = keys.get(resource["medicationCodeableConcept"]["text"])
            dose = resource["dosageInstruction"][0]["doseAndRate"][0]
            value = dose["doseQuantity"]["value"] if "doseQuantity" in dose else dose["doseRange"]["high"]["value"]
            limit = maxima.get(key)
            if limit is None:
                continue
            checked += 1
            if "max_amount" in limit:
                assert value <= limit["max_amount"], (path, key, value)
            if "max_per_kg" in limit:
                assert weight is not None and value <= round(limit["max_per_kg"] * weight, 1), (path, key, value, weight)
    assert checked >= 20  # the check ran over real orders


def test_no_duplicate_order_in_one_answer(answers):
    for path, _, cards in answers:
        seen = []
        for resource in _proposed(cards):
            concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
            dosage = (resource.get("dosageInstruction") or [{}])[0]
            seen.append((resource["resourceType"], concept.get("text"), dosage.get("route", {}).get("text")))
        assert len(seen) == len(set(seen)), (path, seen)


def test_no_reversal_card_without_an_antithrombotic_on_record(answers):
    for path, body, cards in answers:
        resources = _resources(body)
        for card in cards:
            if card["source"]["topic"]["code"] != "antithrombotic-reversal":
                continue
            cited = CITED.findall(card["detail"])
            present = [ref for ref in cited if ref in resources
                       and resources[ref].get("status") not in NOT_TAKEN and resources[ref].get("doNotPerform") is not True]
            assert present, (path, cited)
