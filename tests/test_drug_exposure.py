"""Issue 14, drug exposure: reverse on the drug's effect, not the order's status; product codes and local names
recognised; heparin flushes and bleeding that is not life-threatening get no reversal agent; the site formulary;
orders an EHR can place. Every test drives the real HTTP app with FHIR R4 JSON."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from server.http.app import create_app
from server.config import Settings
from server.replay.request_files import load_request, request_files
from server.replay.runner import _services_for
from tests import engine_factory as e
from tests import fhir_factory as f
from tests.conftest import ALL_STOCKED

URL = "/cds-services/massive-hemoptysis"
MASSIVE = [f.spo2(86), f.respiratory_rate(26), f.heart_rate(110), f.blood_pressure(104, 62)]
STABLE = [f.spo2(97), f.respiratory_rate(16), f.heart_rate(80), f.blood_pressure(130, 80)]
WARFARIN = ("855332", "Warfarin Sodium 5 MG Oral Tablet")
# clinical.md A2: the RxNorm codes confirmed (✔) for the orders the service can propose
CONFIRMED_ORDER_RXCUIS = {"10691", "8308", "3251", "6902"}  # clinical.md A2 ✔ (6902: methylprednisolone)


def cards(client, resources, condition=None) -> dict[str, dict]:
    bleeding = condition or f.hemoptysis()
    response = client.post(URL, json=f.patient_view_request([f.patient(), bleeding, *resources]))
    assert response.status_code == 200, response.json
    return {card["source"]["topic"]["code"]: card for card in response.json["cards"]}


def orders(card: dict) -> dict[str, dict]:
    return {s["label"]: s["actions"][0] for s in card.get("suggestions", ())}


def statement(code, display, *, status="active", end=None, med_id=None):
    resource = f.medication_statement(code, display, status=status, med_id=med_id)
    if end is not None:
        del resource["effectiveDateTime"]  # effective[x]: one of them
        resource["effectivePeriod"] = {"start": f.ago(days=100), "end": end}
    return resource


def order(code, display, *, status="active", med_id=None, **extra):
    resource = f.medication_request(code, display, status=status, med_id=med_id)
    resource.update(extra)
    return resource


# ------------------------------------------------------------------------------------------ item 1: effect

def test_warfarin_on_hold_with_inr_2_8_is_reversed_on_its_effect(client):
    found = cards(client, [*MASSIVE, f.inr(2.8), f.weight(78), order(*WARFARIN, status="on-hold", med_id="held")])
    reversal = found["antithrombotic-reversal"]
    assert reversal["summary"].startswith("Reverse warfarin now") and reversal["indicator"] == "critical"
    assert "on-hold, but INR 2.8 >= 1.4" in reversal["detail"] and "its effect is present" in reversal["detail"]
    made = orders(reversal)
    pcc = next(a for label, a in made.items() if label.startswith("4F-PCC"))
    assert pcc["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1950  # 25 x 78
    assert not any(label.startswith("Hold") for label in made)  # it is already on hold


@pytest.mark.parametrize("inr, reversed_", [(1.39, False), (1.4, True), (2.8, True)])
def test_on_hold_vka_counts_from_the_inr_threshold(client, inr, reversed_):
    found = cards(client, [*MASSIVE, f.inr(inr), f.weight(70), order(*WARFARIN, status="on-hold")])
    assert ("antithrombotic-reversal" in found) is reversed_


def test_the_coagulopathy_card_points_to_a_reversal_card_that_is_there(client):
    """Before: an on-hold warfarin with INR 2.8 got the coagulopathy card pointing to a missing reversal card."""
    found = cards(client, [*MASSIVE, f.inr(2.8), f.weight(70), order(*WARFARIN, status="on-hold")])
    assert "antithrombotic-reversal" in found
    assert "special-population-anticoagulated-coagulopathic" not in found  # the agent explains the INR


@pytest.mark.parametrize("hours_ago, reversed_", [(10, True), (71.9, True), (72.1, False), (120, False)])
def test_stopped_doac_counts_within_its_effect_window(client, hours_ago, reversed_):
    found = cards(client, [*MASSIVE, f.weight(70),
                           statement("1364430", "apixaban", status="stopped", end=f.ago(hours=hours_ago))])
    assert ("antithrombotic-reversal" in found) is reversed_
    if reversed_:
        assert "within its effect window 72 h" in found["antithrombotic-reversal"]["detail"]


def test_stopped_order_with_a_recent_administration_counts(client):
    given = e.administration("1364445", "apixaban 5 MG Oral Tablet", hours_ago=10, dose=5, adm_id="mar")
    found = cards(client, [*MASSIVE, f.weight(70), order("1364445", "apixaban 5 MG Oral Tablet", status="stopped"), given])
    detail = found["antithrombotic-reversal"]["detail"]
    assert "`MedicationAdministration/mar`" in detail and "stopped; last dose 10" in detail


def test_order_dosing_period_end_is_the_last_dose(client):
    dosing = [{"text": "20 mg daily", "timing": {"repeat": {"boundsPeriod": {"start": f.ago(days=30), "end": f.ago(hours=20)},
                                                         "frequency": 1, "period": 1, "periodUnit": "d"}}}]
    found = cards(client, [*MASSIVE, order("1114195", "rivaroxaban", status="completed", dosageInstruction=dosing)])
    assert "last dose 20" in found["antithrombotic-reversal"]["detail"]


def test_on_hold_doac_without_a_last_dose_time_says_its_effect_may_be_present(client):
    found = cards(client, [*MASSIVE, f.weight(70), order("1364430", "apixaban", status="on-hold")])
    assert "time of the last dose not recorded: its effect may be present" in found["antithrombotic-reversal"]["detail"]


@pytest.mark.parametrize("inr, reversed_", [(2.5, True), (1.0, False)])
def test_stopped_at_an_unknown_time_counts_only_when_the_lab_shows_the_effect(client, inr, reversed_):
    found = cards(client, [*MASSIVE, f.inr(inr), f.weight(70), order(*WARFARIN, status="stopped")])
    assert ("antithrombotic-reversal" in found) is reversed_


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "draft"])
def test_statuses_that_never_count(client, status):
    found = cards(client, [*MASSIVE, f.inr(3.0), order(*WARFARIN, status=status)])
    assert "antithrombotic-reversal" not in found


# ------------------------------------------------------------------------------------------ item 2: codes

def test_dabigatran_by_its_scd_code_only(client):
    bare = order("1037045", "x")
    bare["medicationCodeableConcept"] = {"coding": [{"system": f.RXNORM, "code": "1037045"}]}
    found = cards(client, [*MASSIVE, f.weight(80), bare])
    reversal = found["antithrombotic-reversal"]
    assert reversal["summary"].startswith("Reverse dabigatran now")
    assert "SCD 'dabigatran etexilate 150 MG Oral Capsule' -> dabigatran" in reversal["detail"]


def test_mimic_local_name_in_coding_code(client):
    given = e.administration("x", "x", hours_ago=5, dose=5)
    given["medicationCodeableConcept"] = {"coding": [
        {"system": "http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-medication-name", "code": "Warfarin"}]}
    found = cards(client, [*MASSIVE, f.inr(3.0), f.weight(70), given])
    assert found["antithrombotic-reversal"]["summary"].startswith("Reverse warfarin now")


# ------------------------------------------------------------------------------------------ item 4: not due

def _flush(dose, unit="U", text="Heparin lock flush 100 units/mL", method=None, rate=None):
    given = e.administration("5224", text, hours_ago=1, dose=dose, unit=unit, adm_id="flush",
                             rate=rate, rate_unit="U/h")
    given["medicationCodeableConcept"]["coding"][0]["display"] = text
    if method:
        given["dosage"]["method"] = {"text": method}
    return given


@pytest.mark.parametrize("resource, flush", [
    (_flush(300), True), (_flush(500, text="heparin"), True), (_flush(501, text="heparin"), False),
    (_flush(3, unit="mL"), True),  # 3 mL of 100 U/mL = 300 U
    (_flush(5000, text="heparin"), False), (_flush(5000), False),  # a systemic dose, whatever the words
    (_flush(1, unit="mL", text="Heparin sodium", method="Flushed"), True),  # no strength, but the method says it
    (_flush(None, text="Heparin 25,000 units in 250 mL (flush line first)", rate=1000), False),  # an infusion
])
def test_heparin_lock_flush_is_not_systemic_anticoagulation(client, resource, flush):
    found = cards(client, [*MASSIVE, f.lab("14979-9", 32, "s"), resource])
    assert ("antithrombotic-reversal" not in found) is flush
    if flush:
        assert "`MedicationAdministration/flush`: heparin" in found["massive-hemoptysis-escalation"]["detail"]
        assert "not systemic anticoagulation" in found["massive-hemoptysis-escalation"]["detail"]


def test_epistaxis_alone_on_apixaban_gets_no_reversal_card(client):
    epistaxis = f.condition("R04.0", "Epistaxis", system=f.ICD10CM)
    found = cards(client, [*STABLE, statement("1364430", "apixaban", med_id="apx")], condition=epistaxis)
    assert "antithrombotic-reversal" not in found
    frame = found["hemoptysis-frame-route-away"]["detail"]
    assert "apixaban (`MedicationStatement/apx`)" in frame and "becomes life-threatening" in frame


def test_epistaxis_with_shock_on_apixaban_keeps_the_reversal_card(client):
    epistaxis = f.condition("R04.0", "Epistaxis", system=f.ICD10CM)
    found = cards(client, [*MASSIVE, statement("1364430", "apixaban")], condition=epistaxis)
    assert "antithrombotic-reversal" in found


def test_non_massive_bleeding_on_warfarin_holds_and_offers_no_4f_pcc(client):
    found = cards(client, [*STABLE, f.inr(3.1), f.weight(80), order(*WARFARIN, med_id="w")])
    reversal = found["antithrombotic-reversal"]
    assert reversal["indicator"] == "warning"
    assert list(orders(reversal)) == ["Hold warfarin (MedicationRequest/w)"]
    assert "give a reversal agent if bleeding becomes life-threatening" in reversal["detail"]
    assert "2,000 U IV = 25 U/kg" in reversal["detail"]  # the dose it would be, when due


# ------------------------------------------------------------------------------------------ item 7: formulary

def _apixaban_massive():
    return [*MASSIVE, f.weight(70), e.administration("1364430", "apixaban", hours_ago=3, dose=5, adm_id="apx")]


def test_default_formulary_has_no_andexanet_and_names_the_alternative(client):
    reversal = cards(client, _apixaban_massive())["antithrombotic-reversal"]
    assert "andexanet" not in reversal["summary"]
    assert "andexanet alfa (Andexxa / Ondexxya): not stocked at this site" in reversal["detail"]
    assert "instead: 4F-PCC 50 U/kg" in reversal["detail"]
    assert any(label.startswith("4F-PCC") for label in orders(reversal))


def test_a_site_that_stocks_andexanet_gets_its_regimen(site_client):
    reversal = cards(site_client(ALL_STOCKED), _apixaban_massive())["antithrombotic-reversal"]
    assert reversal["summary"].endswith("4F-PCC 50 U/kg or andexanet alfa")
    assert "LOW regimen" in reversal["detail"] and "not stocked" not in reversal["detail"]


def test_a_site_without_4f_pcc_is_not_offered_it(site_client):
    client = site_client([key for key in ALL_STOCKED if key not in ("pcc_4f", "andexanet")], "Rural site")
    reversal = cards(client, _apixaban_massive())["antithrombotic-reversal"]
    assert not any(label.startswith("4F-PCC") for label in orders(reversal))
    assert "4F-PCC (Kcentra / Beriplex, Balfaxar, Octaplex): not stocked at this site" in reversal["detail"]
    assert "aPCC (FEIBA) 50 U/kg" in reversal["detail"] and "Rural site" in reversal["detail"]


def test_a_bad_formulary_file_stops_the_service_at_start(settings, tmp_path):
    path = tmp_path / "formulary.toml"
    path.write_text('stocked = ["pcc_4f", "kcentra"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown product key.*kcentra"):
        create_app(replace(settings, formulary_file=str(path)))
    path.write_text("stocked = \n", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot be read as TOML"):
        create_app(replace(settings, formulary_file=str(path)))


def test_formulary_file_from_environment():
    settings = Settings.from_env({"HEMOPTYSIS_CDS_FORMULARY_FILE": "/etc/hemoptysis-cds/formulary.toml"})
    assert settings.formulary_file == "/etc/hemoptysis-cds/formulary.toml"


def test_the_example_formulary_file_loads():
    from cql_equivalents.formulary import load_formulary
    example = Path(__file__).resolve().parent.parent / "deploy" / "formulary.example.toml"
    assert "andexanet" not in load_formulary(str(example)).stocked


# ------------------------------------------------------------------------------------------ item 8: orders

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _fixture_medication_requests(client):
    for path, _ in request_files([FIXTURES]):
        loaded = load_request(path, datetime.now(timezone.utc))
        for service_id in _services_for(loaded, client.get("/cds-services").json["services"]):
            response = client.post(f"/cds-services/{service_id}", json=loaded.body)
            for card in response.json.get("cards", ()) if response.status_code == 200 else ():
                for suggestion in card.get("suggestions", ()):
                    for action in suggestion["actions"]:
                        if action["type"] == "create" and action["resource"]["resourceType"] == "MedicationRequest":
                            yield path, action["resource"]


def test_every_proposed_medication_order_is_structured_and_coded_only_where_verified(client):
    seen = 0
    for path, resource in _fixture_medication_requests(client):
        seen += 1
        MedicationRequest.model_validate(resource)  # fhir.resources R4B
        dosage = resource["dosageInstruction"][0]
        dose_and_rate = dosage["doseAndRate"][0]
        # a dose, or a dose range where the source gives one (fibrinogen concentrate 3-4 g, Rossaint 2023)
        for dose in ([dose_and_rate["doseQuantity"]] if "doseQuantity" in dose_and_rate
                     else [dose_and_rate["doseRange"]["low"], dose_and_rate["doseRange"]["high"]]):
            assert dose["system"] == "http://unitsofmeasure.org" and dose["code"] and dose["value"] > 0, path
        assert dosage["route"]["text"], path
        codes = {c["code"] for c in resource["medicationCodeableConcept"].get("coding", ())}
        assert codes <= CONFIRMED_ORDER_RXCUIS, (path, codes)
        if not codes:
            assert any(n["text"].startswith("Uncoded order: no verified RxNorm code") for n in resource["note"]), path
        if dosage["route"]["text"] == "intravenous":
            assert dosage["route"]["coding"][0]["code"] == "47625008"
    assert seen >= 20


def test_4f_pcc_order_carries_the_label_infusion_rate(client):
    reversal = cards(client, [*MASSIVE, f.inr(3.1), f.weight(82), order(*WARFARIN)])["antithrombotic-reversal"]
    pcc = next(a for label, a in orders(reversal).items() if label.startswith("4F-PCC"))["resource"]
    rate = pcc["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"]
    assert rate == {"value": 8.4, "unit": "mL/min", "system": "http://unitsofmeasure.org", "code": "mL/min"}  # capped
    light = cards(client, [*MASSIVE, f.inr(3.1), f.weight(60), order(*WARFARIN)])["antithrombotic-reversal"]
    pcc = next(a for label, a in orders(light).items() if label.startswith("4F-PCC"))["resource"]
    assert pcc["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"]["value"] == 7.2  # 0.12 x 60


def test_service_requests_say_they_are_uncoded(client):
    escalation = cards(client, MASSIVE)["massive-hemoptysis-escalation"]
    for action in orders(escalation).values():
        resource = action["resource"]
        if resource["resourceType"] == "ServiceRequest":
            assert any(n["text"].startswith("Uncoded order") for n in resource["note"])


@pytest.mark.parametrize("asserted_hours_ago, reversed_", [(5, True), (80, False)])
def test_home_medication_of_unknown_status_counts_when_asserted_recently(client, asserted_hours_ago, reversed_):
    """MIMIC-IV ED home-medication statements have status 'unknown' and a dateAsserted."""
    home = statement("1364430", "apixaban", status="unknown")
    home["dateAsserted"] = f.ago(hours=asserted_hours_ago)
    found = cards(client, [*MASSIVE, f.weight(70), home])
    assert ("antithrombotic-reversal" in found) is reversed_
    if reversed_:
        assert "reported 5" in found["antithrombotic-reversal"]["detail"]


def test_andexanet_where_stocked_is_ordered_as_bolus_then_infusion_at_label_rates(site_client):
    reversal = cards(site_client(ALL_STOCKED), _apixaban_massive())["antithrombotic-reversal"]
    label, action = next((l, a) for l, a in orders(reversal).items() if l.startswith("Andexanet alfa"))
    resource = action["resource"]
    MedicationRequest.model_validate(resource)
    bolus, infusion = resource["dosageInstruction"]
    assert bolus["doseAndRate"][0]["doseQuantity"]["value"] == 400  # LOW: apixaban 5 mg
    assert bolus["doseAndRate"][0]["rateQuantity"] == {"value": 30, "unit": "mg/min",
                                                       "system": "http://unitsofmeasure.org", "code": "mg/min"}
    assert infusion["doseAndRate"][0]["doseQuantity"]["value"] == 480
    assert infusion["doseAndRate"][0]["rateQuantity"]["value"] == 4 and infusion["timing"]["repeat"]["duration"] == 120
    assert "coding" not in resource["medicationCodeableConcept"]  # RxNorm unconfirmed
    assert any(n["text"].startswith("Uncoded order") for n in resource["note"])


def test_andexanet_without_the_last_dose_strength_is_not_ordered(site_client):
    """HIGH regimen because time and strength are unknown: the card names what to obtain, no order."""
    resources = [*MASSIVE, f.weight(70), f.medication_statement("1364430", "apixaban")]
    reversal = cards(site_client(ALL_STOCKED), resources)["antithrombotic-reversal"]
    assert not any(label.startswith("Andexanet") for label in orders(reversal))
    assert "HIGH regimen" in reversal["detail"]


def _fixture_cards(client):
    for path, _ in request_files([FIXTURES]):
        loaded = load_request(path, datetime.now(timezone.utc))
        for service_id in _services_for(loaded, client.get("/cds-services").json["services"]):
            response = client.post(f"/cds-services/{service_id}", json=loaded.body)
            for card in response.json.get("cards", ()) if response.status_code == 200 else ():
                yield path, card


def test_no_reversal_card_without_an_agent_whose_effect_is_plausibly_present(client):
    """Every record a reversal card names is active, or says why its effect may still be there."""
    import re
    checked = 0
    for path, card in _fixture_cards(client):
        if card["source"]["topic"]["code"] != "antithrombotic-reversal":
            continue
        records = [line for line in card["detail"].split("\n") if re.match(r"- .*\(`Medication\w+/[^`]+`, ", line)]
        assert records, path
        for line in records:
            status = re.search(r"`, ([^,]+),", line).group(1)
            assert status == "active" or "counted because" in line, (path, line)
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize("inr, hours_ago, reversed_", [(1.0, 30, False), (2.2, 30, True), (2.2, 110, True),
                                                         (2.2, 121, False)])
def test_a_vka_given_recently_counts_unless_the_inr_says_no_effect(client, inr, hours_ago, reversed_):
    given = e.administration("855332", "Warfarin Sodium 5 MG Oral Tablet", hours_ago=hours_ago, dose=5)
    found = cards(client, [*MASSIVE, f.inr(inr), f.weight(70), given])
    assert ("antithrombotic-reversal" in found) is reversed_


def test_order_sign_does_not_block_a_heparin_lock_flush_draft(client):
    flush = f.draft_medication_request("5224", "Heparin lock flush 100 units/mL", med_id="flush")
    flush["dosageInstruction"] = [{"text": "3 mL IV every 8 h to lock the catheter", "doseAndRate": [{"doseQuantity": {
        "value": 300, "unit": "units", "system": "http://unitsofmeasure.org", "code": "[iU]"}}]}]
    infusion = f.draft_medication_request("5224", "heparin", med_id="drip")
    infusion["dosageInstruction"] = [{"text": "18 units/kg/h", "doseAndRate": [{"rateQuantity": {
        "value": 1400, "unit": "U/h", "system": "http://unitsofmeasure.org", "code": "U/h"}}]}]
    response = client.post("/cds-services/hemoptysis-order-safety",
                           json=f.order_sign_request([f.patient(), f.hemoptysis()], [flush, infusion]))
    assert response.status_code == 200
    details = " ".join(card["detail"] for card in response.json["cards"])
    assert "`MedicationRequest/drip`" in details and "`MedicationRequest/flush`" not in details


@pytest.mark.parametrize("bad", [
    {"dosageInstruction": [{"timing": "daily"}]},
    {"dosageInstruction": "5 mg"},
    {"dispenseRequest": {"validityPeriod": "yesterday"}},
    {"status": {"code": "on-hold"}},
])
def test_a_malformed_record_that_is_not_active_never_gives_a_500(client, bad):
    broken = order(*WARFARIN, status="on-hold", med_id="broken")
    broken.update(bad)
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), *MASSIVE, f.inr(2.8), broken]))
    assert response.status_code == 200
    if "status" not in bad:
        assert any("`MedicationRequest/broken`: not a valid FHIR record" in card["detail"] for card in response.json["cards"])


def test_a_malformed_administration_status_never_gives_a_500(client):
    given = e.administration("5224", "heparin", hours_ago=1, dose=300, unit="U", adm_id="odd")
    given["status"] = ["completed"]
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), *MASSIVE, given]))
    assert response.status_code == 200
