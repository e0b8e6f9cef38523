"""Patients built for the CQL agreement test's reversal plans: what no fixture holds (INR bands and the dosing-weight
cap, the andexanet regimen by the last dose's strength and time, protamine by the heparin given in the window, by
the last enoxaparin / dalteparin dose and its time, 4F-PCC withheld in DIC / HIT with the words that replace it,
one order for two agents) and the haemostatic plan (targets, a reversal covering the INR, DIC / HIT / sepsis). Each is a real patient-view request run through both engines; a rule, not an answer:
the doses are computed by each engine from the table rows, never written here."""
from __future__ import annotations

from tests import fhir_factory as f
from tests.cql_agreement_cases import _request

UCUM = "http://unitsofmeasure.org"


def _given(code: str, display: str, *, hours_ago: float, adm_id: str, dose: tuple[float, str] | None = None,
           rate: tuple[float, str] | None = None, status: str = "completed", until_hours_ago: float | None = None,
           request: str | None = None) -> dict:
    """A MedicationAdministration: a dose (bolus) or a rate from `hours_ago`, with an end when given."""
    resource = {"resourceType": "MedicationAdministration", "id": adm_id, "status": status,
                "medicationCodeableConcept": {"coding": [{"system": f.RXNORM, "code": code, "display": display}],
                                              "text": display},
                "subject": {"reference": "Patient/pat-1"}}
    if until_hours_ago is not None or rate:
        resource["effectivePeriod"] = {"start": f.ago(hours=hours_ago)}
        if until_hours_ago is not None:
            resource["effectivePeriod"]["end"] = f.ago(hours=until_hours_ago)
    else:
        resource["effectiveDateTime"] = f.ago(hours=hours_ago)
    dosage = {}
    if dose:
        dosage["dose"] = {"value": dose[0], "unit": dose[1], "system": UCUM, "code": dose[1]}
    if rate:
        dosage["rateQuantity"] = {"value": rate[0], "unit": rate[1], "system": UCUM, "code": rate[1]}
    if dosage:
        resource["dosage"] = dosage
    if request:
        resource["request"] = {"reference": request}
    return resource


def _text_condition(words: str) -> dict:
    return {**f.condition("0", words, system="urn:local:problems"), "code": {"text": words}}


WARFARIN = ("11289", "warfarin 5 MG Oral Tablet")
APIXABAN = ("1364430", "apixaban")
RIVAROXABAN = ("1114195", "rivaroxaban")
HEPARIN = ("5224", "heparin")
ENOXAPARIN = ("67108", "enoxaparin")
DALTEPARIN = ("67109", "dalteparin")


def reversal_cases() -> list[tuple[str, dict]]:
    return [
        _request("reversal-vka-inr-band-weight-cap", [
            f.hemoptysis(), f.medication_statement(*WARFARIN), f.inr(3.1), f.weight(132)]),
        _request("reversal-vka-inr-above-6", [f.hemoptysis(), f.medication_statement(*WARFARIN), f.inr(7.4), f.weight(81.5)]),
        _request("reversal-vka-inr-4-to-6-edge", [f.hemoptysis(), f.medication_statement(*WARFARIN), f.inr(6.0), f.weight(64)]),
        _request("reversal-vka-inr-below-2", [f.hemoptysis(), f.medication_statement(*WARFARIN), f.inr(1.7), f.weight(70)]),
        _request("reversal-vka-in-dic", [
            f.hemoptysis(), f.medication_statement(*WARFARIN), f.inr(2.8), f.weight(75),
            _text_condition("Disseminated intravascular coagulation")]),
        _request("reversal-dabigatran-in-hit", [
            f.hemoptysis(), f.medication_statement("1546356", "dabigatran"), f.weight(118),
            _text_condition("Heparin-induced thrombocytopenia")]),
        _request("reversal-apixaban-low-dose-recent", [
            f.hemoptysis(), f.medication_statement(*APIXABAN), f.weight(70),
            _given(*APIXABAN, hours_ago=3, dose=(2.5, "mg"), adm_id="ma-apx-1")]),
        _request("reversal-apixaban-high-dose-recent", [
            f.hemoptysis(), f.medication_statement(*APIXABAN), f.weight(70),
            _given(*APIXABAN, hours_ago=1.5, dose=(10, "mg"), adm_id="ma-apx-2")]),
        _request("reversal-apixaban-dose-long-ago", [
            f.hemoptysis(), f.medication_statement(*APIXABAN),
            _given(*APIXABAN, hours_ago=9.25, dose=(10, "mg"), adm_id="ma-apx-3")]),
        _request("reversal-rivaroxaban-strength-from-product", [
            f.hemoptysis(), f.medication_statement(RIVAROXABAN[0], "Xarelto 15 MG Oral Tablet"), f.weight(90)]),
        _request("reversal-heparin-bolus-and-titrated-infusion", [
            f.hemoptysis(), f.medication_request(*HEPARIN, med_id="mr-hep"), f.weight(84),
            _given(*HEPARIN, hours_ago=1, dose=(1000, "U"), adm_id="ma-hep-bolus"),
            _given(*HEPARIN, hours_ago=5, rate=(18, "U/kg/h"), adm_id="ma-hep-1", request="MedicationRequest/mr-hep"),
            _given(*HEPARIN, hours_ago=2.5, rate=(800, "U/h"), adm_id="ma-hep-2", request="MedicationRequest/mr-hep"),
            _given(*HEPARIN, hours_ago=0.75, status="stopped", adm_id="ma-hep-stop", request="MedicationRequest/mr-hep")]),
        _request("reversal-heparin-infusion-ended-before-window", [
            f.hemoptysis(), f.medication_request(*HEPARIN, med_id="mr-hep2"),
            _given(*HEPARIN, hours_ago=9, until_hours_ago=4, rate=(1200, "U/h"), adm_id="ma-hep-old",
                   request="MedicationRequest/mr-hep2")]),
        _request("reversal-heparin-per-kg-rate-no-weight", [
            f.hemoptysis(), f.medication_request(*HEPARIN, med_id="mr-hep3"),
            _given(*HEPARIN, hours_ago=2, rate=(18, "U/kg/h"), status="in-progress", adm_id="ma-hep-kg",
                   request="MedicationRequest/mr-hep3")]),
        _request("reversal-enoxaparin-6h", [
            f.hemoptysis(), f.medication_statement(*ENOXAPARIN), _given(*ENOXAPARIN, hours_ago=6, dose=(80, "mg"), adm_id="ma-enox-1")]),
        _request("reversal-enoxaparin-10h", [
            f.hemoptysis(), f.medication_statement(*ENOXAPARIN), _given(*ENOXAPARIN, hours_ago=10, dose=(60, "mg"), adm_id="ma-enox-2")]),
        _request("reversal-enoxaparin-14h", [
            f.hemoptysis(), f.medication_statement(*ENOXAPARIN), _given(*ENOXAPARIN, hours_ago=14, dose=(60, "mg"), adm_id="ma-enox-3")]),
        _request("reversal-dalteparin-units", [
            f.hemoptysis(), f.medication_statement(*DALTEPARIN), _given(*DALTEPARIN, hours_ago=4, dose=(7500, "U"), adm_id="ma-dal")]),
        _request("reversal-two-anticoagulants-two-antiplatelets", [
            f.hemoptysis(), f.medication_statement(*WARFARIN), f.medication_statement(*APIXABAN), f.inr(2.4), f.weight(66.5),
            f.medication_statement("1191", "aspirin 81 MG"), f.medication_statement("32968", "clopidogrel 75 MG")]),
        _request("reversal-fondaparinux-argatroban", [
            f.hemoptysis(), f.medication_statement("321208", "fondaparinux"), f.medication_request("15202", "argatroban"),
            f.weight(58.4), f.lab("14979-9", 61, "s", display="aPTT")]),
        # the haemostatic plan (haemostasis.toml): targets, a reversal covering the INR, DIC / HIT / sepsis
        _request("haemostasis-dic-low-counts-no-weight", [
            f.hemoptysis(), _text_condition("Disseminated intravascular coagulation"), f.inr(1.9),
            f.lab("777-3", 38, "10*3/uL", display="Platelets"), f.lab("3255-7", 1.5, "g/L", display="Fibrinogen")]),
        _request("haemostasis-thrombolytic-low-fibrinogen", [
            f.hemoptysis(), f.medication_request("B01AD02", "alteplase", system="http://www.whocc.no/atc"), f.lab("3255-7", 1.1, "g/L", display="Fibrinogen"),
            f.inr(1.6), f.weight(70)]),
        _request("haemostasis-sepsis-inr-below-threshold", [
            f.hemoptysis(), f.condition("91302008", "Sepsis"), f.inr(1.3)]),
        _request("haemostasis-sepsis-inr-at-threshold", [
            f.hemoptysis(), f.condition("91302008", "Sepsis"), f.inr(1.4)]),
        _request("haemostasis-hit-platelets", [
            f.hemoptysis(), _text_condition("Heparin-induced thrombocytopenia"), f.lab("777-3", 22, "10*3/uL", display="Platelets")]),
    ]
