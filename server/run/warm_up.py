"""A worker's first answer made before any EHR waits for it: the service evaluates a synthetic patient once when
the worker starts (gunicorn's post_worker_init, server/run/gunicorn_conf.py).

Why: fhir.resources imports and builds each element type (Quantity, Reference, Period...) the first time a record
holds one, and the tables, patterns and memos fill on the first call: a fresh process answered its first
50-resource call in ~63 ms, the next ones in ~4-5 ms (measured in process). A worker starts again after
`max_requests` calls and after every deploy, so without this an EHR call pays it now and then.

The synthetic patient is made from the clinical tables (their codes and units), so it needs no file and names no
real person. Only the evaluation runs: no storage (no audit row, no issued card), no network, no metrics.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.formulary import Formulary
from cql_equivalents.tables import LOINC, RXNORM, SNOMED, load, tables
from hooks.cards import answer_guard
from hooks.service import CdsService, Evaluation, LinkSettings

log = logging.getLogger("hemoptysis_cds")
PATIENT_ID = "warm-up-synthetic"

# Values for the synthetic patient, in each input's table unit (chosen inside the plausible ranges so the whole
# escalation and reversal path runs); they are warm-up input, never shown to anyone.
_VALUES = {"spo2": 86, "respiratory_rate": 28, "heart_rate": 118, "systolic_bp": 94, "diastolic_bp": 58,
           "temperature": 37.2, "inr": 3.1, "hemoglobin": 9.4, "platelets": 180, "body_weight": 74}


def _observation(name: str, number: int, at: str) -> dict[str, Any]:
    spec = tables().observation_inputs[name]
    return {"resourceType": "Observation", "id": f"warm-up-{number}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": spec.loinc[0], "display": spec.label}], "text": spec.label},
            "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectiveDateTime": at,
            "valueQuantity": {"value": _VALUES[name], "unit": spec.unit, "system": "http://unitsofmeasure.org",
                              "code": spec.unit}}


def synthetic_prefetch(now: datetime) -> dict[str, Any]:
    """Prefetch values for one synthetic adult with hemoptysis, hypoxia and a warfarin order, built from the tables."""
    at = (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bleeding = next(code for code, concept in tables().snomed_to_condition.items() if concept.role == "bleeding")
    warfarin = next(agent for agent in load("antithrombotics")["agent"] if agent["name"] == "warfarin")
    observations = [_observation(name, number, at) for number, name in enumerate(_VALUES)
                    if name in tables().observation_inputs]

    def searchset(resources: list[dict]) -> dict:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": item} for item in resources]}

    return {
        "patient": {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": f"{now.year - 60}-01-01"},
        "conditions": searchset([{"resourceType": "Condition", "id": "warm-up-condition",
                                  "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                                 "code": "active"}]},
                                  "code": {"coding": [{"system": SNOMED, "code": bleeding}]},
                                  "subject": {"reference": f"Patient/{PATIENT_ID}"}, "onsetDateTime": at}]),
        "vitals": searchset(observations),
        "medicationRequests": searchset([{"resourceType": "MedicationRequest", "id": "warm-up-order",
                                          "status": "active", "intent": "order",
                                          "medicationCodeableConcept": {"coding": [{"system": RXNORM,
                                                                                    "code": warfarin["rxnorm_products"][0]}]},
                                          "subject": {"reference": f"Patient/{PATIENT_ID}"}, "authoredOn": at}]),
    }


def warm_up_app(app) -> None:
    """Warm every patient-view service of a `create_app` app (a gunicorn worker's, after it loaded the app). A
    failure is logged, never raised: a worker that cannot warm up still serves, cold."""
    from hooks import SERVICES
    parts = app.extensions["hemoptysis_cds"]
    for service in SERVICES.values():
        if service.hook != "patient-view":
            continue
        try:
            cards, seconds = warm_up(service, parts["links"], parts["formulary"])
        except Exception:  # noqa: BLE001 - serving cold is better than not serving
            log.exception("warm-up failed", extra={"fields": {"service": service.id}})
            continue
        log.info("warm-up", extra={"fields": {"service": service.id, "cards": cards, "ms": round(seconds * 1000, 1)}})


def warm_up(service: CdsService, links: LinkSettings, formulary: Formulary) -> tuple[int, float]:
    """Evaluate the synthetic patient once; the number of cards made and the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    pool = pool_from_values(synthetic_prefetch(now), patient_id=PATIENT_ID)
    evaluation = Evaluation(service.hook, {"patientId": PATIENT_ID, "userId": "Practitioner/warm-up"}, pool, now,
                            links, formulary)
    cards = answer_guard.enforce(service.evaluate(evaluation))
    return len(cards), time.perf_counter() - started
