"""Real FHIR R4 JSON for tests: resources shaped as EHRs send them (US Core / FHIR R4 profiles)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def ago(**delta) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def patient(patient_id: str = "pat-1", birth_date: str = "1961-04-02", gender: str = "male") -> dict:
    return {"resourceType": "Patient", "id": patient_id, "active": True,
            "name": [{"family": "Testperson", "given": ["Alex"]}], "gender": gender, "birthDate": birth_date}


def observation(code: str, value: float, unit: str, ucum: str | None = None, *, patient_id: str = "pat-1",
                when: str | None = None, status: str = "final", category: str = "vital-signs", display: str = "",
                obs_id: str | None = None, system: str = LOINC) -> dict:
    quantity = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum or unit}
    return {
        "resourceType": "Observation", "id": obs_id or f"obs-{uuid.uuid4().hex[:12]}", "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": category}]}],
        "code": {"coding": [{"system": system, "code": code, "display": display or code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when or ago(minutes=20),
        "valueQuantity": quantity,
    }


def spo2(value: float, **kw) -> dict:
    return observation("59408-5", value, "%", display="Oxygen saturation in Arterial blood by Pulse oximetry", **kw)


def respiratory_rate(value: float, **kw) -> dict:
    return observation("9279-1", value, "/min", display="Respiratory rate", **kw)


def heart_rate(value: float, **kw) -> dict:
    return observation("8867-4", value, "/min", display="Heart rate", **kw)


def blood_pressure(systolic: float, diastolic: float, *, patient_id: str = "pat-1", when: str | None = None,
                   status: str = "final", obs_id: str | None = None) -> dict:
    def component(code, value, display):
        return {"code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
    return {
        "resourceType": "Observation", "id": obs_id or f"bp-{uuid.uuid4().hex[:12]}", "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": when or ago(minutes=20),
        "component": [component("8480-6", systolic, "Systolic blood pressure"),
                      component("8462-4", diastolic, "Diastolic blood pressure")],
    }


def lab(code: str, value: float, unit: str, ucum: str | None = None, **kw) -> dict:
    return observation(code, value, unit, ucum, category="laboratory", **kw)


def inr(value: float, **kw) -> dict:
    return lab("6301-6", value, "{INR}", display="INR in Platelet poor plasma by Coagulation assay", **kw)


def hemoglobin(value: float, unit: str = "g/dL", **kw) -> dict:
    return lab("718-7", value, unit, display="Hemoglobin [Mass/volume] in Blood", **kw)


def weight(value: float, unit: str = "kg", **kw) -> dict:
    return observation("29463-7", value, unit, display="Body weight", **kw)


def condition(code: str, display: str, *, system: str = SNOMED, patient_id: str = "pat-1", clinical: str = "active",
              verification: str = "confirmed", onset: str | None = None, cond_id: str | None = None) -> dict:
    return {
        "resourceType": "Condition", "id": cond_id or f"cond-{uuid.uuid4().hex[:12]}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": clinical}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": verification}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"}, "onsetDateTime": onset or ago(hours=3),
        "recordedDate": onset or ago(hours=3),
    }


def hemoptysis(**kw) -> dict:
    return condition("66857006", "Hemoptysis", **kw)


def medication_statement(code: str, display: str, *, system: str = RXNORM, patient_id: str = "pat-1",
                         status: str = "active", med_id: str | None = None) -> dict:
    return {
        "resourceType": "MedicationStatement", "id": med_id or f"ms-{uuid.uuid4().hex[:12]}", "status": status,
        "medicationCodeableConcept": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": ago(days=2), "dateAsserted": ago(days=1),
    }


def medication_request(code: str, display: str, *, system: str = RXNORM, patient_id: str = "pat-1",
                       status: str = "active", intent: str = "order", med_id: str | None = None) -> dict:
    return {
        "resourceType": "MedicationRequest", "id": med_id or f"mr-{uuid.uuid4().hex[:12]}", "status": status,
        "intent": intent,
        "medicationCodeableConcept": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"}, "authoredOn": ago(days=30),
    }


def searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "search": {"mode": "match"}}
                      for r in resources]}


def patient_view_request(resources: list[dict], *, patient_id: str = "pat-1", with_prefetch: bool = True,
                         fhir_server: str | None = None, access_token: str | None = None) -> dict:
    """A patient-view request whose prefetch holds `resources`, split by prefetch key as a client would."""
    request = {
        "hook": "patient-view", "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": patient_id},
    }
    if fhir_server:
        request["fhirServer"] = fhir_server
    if access_token:
        request["fhirAuthorization"] = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                                        "scope": "user/Patient.read user/Observation.read", "subject": "hemoptysis-cds"}
    if with_prefetch:
        request["prefetch"] = split_prefetch(resources)
    return request


def split_prefetch(resources: list[dict]) -> dict:
    from hooks.massive_hemoptysis.prefetch import EXTRA_VITALS, PHYSIOLOGY
    from cql_equivalents.tables import tables
    specs = tables().observation_inputs
    vital_codes = {c for n in (*PHYSIOLOGY, *EXTRA_VITALS) for c in (*specs[n].loinc, *specs[n].panel)}
    vital_codes |= set(tables().bleeding["volume"]["local_codes"])
    keys = {"patient": None, "conditions": [], "vitals": [], "labs": [], "medicationStatements": [],
            "medicationRequests": [], "medicationAdministrations": [], "procedures": [], "diagnosticReports": [],
            "imagingStudies": [], "questionnaireResponses": [], "deviceUseStatements": [], "deviceRequests": []}
    by_type = {"Condition": "conditions", "MedicationStatement": "medicationStatements",
               "MedicationRequest": "medicationRequests", "MedicationAdministration": "medicationAdministrations",
               "Procedure": "procedures", "DiagnosticReport": "diagnosticReports", "ImagingStudy": "imagingStudies",
               "QuestionnaireResponse": "questionnaireResponses", "DeviceUseStatement": "deviceUseStatements",
               "Device": "deviceUseStatements", "DeviceRequest": "deviceRequests"}
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "Patient":
            keys["patient"] = resource
        elif kind == "Observation":
            code = (resource["code"].get("coding") or [{}])[0].get("code")
            keys["vitals" if code in vital_codes else "labs"].append(resource)
        elif kind in by_type:
            keys[by_type[kind]].append(resource)
    return {key: (value if key == "patient" else searchset(value)) for key, value in keys.items()}


def draft_medication_request(code: str, display: str, *, system: str = RXNORM, patient_id: str = "pat-1",
                             med_id: str | None = "draft-1", dose_mg: float | None = None) -> dict:
    """A draft MedicationRequest as an order-sign client sends it in context.draftOrders (FHIR R4)."""
    draft = {
        "resourceType": "MedicationRequest", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"}, "authoredOn": ago(minutes=1),
        "requester": {"reference": "Practitioner/dr-1"},
    }
    if med_id:
        draft["id"] = med_id
    if dose_mg is not None:
        draft["dosageInstruction"] = [{"text": f"{dose_mg:g} mg", "doseAndRate": [{"doseQuantity": {
            "value": dose_mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]
    return draft


def order_sign_request(resources: list[dict], drafts: list[dict], *, patient_id: str = "pat-1",
                       bundle_type: str | None = "collection") -> dict:
    """An order-sign request: `drafts` in context.draftOrders, the record's resources in prefetch."""
    bundle = {"resourceType": "Bundle", "entry": [{"resource": draft} for draft in drafts]}
    if bundle_type:
        bundle["type"] = bundle_type
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    return {
        "hook": "order-sign", "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": patient_id, "draftOrders": bundle},
        "prefetch": {"patient": patients[0] if patients else None, "conditions": searchset(conditions)},
    }
