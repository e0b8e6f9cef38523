"""Deterministic (seeded) patient charts shaped like a real inpatient record, and the patient-view request
that carries them as prefetch.

A real chart is mostly Observations: vital signs every few hours and labs once a day, most of them codes the
engine never reads (temperature, chemistry, red-cell indices). Every code below occurs in the published data
in shared/data (US Core / R4 examples, Synthea, MIMIC-IV demo); none is invented. The newest values describe
massive hemoptysis on warfarin, so the whole path runs: selection, validation, severity, reversal, cards.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True)
class Measure:
    code: str
    display: str
    unit: str  # UCUM
    usual: tuple[float, float]  # range the history is drawn from
    newest: float | None = None  # the current value (the bleeding patient), when it differs from history
    decimals: int = 0


# Vital signs, every VITALS_EVERY. SpO2, RR and HR feed the engine; temperature does not.
VITALS = (
    Measure("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", (93, 99), newest=86),
    Measure("9279-1", "Respiratory rate", "/min", (12, 20), newest=26),
    Measure("8867-4", "Heart rate", "/min", (62, 96), newest=118),
    Measure("8310-5", "Body temperature", "Cel", (36.2, 37.6), decimals=1),
)
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional",
                  ("8480-6", "Systolic blood pressure", (105, 145), 92), ("8462-4", "Diastolic blood pressure", (60, 90), 55))
# Labs once a day: CBC, chemistry and INR. Hemoglobin, platelets and INR feed the engine; the rest do not.
LABS = (
    Measure("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", (11.5, 14.0), newest=9.1, decimals=1),
    Measure("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", (35, 44), decimals=1),
    Measure("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", (4.5, 10.5), decimals=1),
    Measure("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", (160, 380)),
    Measure("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", (4.0, 5.4), decimals=2),
    Measure("787-2", "Erythrocyte mean corpuscular volume [Entitic volume] by Automated count", "fL", (82, 98)),
    Measure("785-6", "Erythrocyte mean corpuscular hemoglobin [Entitic mass] by Automated count", "pg", (27, 33), decimals=1),
    Measure("786-4", "MCHC [Mass/volume] by Automated count", "g/dL", (32, 36), decimals=1),
    Measure("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", (135, 145)),
    Measure("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", (3.5, 5.0), decimals=1),
    Measure("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", (98, 107)),
    Measure("1963-8", "Bicarbonate [Moles/volume] in Serum", "mmol/L", (22, 29)),
    Measure("2339-0", "Glucose", "mg/dL", (80, 160)),
    Measure("6299-2", "Urea Nitrogen", "mg/dL", (8, 22)),
    Measure("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", (2.0, 3.0), newest=3.4, decimals=1),
)
WEIGHT = Measure("29463-7", "Body weight", "kg", (81, 83), newest=82, decimals=1)
VITALS_EVERY = timedelta(hours=4)

# (system, code, display, clinical status). Hemoptysis feeds the engine; the others are background problems.
CONDITIONS = (
    (SNOMED, "66857006", "Hemoptysis", "active"),
    (SNOMED, "49436004", "Atrial fibrillation", "active"),
    (SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)", "active"),
    (SNOMED, "10509002", "Acute bronchitis (disorder)", "resolved"),
    (SNOMED, "195662009", "Acute viral pharyngitis (disorder)", "resolved"),
)
# (RxNorm code, display, resource type). Warfarin feeds the reversal card; the others are everyday drugs.
MEDICATIONS = (
    ("855332", "Warfarin Sodium 5 MG Oral Tablet", "MedicationStatement"),
    ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "MedicationStatement"),
    ("314076", "lisinopril 10 MG Oral Tablet", "MedicationRequest"),
    ("855332", "Warfarin Sodium 5 MG Oral Tablet", "MedicationRequest"),
)

PATIENT_ID = "bench-patient-1"


def _instant(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


class ChartBuilder:
    """Builds one chart of about `size` resources, walking back in time from `now`."""

    def __init__(self, size: int, seed: int, now: datetime):
        self.size = size
        self.random = random.Random(seed)
        self.now = now
        self.serial = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial:06d}"

    def _value(self, measure: Measure, newest: bool) -> float:
        if newest and measure.newest is not None:
            return measure.newest
        low, high = measure.usual
        return round(self.random.uniform(low, high), measure.decimals)

    def _observation(self, category: str, code: str, display: str, when: datetime, **value) -> dict:
        status = "final" if self.random.random() > 0.02 else "amended"
        return {
            "resourceType": "Observation", "id": self._id("obs"), "status": status,
            "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "effectiveDateTime": _instant(when), "issued": _instant(when + timedelta(minutes=3)),
            **value,
        }

    def _measured(self, category: str, measure: Measure, when: datetime, newest: bool) -> dict:
        return self._observation(category, measure.code, measure.display, when,
                                 valueQuantity=_quantity(self._value(measure, newest), measure.unit))

    def _blood_pressure(self, when: datetime, newest: bool) -> dict:
        code, display, *parts = BLOOD_PRESSURE
        components = []
        for part_code, part_display, (low, high), current in parts:
            value = current if newest else round(self.random.uniform(low, high))
            components.append({"code": {"coding": [{"system": LOINC, "code": part_code, "display": part_display}]},
                               "valueQuantity": _quantity(value, "mm[Hg]")})
        return self._observation("vital-signs", code, display, when, component=components)

    def _vital_round(self, when: datetime, newest: bool) -> list[dict]:
        return [*(self._measured("vital-signs", m, when, newest) for m in VITALS), self._blood_pressure(when, newest)]

    def _lab_round(self, when: datetime, newest: bool) -> list[dict]:
        return [*(self._measured("laboratory", m, when, newest) for m in LABS),
                self._measured("vital-signs", WEIGHT, when, newest)]

    def patient(self) -> dict:
        return {"resourceType": "Patient", "id": PATIENT_ID, "active": True,
                "name": [{"family": "Benchmark", "given": ["Chart"]}], "gender": "male", "birthDate": "1958-06-14"}

    def conditions(self) -> list[dict]:
        found = []
        for index, (system, code, display, clinical) in enumerate(CONDITIONS):
            onset = self.now - (timedelta(hours=3) if index == 0 else timedelta(days=400 + 90 * index))
            found.append({
                "resourceType": "Condition", "id": self._id("cond"),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": clinical}]},
                "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                   "code": "confirmed"}]},
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                          "code": "problem-list-item"}]}],
                "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "onsetDateTime": _instant(onset), "recordedDate": _instant(onset),
            })
        return found

    def medications(self) -> list[dict]:
        found = []
        for code, display, resource_type in MEDICATIONS:
            concept = {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}
            resource = {"resourceType": resource_type, "id": self._id("med"), "status": "active",
                        "medicationCodeableConcept": concept, "subject": {"reference": f"Patient/{PATIENT_ID}"}}
            if resource_type == "MedicationRequest":
                resource.update(intent="order", authoredOn=_instant(self.now - timedelta(days=30)))
            else:
                resource.update(effectiveDateTime=_instant(self.now - timedelta(days=60)),
                                dateAsserted=_instant(self.now - timedelta(days=1)))
            found.append(resource)
        return found

    def observations(self, count: int) -> list[dict]:
        """Newest first: vital rounds every 4 h, a lab round every sixth round (daily), until `count`."""
        found: list[dict] = []
        when = self.now - timedelta(minutes=25)
        round_number = 0
        while len(found) < count:
            newest = round_number == 0
            batch = self._vital_round(when, newest)
            if round_number % 6 == 0:
                batch += self._lab_round(when - timedelta(minutes=40), newest)
            found.extend(batch)
            when -= VITALS_EVERY
            round_number += 1
        return found[:count]

    def build(self) -> list[dict]:
        head = [self.patient(), *self.conditions(), *self.medications()]
        return head + self.observations(max(self.size - len(head), 0))


def chart(size: int, seed: int = 7, now: datetime | None = None) -> list[dict]:
    return ChartBuilder(size, seed, now or datetime.now(timezone.utc)).build()


def _searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "search": {"mode": "match"}}
                      for resource in resources]}


def _template_type(template: str) -> str:
    return template.split("?", 1)[0].split("/", 1)[0]


def patient_view_request(resources: list[dict], hook_instance: str = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                         service_id: str = "massive-hemoptysis") -> dict:
    """The request an EHR sends: one value per prefetch key the service declares (read from its discovery, so a
    new template never makes the bench fail with 412), each resource under the key whose template asks for its
    type; Observations split into `vitals` / `labs` by category when the service has both keys. A declared key
    the chart has nothing for gets an empty searchset, as a client whose query found nothing."""
    from hooks import SERVICES

    templates = SERVICES[service_id].prefetch
    keys_by_type: dict[str, list[str]] = {}
    for key, template in templates.items():
        keys_by_type.setdefault(_template_type(template), []).append(key)
    split_observations = {"vitals", "labs"} <= set(keys_by_type.get("Observation", ()))
    found: dict[str, list[dict]] = {key: [] for key in templates}
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "Observation" and split_observations:
            category = resource["category"][0]["coding"][0]["code"]
            found["vitals" if category == "vital-signs" else "labs"].append(resource)
        elif kind in keys_by_type:
            found[keys_by_type[kind][0]].append(resource)
    prefetch = {}
    for key, template in templates.items():
        is_read = "?" not in template  # e.g. Patient/{{context.patientId}}: the resource itself, or null
        prefetch[key] = (found[key][0] if found[key] else None) if is_read else _searchset(found[key])
    return {
        "hook": "patient-view", "hookInstance": hook_instance,
        "context": {"userId": "Practitioner/bench-clinician", "patientId": PATIENT_ID},
        "prefetch": prefetch,
    }


def request_body(size: int, seed: int = 7, now: datetime | None = None) -> bytes:
    return json.dumps(patient_view_request(chart(size, seed, now))).encode()
