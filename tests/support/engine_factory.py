"""FHIR R4 JSON for the engine's further inputs: procedures, reports, questionnaire answers, administrations,
hemoptysis volume. Shaped as EHRs send them (FHIR R4 resource definitions)."""
from __future__ import annotations

import uuid

from tests.support.fhir_factory import LOINC, RXNORM, SNOMED, ago, observation

VOLUME_SYSTEM = "urn:hemoptysis-cds:CodeSystem:engine-inputs"
INTAKE = "urn:hemoptysis-cds:Questionnaire:hemoptysis-intake"


def _id(prefix: str, given: str | None) -> str:
    return given or f"{prefix}-{uuid.uuid4().hex[:10]}"


def volume(value: float, unit: str, *, when: str | None = None, obs_id: str | None = None,
           period_hours: float | None = None) -> dict:
    resource = observation("hemoptysis-volume", value, unit, system=VOLUME_SYSTEM, display="Hemoptysis volume",
                           category="exam", when=when, obs_id=_id("vol", obs_id))
    if period_hours is not None:
        del resource["effectiveDateTime"]
        resource["effectivePeriod"] = {"start": ago(hours=period_hours, minutes=5), "end": ago(minutes=5)}
    return resource


def coded_lab(code: str, display: str, interpretation: str, *, value: float = 1.0, unit: str = "U/mL",
              when: str | None = None, obs_id: str | None = None) -> dict:
    resource = observation(code, value, unit, category="laboratory", display=display, when=when, obs_id=_id("lab", obs_id))
    resource["interpretation"] = [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": interpretation}]}]
    return resource


def text_observation(text: str, value_text: str, *, when: str | None = None, obs_id: str | None = None) -> dict:
    return {"resourceType": "Observation", "id": _id("txt", obs_id), "status": "final",
            "code": {"text": text}, "subject": {"reference": "Patient/pat-1"},
            "effectiveDateTime": when or ago(hours=2), "valueString": value_text}


def type_and_screen(*, when: str | None = None) -> dict:
    return {"resourceType": "Observation", "id": _id("abo", None), "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "882-1", "display": "ABO and Rh group [Type] in Blood"}]},
            "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": when or ago(hours=1),
            "valueCodeableConcept": {"text": "O Rh(D) positive"}}


def report(text: str, conclusion: str, *, when: str | None = None, report_id: str | None = None,
           snomed: str | None = None, status: str = "final") -> dict:
    code = {"text": text}
    if snomed:
        code["coding"] = [{"system": SNOMED, "code": snomed, "display": text}]
    return {"resourceType": "DiagnosticReport", "id": _id("dr", report_id), "status": status, "code": code,
            "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": when or ago(hours=2),
            "issued": when or ago(hours=2), "conclusion": conclusion}


def procedure(text: str, *, when: str | None = None, proc_id: str | None = None, snomed: str | None = None,
              status: str = "completed", outcome: str | None = None) -> dict:
    code = {"text": text}
    if snomed:
        code["coding"] = [{"system": SNOMED, "code": snomed, "display": text}]
    resource = {"resourceType": "Procedure", "id": _id("proc", proc_id), "status": status, "code": code,
                "subject": {"reference": "Patient/pat-1"}, "performedDateTime": when or ago(hours=6)}
    if outcome:
        resource["outcome"] = {"text": outcome}
    return resource


def intake(answers: dict, *, when: str | None = None, qr_id: str | None = None) -> dict:
    """A QuestionnaireResponse to the service's intake questionnaire. Values: number (mL), bool, or code."""
    items = []
    for link_id, value in answers.items():
        if isinstance(value, bool):
            answer = {"valueBoolean": value}
        elif isinstance(value, (int, float)):
            answer = {"valueQuantity": {"value": value, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}
        else:
            answer = {"valueCoding": {"system": "urn:hemoptysis-cds:CodeSystem:blood-source", "code": value}}
        items.append({"linkId": link_id, "answer": [answer]})
    return {"resourceType": "QuestionnaireResponse", "id": _id("qr", qr_id), "questionnaire": INTAKE,
            "status": "completed", "subject": {"reference": "Patient/pat-1"}, "authored": when or ago(minutes=15),
            "item": items}


def administration(code: str, display: str, *, hours_ago: float, dose: float | None = None, unit: str = "mg",
                   rate: float | None = None, rate_unit: str = "U/h", adm_id: str | None = None,
                   status: str = "completed") -> dict:
    dosage = {}
    if dose is not None:
        dosage["dose"] = {"value": dose, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if rate is not None:
        dosage["rateQuantity"] = {"value": rate, "unit": rate_unit, "system": "http://unitsofmeasure.org", "code": rate_unit}
    resource = {"resourceType": "MedicationAdministration", "id": _id("ma", adm_id), "status": status,
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}],
                                              "text": display},
                "subject": {"reference": "Patient/pat-1"},
                "effectiveDateTime": ago(hours=hours_ago)}
    if dosage:
        resource["dosage"] = dosage
    return resource
