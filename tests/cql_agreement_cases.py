"""Patients built in the tests for the CQL agreement test: what no fixture holds (ABG in kPa, FiO2 / O2 flow,
vasopressors, hemoptysis volumes, the intake questionnaire, bounds, statuses, unit variants, drugs through
bundled / administered / ATC / name-only records, history conditions). Each is a real patient-view request with
`_fixture.referenceInstant`, run through both engines like a fixture; they are built rules, not answers."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

from tests import fhir_factory as f

QUESTIONNAIRE = "urn:hemoptysis-cds:Questionnaire:hemoptysis-intake"
LOCAL_SYSTEM = "urn:hemoptysis-cds:CodeSystem:engine-inputs"


def _request(name: str, resources: list[dict], included: dict[str, list[dict]] | None = None) -> tuple[str, dict]:
    """`included`: resources a search's `_include` adds to a prefetch key (e.g. the Medication of a statement)."""
    request = f.patient_view_request([f.patient(birth_date="1950-06-01"), *resources])
    for key, extra in (included or {}).items():
        request["prefetch"][key]["entry"] += [{"resource": r, "search": {"mode": "include"}} for r in extra]
    request["_fixture"] = {"title": name, "referenceInstant": datetime.now(timezone.utc).replace(microsecond=0)
                           .isoformat().replace("+00:00", "Z")}
    return f"built:{name}", request


def _without(resource: dict, key: str) -> dict:
    copied = copy.deepcopy(resource)
    copied.pop(key, None)
    return copied


def _intake(items: list[dict], status: str = "completed", authored: str | None = None) -> dict:
    return {"resourceType": "QuestionnaireResponse", "id": f"qr-{len(items)}-{status}", "questionnaire": QUESTIONNAIRE,
            "status": status, "subject": {"reference": "Patient/pat-1"}, "authored": authored or f.ago(minutes=30),
            "item": items}


def _answer(link_id: str, value: dict) -> dict:
    return {"linkId": link_id, "answer": [value]}


def _volume(value: float, unit: str, *, text: str = "", period_hours: float | None = None, coded: bool = True,
            obs_id: str) -> dict:
    resource = {"resourceType": "Observation", "id": obs_id, "status": "final",
                "code": {"coding": [{"system": LOCAL_SYSTEM, "code": "hemoptysis-volume"}] if coded else [],
                         "text": text or "Hemoptysis volume"},
                "subject": {"reference": "Patient/pat-1"},
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
    if period_hours:
        resource["effectivePeriod"] = {"start": f.ago(hours=period_hours, minutes=10), "end": f.ago(minutes=10)}
    else:
        resource["effectiveDateTime"] = f.ago(minutes=40)
    return resource


def _administration(code: str, display: str, *, status: str = "completed", hours_ago: float = 2,
                    rate: tuple[float, str] | None = None, adm_id: str) -> dict:
    resource = {"resourceType": "MedicationAdministration", "id": adm_id, "status": status,
                "medicationCodeableConcept": {"coding": [{"system": f.RXNORM, "code": code, "display": display}],
                                              "text": display},
                "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": f.ago(hours=hours_ago)}
    if rate:
        resource["dosage"] = {"rateQuantity": {"value": rate[0], "unit": rate[1], "system": "http://unitsofmeasure.org",
                                               "code": rate[1]}}
    return resource


def _report(text: str, conclusion: str, *, hours_ago: float = 3, status: str = "final", rep_id: str) -> dict:
    return {"resourceType": "DiagnosticReport", "id": rep_id, "status": status,
            "code": {"coding": [{"system": "urn:local:radiology", "code": "x"}], "text": text},
            "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": f.ago(hours=hours_ago), "conclusion": conclusion}


def _procedure(text: str, *, outcome: str = "", note: str = "", days_ago: float = 1, status: str = "completed",
               proc_id: str) -> dict:
    resource = {"resourceType": "Procedure", "id": proc_id, "status": status, "code": {"text": text},
                "subject": {"reference": "Patient/pat-1"}, "performedDateTime": f.ago(days=days_ago)}
    if outcome:
        resource["outcome"] = {"text": outcome}
    if note:
        resource["note"] = [{"text": note}]
    return resource


def _result(code: str, display: str, interpretation: str | None, value_string: str = "", *, obs_id: str) -> dict:
    resource = {"resourceType": "Observation", "id": obs_id, "status": "final",
                "code": {"coding": [{"system": f.LOINC, "code": code, "display": display}], "text": display},
                "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": f.ago(days=2)}
    if interpretation:
        resource["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                   "code": interpretation}]}]
    if value_string:
        resource["valueString"] = value_string
    return resource


def cases() -> list[tuple[str, dict]]:
    return [
        _request("abg-kpa-fio2-organ-labs", [
            f.hemoptysis(), f.condition("I10", "Essential hypertension", system=f.ICD10CM),
            f.spo2(88), f.respiratory_rate(26), f.heart_rate(118), f.blood_pressure(168, 96),
            f.observation("8310-5", 101.3, "[degF]", display="Body temperature"),
            f.observation("3150-0", 40, "%", display="Inhaled oxygen concentration"),
            f.lab("2703-7", 9.5, "kPa", display="PaO2"), f.lab("2019-8", 4.2, "kPa", display="PaCO2"),
            f.lab("777-3", 85000, "/uL", display="Platelets"), f.lab("1975-2", 43, "umol/L", display="Bilirubin"),
            f.lab("2160-0", 2.4, "mg/dL", display="Creatinine"),
            f.hemoglobin(5.1, unit="mmol/L"), f.lab("3255-7", 150, "mg/dL", display="Fibrinogen"),
        ]),
        _request("o2-flow-zero-room-air", [
            f.hemoptysis(), f.spo2(95), f.respiratory_rate(18), f.heart_rate(80), f.blood_pressure(124, 78),
            f.observation("3151-8", 0, "L/min", display="Oxygen flow"),
            f.lab("2703-7", 70, "mm[Hg]", display="PaO2"), f.lab("2019-8", 40, "mm[Hg]", display="PaCO2"),
        ]),
        _request("pf-ratio-below-100", [
            f.hemoptysis(), f.observation("3150-0", 1.0, "1", display="FiO2 fraction"),
            f.lab("2703-7", 80, "mm[Hg]", display="PaO2"), f.lab("2019-8", 48, "mm[Hg]", display="PaCO2"),
        ]),
        _request("pf-ratio-below-100-ventilated", [
            f.hemoptysis(), f.observation("3150-0", 100, "%", display="FiO2"),
            f.lab("2703-7", 80, "mm[Hg]", display="PaO2"), f.lab("2019-8", 48, "mm[Hg]", display="PaCO2"),
            _procedure("Endotracheal intubation and mechanical ventilation", days_ago=0.2, proc_id="pr-vent"),
        ]),
        _request("vasopressors", [
            f.hemoptysis(), f.blood_pressure(84, 50), f.heart_rate(124),
            _administration("7512", "norepinephrine", status="in-progress", rate=(0.15, "ug/kg/min"), adm_id="ma-ne"),
            f.medication_request("0", "dopamine infusion", system="urn:local:pharmacy"),
        ]),
        _request("vasopressor-unrated", [
            f.hemoptysis(), f.blood_pressure(96, 60),
            _administration("3992", "epinephrine", hours_ago=5, adm_id="ma-epi"),
        ]),
        _request("volume-over-30-hours", [_volume(900, "mL", period_hours=30, obs_id="vol-1")]),
        _request("volume-by-words-per-day", [_volume(650, "mL/d", coded=False, text="Expectorated blood, 24 h",
                                                     obs_id="vol-2")]),
        _request("volume-implausible-and-stale", [
            _volume(9000, "mL", obs_id="vol-3"), f.hemoptysis(),
        ]),
        _request("intake-judged-hematemesis", [
            f.hemoptysis(), _intake([_answer("blood-source", {"valueCoding": {"code": "hematemesis"}}),
                                     _answer("frothy-bright-red", {"valueBoolean": True})]),
        ]),
        _request("intake-features-both-ways", [
            f.hemoptysis(), _intake([_answer("dark-coffee-ground", {"valueBoolean": True}),
                                     _answer("with-cough", {"valueBoolean": False})]),
        ]),
        _request("intake-volume-answer", [
            _intake([{"linkId": "volumes", "item": [_answer("volume-single-ml", {"valueDecimal": 200})]}]),
        ]),
        _request("intake-stopped-response-not-read", [
            _intake([_answer("blood-source", {"valueCoding": {"code": "pseudohemoptysis"}})], status="stopped"),
        ]),
        _request("bounds-statuses-future-stale", [
            f.hemoptysis(),
            {**f.spo2(86, when=f.ago(minutes=5)), "valueQuantity": {"value": 90, "comparator": "<", "unit": "%",
                                                                   "system": "http://unitsofmeasure.org", "code": "%"}},
            f.spo2(93, when=f.ago(minutes=50)),
            f.respiratory_rate(30, status="registered"), f.respiratory_rate(14, when=f.ago(hours=2)),
            _without(f.heart_rate(150, when=f.ago(minutes=3)), "status"), f.heart_rate(98, when=f.ago(hours=1)),
            f.blood_pressure(150, 90, when=f.ago(minutes=-60)), f.blood_pressure(101, 64, when=f.ago(hours=2)),
            f.observation("8310-5", 39.4, "Cel", display="Body temperature", when=f.ago(hours=8)),
            f.inr(3.1), f.weight(176, unit="[lb_av]", when=f.ago(days=3)),
        ]),
        _request("drugs-bundled-administered-atc-name", [
            f.hemoptysis(),
            {**_without(f.medication_statement("0", "x"), "medicationCodeableConcept"), "id": "ms-clop",
             "medicationReference": {"reference": "Medication/med-clop"}},
            {**f.medication_request("1364430", "apixaban"), "doNotPerform": True},
            _administration("11289", "warfarin", hours_ago=10, adm_id="ma-warf"),
            f.medication_statement("B01AF01", "rivaroxaban", system="http://www.whocc.no/atc"),
            f.medication_request("0", "Brilinta 90 mg tablet", system="urn:local:pharmacy"),
            f.inr(2.8),
        ], included={"medicationStatements": [{"resourceType": "Medication", "id": "med-clop", "code": {
            "coding": [{"system": f.RXNORM, "code": "32968", "display": "clopidogrel"}]}}]}),
        _request("conditions-history-and-causes", [
            f.hemoptysis(), f.condition("J47.9", "Bronchiectasis, uncomplicated", system=f.ICD10CM),
            f.condition("230690007", "Stroke"), f.condition("0", "Chronic kidney disease on dialysis", system="urn:local"),
            f.condition("0", "Disseminated intravascular coagulation", system="urn:local"),
            f.condition("254637007", "Non-small cell lung cancer", clinical="resolved"),
            f.condition("21877004", "Hereditary hemorrhagic telangiectasia", verification="refuted"),
            f.condition("0", "Alcohol dependence", system="urn:local"), f.condition("0", "Cirrhosis of liver", system="urn:local"),
            f.blood_pressure(172, 98), f.lab("2160-0", 210, "umol/L", display="Creatinine"),
        ]),
        _request("anca-positive-and-dah-report", [
            f.hemoptysis(), _result("6969-0", "MPO-ANCA", "POS", obs_id="anca-1"),
            _report("CT chest", "Diffuse bilateral ground glass; alveolar hemorrhage likely", rep_id="ct-1"),
        ]),
        _request("afb-text-result-and-cavity", [
            f.hemoptysis(), {**_report("AFB smear (Ziehl-Neelsen)", "Acid-fast bacilli seen, 2+. Culture pending",
                                       rep_id="afb-1")},
            _result("0", "Xpert MTB/RIF", None, "MTB not detected, rifampicin resistance not detected", obs_id="xpert-1"),
            _report("CT angiography chest", "Cavitation right upper lobe with Rasmussen aneurysm; no active extravasation",
                    rep_id="cta-1"),
        ]),
        _request("cta-negative-in-a-quiet-interval", [
            f.hemoptysis(), _report("CTA chest", "No active extravasation. No bleeding source identified", rep_id="cta-2"),
        ]),
        _request("procedures-pa-catheter-bronchoscopy", [
            f.hemoptysis(), _procedure("Swan-Ganz catheter insertion", days_ago=2, proc_id="pr-1"),
            _procedure("Flexible bronchoscopy", outcome="Active bleeding from the left lower lobe", proc_id="pr-2"),
            _procedure("Transbronchial lung biopsy", days_ago=12, proc_id="pr-3"),
            _procedure("EBUS", status="not-done", proc_id="pr-4"),
        ]),
        # drug exposure by effect (drug_exposure.py / DrugExposure.cql): each branch of the rule on its own patient
        _request("exposure-unknown-statement-asserted-recently", [
            f.hemoptysis(), {**_without(f.medication_statement("1364430", "apixaban", status="unknown"), "effectiveDateTime"),
                             "dateAsserted": f.ago(hours=10)},
        ]),
        _request("exposure-unknown-statement-asserted-long-ago", [
            f.hemoptysis(), {**_without(f.medication_statement("1364430", "apixaban", status="unknown"), "effectiveDateTime"),
                             "dateAsserted": f.ago(days=5)},
        ]),
        _request("exposure-stopped-orders-by-their-dosing-end", [
            f.hemoptysis(),
            {**f.medication_request("67108", "enoxaparin", status="stopped"), "dosageInstruction": [
                {"timing": {"repeat": {"boundsPeriod": {"start": f.ago(days=4), "end": f.ago(hours=6)}}}}]},
            {**f.medication_request("32968", "clopidogrel", status="completed"),
             "dispenseRequest": {"validityPeriod": {"start": f.ago(days=40), "end": f.ago(days=10)}}},
        ]),
        _request("exposure-vka-given-inr-normal-flush-by-volume-infusion", [
            f.hemoptysis(), f.inr(1.1),
            _administration("11289", "warfarin", hours_ago=20, adm_id="ma-warf-2"),
            {**_administration("5224", "Heparin sodium 100 units/mL", hours_ago=1, adm_id="ma-hep-flush"),
             "dosage": {"route": {"text": "intravenous catheter"},
                        "dose": {"value": 5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}},
            _administration("5224", "heparin", status="in-progress", hours_ago=2, rate=(18, "U/kg/h"),
                            adm_id="ma-hep-drip"),
        ]),
        _request("exposure-on-hold-vka-inr-high-and-flush-order", [
            f.hemoptysis(), f.inr(2.6), f.medication_request("11289", "warfarin", status="on-hold"),
            {**f.medication_request("5224", "heparin", status="on-hold"), "dosageInstruction": [
                {"text": "heparin lock flush after each line access",
                 "doseAndRate": [{"doseQuantity": {"value": 300, "unit": "U", "system": "http://unitsofmeasure.org",
                                                   "code": "U"}}]}]},
        ]),
        # recency (recency.py): a hemoptysis Condition dated only by the encounter it was recorded in
        _request("hemoptysis-dated-by-an-old-encounter", [
            {**_without(_without(f.hemoptysis(), "onsetDateTime"), "recordedDate"),
             "encounter": {"reference": "Encounter/enc-old"}},
            f.spo2(95),
        ], included={"conditions": [{"resourceType": "Encounter", "id": "enc-old", "status": "finished",
                                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                                     "subject": {"reference": "Patient/pat-1"},
                                     "period": {"start": f.ago(days=40, hours=2), "end": f.ago(days=40)}}]}),
        # report cues are read only where affirmed (readers/reports._affirmed): negations, "no interval change"
        _request("report-cues-negated-and-unchanged", [
            f.hemoptysis(),
            _report("CT angiography chest", "No cavitation. No pulmonary artery pseudoaneurysm; hypertrophied right "
                    "bronchial artery without active extravasation", rep_id="cta-neg"),
            _report("CT chest", "No interval change in the left upper lobe cavity; free of aspergilloma", rep_id="ct-same"),
        ]),
        _request("epistaxis-text-and-hematemesis-icd", [
            f.condition("0", "Recurrent epistaxis", system="urn:local"), f.condition("K92.0", "Hematemesis", system=f.ICD10CM),
        ]),
    ]


def scenario_cases() -> list[tuple[str, dict]]:
    """The patient-view scenarios the card tests build (tests/scenarios.py), run through both engines too."""
    from tests.scenarios import PATIENT_VIEW
    built = []
    for name, make in PATIENT_VIEW.items():
        request = f.patient_view_request(make())
        request["_fixture"] = {"title": name, "referenceInstant": datetime.now(timezone.utc).replace(microsecond=0)
                               .isoformat().replace("+00:00", "Z")}
        built.append((f"scenario:{name}", request))
    return built


def shared_data_cases(root) -> list[tuple[str, dict]]:
    """One patient-view request per patient of each FHIR Bundle in the public data (../shared/data), dated at
    the patient's newest record (request-from-bundle `latest`), so that the data read as current."""
    import json

    from hooks import SERVICES
    from server.replay.bundle_reading import BundleError, resources_in, with_server_references
    from server.replay.patients import by_patient
    from server.replay.request_builder import build_request, reference_instant

    built = []
    for path in sorted(root.rglob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            continue  # the shared-data test reports these files; nothing for the engines to read
        if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
            continue
        resources = with_server_references(list(resources_in(document)))
        for patient_id, items in sorted(by_patient(resources).items()):
            instant = reference_instant("latest", items, datetime.now(timezone.utc))
            if instant is None:
                continue
            try:
                request, _ = build_request(items, patient_id, hook="patient-view", services=SERVICES.values(),
                                               title=str(path.relative_to(root)), instant=instant)
            except BundleError:
                continue  # e.g. a patient id that is not a FHIR id: the shared-data test names it
            built.append((f"shared:{path.relative_to(root)}#{patient_id}", request))
    return built
