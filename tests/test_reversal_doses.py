"""Issue 14 item 3: doses never above the label. Table-driven at every band edge and cap (just below, at, just
above), weight caps for every 4F-PCC use, protamine caps, and the protamine interval arithmetic over infusion rate
changes and stops. Doses through the real HTTP app; interval edges through the pure function with a fixed `now`
(the request takes time, so an exact edge cannot be hit over HTTP)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.heparin_infusion import heparin_in_window
from cql_equivalents.readers import map_inputs
from tests import engine_factory as e
from tests import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
MASSIVE = [f.spo2(85), f.respiratory_rate(28), f.blood_pressure(110, 70)]


def answer(client, resources) -> list[dict]:
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), *resources]))
    assert response.status_code == 200, response.json
    return response.json["cards"]


def reversal(client, resources) -> dict:
    cards = [c for c in answer(client, resources) if c["source"]["topic"]["code"] == "antithrombotic-reversal"]
    assert len(cards) == 1, [c["summary"] for c in cards]
    return cards[0]


def ordered(card: dict, medication: str) -> list[float]:
    """The doses of the MedicationRequests of a card for one medication text."""
    found = []
    for suggestion in card.get("suggestions", ()):
        for action in suggestion["actions"]:
            resource = action.get("resource") or {}
            if resource.get("resourceType") == "MedicationRequest" and \
                    resource["medicationCodeableConcept"]["text"].startswith(medication):
                found.append(resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"])
    return found


# ------------------------------------------------------------------------------------------ 4F-PCC, every use

PCC = "4-factor prothrombin complex concentrate"
DRUGS = {
    "apixaban": f.medication_statement("1364430", "apixaban"),
    "rivaroxaban": f.medication_statement("1114195", "rivaroxaban"),
    "edoxaban": f.medication_statement("1599538", "edoxaban"),
}


# 50 U/kg (NCS) with the Kcentra caps: dosing weight <= 100 kg, <= 5,000 U: the 130 kg patient gets 5,000, not 6,500
@pytest.mark.parametrize("drug", sorted(DRUGS))
@pytest.mark.parametrize("weight, units", [(99, 4950), (100, 5000), (101, 5000), (130, 5000), (60, 3000)])
def test_pcc_for_factor_xa_inhibitors_is_capped_like_the_label(client, drug, weight, units):
    card = reversal(client, [*MASSIVE, f.weight(weight), DRUGS[drug]])
    assert ordered(card, PCC) == [units]
    if weight > 100:
        assert f"dosing weight capped at 100 kg; {weight:g} kg on record" in card["detail"]


# Kcentra INR bands with the weight cap: each band's own maximum and the 100 kg cap, below / at / above 100 kg
@pytest.mark.parametrize("inr, per_kg", [(2.5, 25), (5.0, 35), (7.0, 50)])
@pytest.mark.parametrize("weight", [99, 100, 101, 140])
def test_pcc_inr_bands_at_the_weight_cap(client, inr, per_kg, weight):
    card = reversal(client, [*MASSIVE, f.weight(weight), f.inr(inr),
                             f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    assert ordered(card, PCC) == [min(weight, 100) * per_kg]


# the alternatives that are text only (dabigatran without idarucizumab, argatroban) are capped too
@pytest.mark.parametrize("drug, code", [("dabigatran etexilate", "1037042"), ("argatroban", "15202")])
def test_pcc_alternatives_are_capped_in_the_text(client, drug, code):
    card = reversal(client, [*MASSIVE, f.weight(130), f.medication_statement(code, drug)])
    pcc_line = next(line for line in card["detail"].splitlines() if line.split("**")[1:2][0:1] and
                    line.split("**")[1].startswith("4F-PCC"))
    assert "5,000 U = 50 U/kg x 100 kg (dosing weight capped at 100 kg; 130 kg on record)" in pcc_line
    assert "6,500" not in pcc_line  # aPCC keeps 50 U/kg x 130 kg: no weight cap is in a source for it


# ------------------------------------------------------------------------------------------ protamine caps (orders)

@pytest.mark.parametrize("units, mg", [(4900, 49.0), (5000, 50.0), (5100, 50.0)])
def test_protamine_for_a_heparin_bolus_is_ordered_and_capped(client, units, mg):
    card = reversal(client, [*MASSIVE, e.administration("5224", "heparin", hours_ago=1, dose=units, unit="U")])
    assert ordered(card, "protamine") == [mg]


@pytest.mark.parametrize("dose, mg", [(49, 49.0), (50, 50.0), (51, 50.0)])
def test_protamine_for_enoxaparin_is_ordered_and_capped(client, dose, mg):
    card = reversal(client, [*MASSIVE, e.administration("67108", "enoxaparin", hours_ago=2, dose=dose)])
    assert ordered(card, "protamine") == [mg]


@pytest.mark.parametrize("units, mg", [(4900, 49.0), (5000, 50.0), (5100, 50.0)])
def test_protamine_for_dalteparin_units_is_ordered_and_capped(client, units, mg):
    card = reversal(client, [*MASSIVE, e.administration("67109", "dalteparin", hours_ago=2, dose=units, unit="U")])
    assert ordered(card, "protamine") == [mg]


def test_no_protamine_order_when_no_heparin_was_given_in_the_window(client):
    card = reversal(client, [*MASSIVE, e.administration("5224", "heparin", hours_ago=4, dose=5000, unit="U")])
    assert ordered(card, "protamine") == []
    assert "no heparin administration recorded in that window" in card["detail"]
    assert "no protamine dose due" in card["summary"] and not card["summary"].startswith("Reverse")


# ------------------------------------------------------------------------------------------ desmopressin once

def test_desmopressin_is_ordered_once_for_two_antiplatelets(client):
    card = reversal(client, [*MASSIVE, f.weight(80), f.medication_request("1191", "aspirin"),
                             f.medication_request("32968", "clopidogrel")])
    assert ordered(card, "desmopressin") == [32.0]  # 0.4 ug/kg x 80 kg, once, not twice
    assert "one dose for aspirin and clopidogrel" in card["detail"]


# ------------------------------------------------------------------------------------------ protamine intervals

def infusion(rate: float, *, start_h: float, end_h: float | None = None, status: str = "completed",
             request: str | None = "MedicationRequest/mr-heparin", unit: str = "[iU]/h", at_only: bool = False,
             ma_id: str | None = None) -> dict:
    """A MAR entry of a heparin infusion at NOW - start_h (and until NOW - end_h), as EHRs send a rate segment."""
    resource = e.administration("5224", "heparin", hours_ago=0, rate=rate, rate_unit=unit, status=status,
                                adm_id=ma_id)
    del resource["effectiveDateTime"]
    if at_only:
        resource["effectiveDateTime"] = (NOW - timedelta(hours=start_h)).isoformat()
    else:
        resource["effectivePeriod"] = {"start": (NOW - timedelta(hours=start_h)).isoformat()}
        if end_h is not None:
            resource["effectivePeriod"]["end"] = (NOW - timedelta(hours=end_h)).isoformat()
    if request:
        resource["request"] = {"reference": request}
    return resource


def stop(*, at_h: float, status: str = "stopped") -> dict:
    resource = e.administration("5224", "heparin", hours_ago=0, status=status)
    resource["effectiveDateTime"] = (NOW - timedelta(hours=at_h)).isoformat()
    resource["request"] = {"reference": "MedicationRequest/mr-heparin"}
    return resource


def units(resources, weight: float | None = None):
    extra = [f.weight(weight, when=(NOW - timedelta(hours=1)).isoformat())] if weight else []
    inputs = map_inputs(pool_from_values({"all": f.searchset([*resources, *extra])}), NOW)
    return heparin_in_window(inputs, "heparin", 3)


INTERVALS = [
    ("running 10 h, counted 3 h", [infusion(1000, start_h=10, status="in-progress")], 3000),
    ("titrated by periods: 1000 U/h to 2 h ago, then 1300 U/h", [
        infusion(1000, start_h=6, end_h=2), infusion(1300, start_h=2, status="in-progress")], 1000 + 2600),
    ("titrated by rate-change events (no end): the next change ends the rate", [
        infusion(1000, start_h=6, at_only=True), infusion(1300, start_h=2, status="in-progress", at_only=True)],
     1000 + 2600),
    ("three rates inside the window", [
        infusion(800, start_h=8, end_h=2.5), infusion(1000, start_h=2.5, end_h=1),
        infusion(1200, start_h=1, status="in-progress")], 400 + 1500 + 1200),
    ("stopped 5 h ago: nothing in the window", [infusion(1200, start_h=20, end_h=5)], 0),
    ("ended exactly at the window's start", [infusion(1000, start_h=10, end_h=3)], 0),
    ("ended 6 minutes inside the window", [infusion(1000, start_h=10, end_h=2.9)], 100),
    ("started exactly at the window's start", [infusion(1000, start_h=3, status="in-progress")], 3000),
    ("started 6 minutes inside the window", [infusion(1000, start_h=2.9, status="in-progress")], 2900),
    ("a stop record 1 h ago ends the running rate", [
        infusion(1000, start_h=4, status="in-progress", at_only=True), stop(at_h=1)], 2000),
    ("an on-hold record pauses it, a new rate restarts it", [
        infusion(1000, start_h=4, at_only=True), stop(at_h=2, status="on-hold"),
        infusion(600, start_h=1, status="in-progress", at_only=True)], 1000 + 600),
    ("a rate of 0 ends the infusion", [infusion(1000, start_h=5, at_only=True), infusion(0, start_h=1.5, at_only=True)],
     1500),
    ("two infusions of two orders run together: both count", [
        infusion(500, start_h=5, status="in-progress", request="MedicationRequest/a"),
        infusion(400, start_h=1, status="in-progress", request="MedicationRequest/b")], 1500 + 400),
    ("bolus in the window plus an infusion", [
        e.administration("5224", "heparin", hours_ago=0, dose=5000, unit="U") | {
            "effectiveDateTime": (NOW - timedelta(hours=2)).isoformat()},
        infusion(1000, start_h=2, status="in-progress")], 5000 + 2000),
    ("a bolus recorded during the infusion does not end it", [
        infusion(1000, start_h=5, status="in-progress", at_only=True),
        e.administration("5224", "heparin", hours_ago=0, dose=2000, unit="U") | {
            "effectiveDateTime": (NOW - timedelta(hours=1)).isoformat(),
            "request": {"reference": "MedicationRequest/mr-heparin"}}], 3000 + 2000),
]


@pytest.mark.parametrize("case, resources, expected", INTERVALS, ids=[c[0] for c in INTERVALS])
def test_protamine_interval_arithmetic(case, resources, expected):
    assert units(resources).units == pytest.approx(expected, abs=0.5)


def test_the_old_double_count_is_gone():
    """Before issue 14 each rate counted from its own start to now: 1000 x 2 + 1300 x 2 = 4600 U (46 mg)."""
    exposure = units([infusion(1000, start_h=6, end_h=2), infusion(1300, start_h=2, status="in-progress")])
    assert exposure.units == 3600
    assert [segment.units_in_window for segment in exposure.segments] == [1000, 2600]


def test_a_stopped_infusion_is_named_not_counted():
    exposure = units([infusion(1200, start_h=20, end_h=5)])
    assert exposure.units == 0 and "ended 5 h ago" in exposure.text()


def test_per_kg_rate_uses_the_weight_or_says_it_is_missing():
    assert units([infusion(18, start_h=5, status="in-progress", unit="U/kg/h")], weight=80).units == 18 * 80 * 3
    missing = units([infusion(18, start_h=5, status="in-progress", unit="U/kg/h")])
    assert missing.units == 0 and missing.needs == {"body_weight"}


def test_a_completed_rate_without_an_end_is_counted_to_now_and_said_so():
    exposure = units([infusion(1000, start_h=5, at_only=True)])
    assert exposure.units == 3000 and "no end recorded" in exposure.text()


def test_every_dose_rule_caps_at_the_label_maximum_of_its_product():
    """The caps the rules apply (reversal.toml steps) and the label maxima the fixture test checks are one figure."""
    from cql_equivalents.tables import load
    table = load("reversal")
    maxima = {row["order"]: row for row in table["label_maximum"]}
    checked = 0
    for spec in table["class"]:
        for step in spec.get("step", ()):
            product = step.get("product")
            if product == "pcc_4f":
                assert (step["max_amount"], step["max_dosing_weight_kg"]) == (maxima["pcc_4f"]["max_amount"],
                                                                              maxima["pcc_4f"]["max_dosing_weight_kg"])
                checked += 1
            if product == "protamine_iv":
                assert step["max_mg"] == maxima["protamine_iv"]["max_amount"]
                checked += 1
    assert checked >= 8  # 5 uses of 4F-PCC, 3 of protamine
