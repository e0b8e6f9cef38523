"""The FHIR R4 orders a card can propose, and their check.

Orders are ServiceRequest / MedicationRequest resources an EHR can place (status draft, intent proposal),
built from cql_equivalents/data/orders.toml and validated with fhir.resources.R4B before they are sent. A
dose that needs a value the record lacks (weight, INR) never becomes an order: the reversal plan's DoseLine
then has no quantity, and the card names what to obtain.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cql_equivalents.tables import RXNORM, SNOMED, load
from cql_equivalents.quick_frozen import quick_frozen

log = logging.getLogger("hemoptysis_cds")
UCUM = "http://unitsofmeasure.org"
_MODELS = {"ServiceRequest": ServiceRequest, "MedicationRequest": MedicationRequest}


@dataclass(frozen=True)
class OrderTable:
    services: dict[str, dict]
    medications: dict[str, dict]
    reason: dict
    override_sets: dict[str, list[dict]]
    offers: dict[str, dict]  # card topic -> what that card offers
    routes: dict[str, dict]  # route text -> its verified SNOMED CT code row


@cache
def order_table() -> OrderTable:
    orders, overrides = load("orders"), load("override_reasons")
    sets: dict[str, list[dict]] = {}
    for row in overrides["reason"]:
        for name in row["sets"]:
            sets.setdefault(name, []).append(
                {"system": overrides["system"], "code": row["code"], "display": row["display"]})
    return OrderTable(
        services={row["key"]: row for row in orders["service"]},
        medications={row["key"]: row for row in orders["medication"]},
        reason=orders["reason"], override_sets=sets,
        offers={row["card"]: row for row in orders["offer"]},
        routes={row["text"]: row for row in orders.get("route", ())})


@quick_frozen
@dataclass(frozen=True)
class OrderTarget:
    """Whom the orders are for, from the hook context; `reasons` are the bleeding records they treat."""

    patient_id: str
    encounter_id: str | None = None
    priority: str = "stat"
    reasons: tuple[str, ...] = ()
    weight_kg: float | None = None  # for an infusion rate the label gives per kg (4F-PCC)

    @classmethod
    def of(cls, context: Mapping[str, Any], priority: str = "stat", reasons: Iterable[str] = (),
           weight_kg: float | None = None) -> "OrderTarget":
        return cls(str(context["patientId"]), context.get("encounterId"), priority, tuple(reasons), weight_kg)


# ------------------------------------------------------------------------------------------ resources

@cache
def _reason_words() -> tuple[str, str, str]:
    """orders.toml [reason]'s system, code and display (the table is loaded once: read once, not per order)."""
    reason = order_table().reason
    return reason["system"], reason["code"], reason["display"]


def _common(target: OrderTarget, source: str) -> dict:
    system, code, display = _reason_words()
    common: dict[str, Any] = {
        "status": "draft", "intent": "proposal", "priority": target.priority,
        "subject": {"reference": f"Patient/{target.patient_id}"},
        "reasonCode": [{"coding": [{"system": system, "code": code, "display": display}], "text": display}],
        "note": [{"text": f"Proposed by hemoptysis-cds. Source: {source}"}],
    }
    if target.encounter_id:
        common["encounter"] = {"reference": f"Encounter/{target.encounter_id}"}
    if target.reasons:
        common["reasonReference"] = [{"reference": reference} for reference in target.reasons]
    return common


def _uncoded_note(row: dict, what: str) -> dict:
    """An order without a verified code says so in plain words (the EHR maps the text to its own orderable)."""
    return {"text": _uncoded_text(row.get("code_note", "none confirmed"), what)}


@cache
def _uncoded_text(code_note: str, what: str) -> str:
    """The uncoded note's words, made once per table note (orders.toml is loaded once; a few dozen rows)."""
    return f"Uncoded order: no verified {what} code ({code_note}); map this text to your orderable"


def service_request(key: str, target: OrderTarget, detail: str = "") -> dict:
    row = order_table().services[key]
    resource = {"resourceType": "ServiceRequest", **_common(target, row["source"]), "code": {"text": row["text"]}}
    resource["note"] = [*resource["note"], _uncoded_note(row, "SNOMED CT / LOINC")]
    if detail:  # an amount computed from the record (e.g. plasma mL from the weight)
        resource["note"] = [*resource["note"], {"text": detail}]
    return resource


def _route(text: str) -> dict:
    """The route as a CodeableConcept: a SNOMED CT coding only where orders.toml [[route]] verifies it."""
    row = order_table().routes.get(text)
    if row is None:
        return {"text": text}
    return {"coding": [{"system": SNOMED, "code": row["snomed"], "display": row["display"]}], "text": text}


def _rate(row: dict, target: OrderTarget) -> dict | None:
    """The label's infusion rate (per kg, capped), as a UCUM rateQuantity, when the row gives one and the weight
    is known (Kcentra US PI: 0.12 mL/kg/min, max 8.4 mL/min)."""
    if not row.get("rate_ml_per_kg_min") or target.weight_kg is None:
        return None
    rate = round(min(row["rate_ml_per_kg_min"] * target.weight_kg, row["max_rate_ml_min"]), 2)
    return {"value": rate, "unit": "mL/min", "system": UCUM, "code": "mL/min"}


def amount_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def medication_request(key: str, target: OrderTarget, quantity: float, dose_text: str = "") -> dict:
    row = order_table().medications[key]
    concept: dict[str, Any] = {"text": row["medication"]}
    if row.get("rxnorm"):
        concept["coding"] = [{"system": RXNORM, "code": row["rxnorm"], "display": row["medication"]}]
    unit_display, timing, dose_range = _medication_words(key)
    if dose_range:  # a dose range from the source (fibrinogen concentrate 3-4 g)
        dose_and_rate: dict[str, Any] = {"doseRange": {
            "low": {"value": row["dose_low"], "unit": unit_display, "system": UCUM, "code": row["unit"]},
            "high": {"value": row["dose_high"], "unit": unit_display, "system": UCUM, "code": row["unit"]}}}
    else:
        dose_and_rate = {"doseQuantity": {"value": quantity, "unit": unit_display, "system": UCUM, "code": row["unit"]}}
    rate = _rate(row, target)
    if rate:
        dose_and_rate["rateQuantity"] = rate
    dosage: dict[str, Any] = {
        # the amount written only when no dose text is given (a reversal order brings its own)
        "text": (dose_text or f"{dose_range or amount_text(quantity)} {unit_display} {row['route']}{timing}")
        + (f", at {rate['value']:g} mL/min (label rate)" if rate else ""),
        "route": _route(row["route"]),
        "doseAndRate": [dose_and_rate],
    }
    if row.get("per_day"):
        dosage["timing"] = {"repeat": {"frequency": row["per_day"], "period": 1, "periodUnit": "d"}}
        if row.get("days"):  # a course of a fixed number of days
            dosage["timing"]["repeat"]["count"] = row["per_day"] * row["days"]
    else:
        dosage["timing"] = {"repeat": {"count": 1}}
    resource = {"resourceType": "MedicationRequest", **_common(target, row["source"]),
                "medicationCodeableConcept": concept, "dosageInstruction": [dosage]}
    if not row.get("rxnorm"):
        resource["note"] = [*resource["note"], _uncoded_note(row, "RxNorm")]
    return resource


@cache
def _medication_words(key: str) -> tuple[str, str, str]:
    """A medication row's unit as shown, its timing words and its dose range ("" for a single dose), from the row
    alone: worked out once per process per row (orders.toml is loaded once), not per order."""
    row = order_table().medications[key]
    timing = (" once" if not row.get("per_day") else " once daily" if row["per_day"] == 1
              else f" {row['per_day']} times daily") + (f" for {row['days']} days" if row.get("days") else "")
    dose_range = (f"{amount_text(row['dose_low'])}-{amount_text(row['dose_high'])}"
                  if row.get("dose_low") is not None else "")
    return row.get("unit_display", row["unit"]), timing, dose_range


def phased_request(key: str, target: OrderTarget, bolus: float) -> tuple[dict, str]:
    """A bolus then an infusion, each a dosageInstruction with its label rate (andexanet: Andexxa US PI). The
    regimen row (reversal.toml [[andexanet_regimen]]) is the one whose bolus the reversal plan computed."""
    row = order_table().medications[key]
    regimen = next(r for r in load("reversal")[row["phased"]] if r["bolus_mg"] == bolus)
    infused = regimen["infusion_rate_mg_min"] * regimen["infusion_minutes"]

    def mg(value: float) -> dict:
        return {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}

    def per_min(value: float) -> dict:
        return {"value": value, "unit": "mg/min", "system": UCUM, "code": "mg/min"}

    text = (f"{amount_text(bolus)} mg IV bolus at {regimen['bolus_rate_mg_min']:g} mg/min, then "
            f"{regimen['infusion_rate_mg_min']:g} mg/min for up to {regimen['infusion_minutes']:g} min ({amount_text(infused)} mg)")
    dosages = [
        {"sequence": 1, "text": f"bolus {amount_text(bolus)} mg at {regimen['bolus_rate_mg_min']:g} mg/min",
         "route": _route(row["route"]), "timing": {"repeat": {"count": 1}},
         "doseAndRate": [{"doseQuantity": mg(bolus), "rateQuantity": per_min(regimen["bolus_rate_mg_min"])}]},
        {"sequence": 2, "text": f"then {regimen['infusion_rate_mg_min']:g} mg/min for up to {regimen['infusion_minutes']:g} min",
         "route": _route(row["route"]),
         "timing": {"repeat": {"count": 1, "duration": regimen["infusion_minutes"], "durationUnit": "min"}},
         "doseAndRate": [{"doseQuantity": mg(infused), "rateQuantity": per_min(regimen["infusion_rate_mg_min"])}]},
    ]
    resource = {"resourceType": "MedicationRequest", **_common(target, f"{row['source']}; {regimen['source']}"),
                "medicationCodeableConcept": {"text": row["medication"]}, "dosageInstruction": dosages}
    resource["note"] = [*resource["note"], _uncoded_note(row, "RxNorm")]
    return resource, text


# Validation costs ~0.35 ms per order. Orders differ between patients only in references whose ids the request
# models already checked (FHIR id pattern), so the verdict is remembered per shape with those ids blanked: the
# resource's other members as written (its key order included: another order is only a miss), beside which of the
# reference members (subject, encounter, reasonReference) it held and how many reasons. An order built here from
# the tables holds no identifier once its references are blanked, and its shape is the key; a record of the
# patient's (an active order put on hold) is remembered by a digest under a per-process random key, never as text.
# At most _VERDICTS_MAX verdicts; each step is one dict operation under the GIL, so threads share the memo safely
# (a lost race costs one validation).
_ABSENT = object()
_VERDICTS: dict[bytes, bool] = {}
_VERDICTS_MAX = 4096
_RECORD_KEY = hashlib.sha256(os.urandom(32))  # the keyed state a record's shape is digested from (copied per use)


def _shape(resource: dict, from_record: bool = False) -> bytes | None:
    """The memo's key, or None when the content is not plain JSON (e.g. an integer past 64 bits): never remembered."""
    blanked = resource.copy()  # C-level copy and pops: half the cost of a filtered dict, without sorting the keys
    held = (blanked.pop("subject", _ABSENT) is not _ABSENT, blanked.pop("encounter", _ABSENT) is not _ABSENT,
            blanked.pop("reasonReference", _ABSENT) is not _ABSENT)  # the reference members, unrolled
    try:  # which were held and the reason count beside the members, never among them: no member can pose as them
        shape = orjson.dumps([held, len(resource.get("reasonReference", ())), blanked])
    except (TypeError, ValueError):
        return None
    if not from_record:
        return shape
    digest = _RECORD_KEY.copy()
    digest.update(shape)
    return digest.digest()


def valid(resource: dict, from_record: bool = False) -> bool:
    """Validate with fhir.resources R4B; an order that is not valid FHIR R4 is never sent. `from_record`: the
    resource is the patient's own record (changed), not an order built here from the tables."""
    shape = _shape(resource, from_record)
    verdict = None if shape is None else _VERDICTS.get(shape)
    if verdict is None:
        try:
            _MODELS[resource["resourceType"]].model_validate(resource)
            verdict = True
        except ValidationError as error:
            # where and what kind only: the error's input values could carry patient identifiers
            first = error.errors()[0]
            log.error("a proposed %s failed FHIR R4 validation and was dropped: %s at %s", resource["resourceType"],
                      first.get("type"), ".".join(str(part) for part in first.get("loc", ())))
            verdict = False
        if shape is not None and len(_VERDICTS) < _VERDICTS_MAX:
            _VERDICTS[shape] = verdict
    return verdict


# A ServiceRequest built here (service_request) is a function of its orders.toml row, the target's priority, which
# reference members it holds and how many reasons, the detail text, and the references' ids: exactly what its shape
# key holds once the ids are blanked. Its verdict is remembered by those five parts (a tuple of table strings, one
# flag, a count and the detail the shape holds too), without writing the order out for its shape (~2 us of ~7 an
# order). Medication orders keep the shape: their floats would need exact keys (1 from 1.0, 0.0 from -0.0).
_SERVICE_VERDICTS: dict[tuple[str, str, bool, int, str], bool] = {}


def service_valid(key: str, target: OrderTarget, detail: str, resource: dict) -> bool:
    """valid(resource) for `resource = service_request(key, target, detail)`."""
    recipe = (key, target.priority, bool(target.encounter_id), len(target.reasons), detail)
    verdict = _SERVICE_VERDICTS.get(recipe)
    if verdict is None:
        verdict = valid(resource)
        if len(_SERVICE_VERDICTS) < _VERDICTS_MAX:
            _SERVICE_VERDICTS[recipe] = verdict
    return verdict
