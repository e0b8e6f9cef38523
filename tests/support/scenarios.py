"""Named patients (real FHIR R4 JSON) covering every card the services can emit; shared by the conformance
tests and scripts/card_examples.py."""
from __future__ import annotations

from tests.support import fhir_factory as f

def MASSIVE_VITALS() -> list[dict]:  # noqa: N802 (a constant built anew at each call: fresh times)
    return [f.spo2(86, obs_id="spo2-1"), f.respiratory_rate(28), f.heart_rate(118), f.blood_pressure(96, 60)]


def CALM_VITALS() -> list[dict]:  # noqa: N802
    return [f.spo2(96), f.respiratory_rate(18), f.heart_rate(88), f.blood_pressure(134, 82)]
ATC = "http://www.whocc.no/atc"


def _on(code: str, display: str, system: str = f.RXNORM) -> dict:
    return f.medication_statement(code, display, system=system, med_id=f"med-{code.lower()}")


def massive_on_apixaban() -> list[dict]:
    return [f.patient(), f.hemoptysis(cond_id="hemoptysis-1"), *MASSIVE_VITALS(), f.hemoglobin(9.8), f.weight(74),
            f.condition("12295008", "Bronchiectasis", cond_id="bronchiectasis-1"),
            _on("1364430", "apixaban 5 MG Oral Tablet")]


def non_massive_on_aspirin() -> list[dict]:
    return [f.patient(), f.hemoptysis(cond_id="hemoptysis-1"), *CALM_VITALS(), f.hemoglobin(13.1), f.weight(70),
            _on("243670", "Aspirin 81 MG Oral Tablet")]


def dah_on_no_anticoagulant() -> list[dict]:
    """Diffuse alveolar haemorrhage in GPA: pulmonary haemorrhage (R04.89) + GPA, hypoxic, no antithrombotic."""
    return [f.patient(), f.condition("R04.89", "Pulmonary hemorrhage", system=f.ICD10CM, cond_id="pulmonary-hemorrhage-1"),
            f.condition("195353004", "Granulomatosis with polyangiitis", cond_id="gpa-1"),
            f.spo2(88), f.respiratory_rate(26), f.heart_rate(104), f.blood_pressure(128, 76), f.hemoglobin(8.9), f.weight(66)]


NOTE_SCENARIOS = {
    "Massive hemoptysis on apixaban": massive_on_apixaban,
    "Non-massive hemoptysis on aspirin": non_massive_on_aspirin,
    "Diffuse alveolar haemorrhage (GPA) on no anticoagulant": dah_on_no_anticoagulant,
}


def _without(code: str, resources: list[dict]) -> list[dict]:
    return [r for r in resources if (r.get("code") or {}).get("coding", [{}])[0].get("code") != code]


def _massive_on(code: str, display: str, system: str = f.RXNORM, *extra: dict) -> list[dict]:
    return [f.patient(), f.hemoptysis(), *MASSIVE_VITALS(), f.inr(3.4), f.weight(82), _on(code, display, system), *extra]


# patient-view: every severity card, every reversal class, with and without the values a dose needs
PATIENT_VIEW = {
    "massive, warfarin, INR and weight": lambda: _massive_on("855332", "Warfarin Sodium 5 MG Oral Tablet"),
    "massive, warfarin, no weight": lambda: _without("29463-7", _massive_on("11289", "warfarin")),
    "massive, warfarin, no INR": lambda: _without("6301-6", _massive_on("11289", "warfarin")),
    "massive, warfarin, INR below 2": lambda: [f.inr(1.6, when=f.ago(minutes=1)), *_massive_on("11289", "warfarin")],
    "massive, apixaban": massive_on_apixaban,
    "massive, rivaroxaban by ATC": lambda: _massive_on("B01AF01", "Xarelto", ATC),
    "massive, edoxaban": lambda: _massive_on("1599538", "edoxaban"),
    "massive, dabigatran": lambda: _massive_on("1037042", "dabigatran etexilate"),
    "massive, heparin": lambda: _massive_on("5224", "heparin"),
    "massive, enoxaparin": lambda: _massive_on("67108", "enoxaparin"),
    "massive, dalteparin": lambda: _massive_on("67109", "dalteparin"),
    "massive, fondaparinux": lambda: _massive_on("321208", "fondaparinux"),
    "massive, argatroban": lambda: _massive_on("15202", "argatroban"),
    "massive, clopidogrel": lambda: _massive_on("32968", "clopidogrel"),
    "massive, thrombolytic by ATC group": lambda: _massive_on("B01AD02", "alteplase", ATC),
    "massive, other antithrombotic by ATC group": lambda: _massive_on("B01AX99", "other antithrombotic", ATC),
    "massive, heparin group by ATC": lambda: _massive_on("B01AB99", "a heparin", ATC),
    "massive, warfarin, heparin-induced thrombocytopenia on record (4F-PCC contraindicated)": lambda: [
        *_massive_on("11289", "warfarin"),
        f.condition("x-hit", "Heparin-induced thrombocytopenia", system="http://hospital.example.org/problems")],
    "massive, two agents (warfarin + aspirin)": lambda: [*_massive_on("11289", "warfarin"), _on("1191", "aspirin")],
    "non-massive, aspirin": non_massive_on_aspirin,
    "non-massive, terrain": lambda: [f.patient(), f.hemoptysis(), *CALM_VITALS(),
                                     f.condition("39871006", "Chronic respiratory failure")],
    "undetermined (no vitals)": lambda: [f.patient(), f.hemoptysis()],
    "the only hemoptysis record is not valid FHIR": lambda: [f.patient(), {**f.hemoptysis(), "subject": None},
                                                             *MASSIVE_VITALS()],
    "child with hemoptysis (not adult)": lambda: [f.patient(birth_date=f.ago(days=365 * 9)[:10]), f.hemoptysis(),
                                                  *MASSIVE_VITALS()],
    "DAH, no anticoagulant": dah_on_no_anticoagulant,
    "causes with and without sibling engine": lambda: [
        f.patient(), f.hemoptysis(), *CALM_VITALS(), f.condition("154283005", "Pulmonary tuberculosis"),
        f.condition("363358000", "Malignant tumor of lung"), f.condition("21877004", "HHT"),
        f.condition("59282003", "Pulmonary embolism"), f.condition("91302008", "Sepsis")],
    "massive, warfarin whose display carries markup": lambda: _massive_on(
        "11289", "Warfarin <img src=x onerror=alert(1)> **5 mg** | `x`"),
    "vitals three days old": lambda: [f.patient(), f.hemoptysis(), f.spo2(86, when=f.ago(days=3)),
                                      f.respiratory_rate(26, when=f.ago(days=3)), f.blood_pressure(100, 60, when=f.ago(days=3))],
    "no hemoptysis": lambda: [f.patient(), *MASSIVE_VITALS(), _on("11289", "warfarin")],
}

# order-sign: (record, drafts)
ORDER_SIGN = {
    "apixaban drafted, active hemoptysis": lambda: (
        [f.patient(), f.hemoptysis(cond_id="hemoptysis-1")], [f.draft_medication_request("1364430", "apixaban 5 MG", med_id="draft-apixaban")]),
    "enoxaparin + clopidogrel drafted, active hemoptysis": lambda: (
        [f.patient(), f.hemoptysis()], [f.draft_medication_request("67108", "enoxaparin", med_id="draft-enox"),
                                        f.draft_medication_request("32968", "clopidogrel", med_id="draft-clop")]),
    "TXA drafted, active PE": lambda: (
        [f.patient(), f.hemoptysis(), f.condition("59282003", "Pulmonary embolism", cond_id="pe-1")],
        [f.draft_medication_request("10691", "tranexamic acid 500 mg", med_id="draft-txa")]),
    "warfarin and TXA drafted, hemoptysis and PE": lambda: (
        [f.patient(), f.hemoptysis(), f.condition("I26.99", "Other pulmonary embolism", system=f.ICD10CM)],
        [f.draft_medication_request("11289", "warfarin", med_id="draft-warf"),
         f.draft_medication_request("B02AA02", "Cyklokapron", system=ATC, med_id="draft-txa")]),
    "draft whose text carries markup": lambda: (
        [f.patient(), f.hemoptysis()], [f.draft_medication_request("1191", "aspirin <script>x</script> | **81**", med_id="d-x")]),
    "draft without id": lambda: ([f.patient(), f.hemoptysis()], [f.draft_medication_request("1191", "aspirin", med_id=None)]),
    "apixaban drafted, no hemoptysis": lambda: ([f.patient()], [f.draft_medication_request("1364430", "apixaban")]),
    "TXA drafted, hemoptysis without PE": lambda: ([f.patient(), f.hemoptysis()], [f.draft_medication_request("10691", "tranexamic acid")]),
}
