"""CDS Hooks suggestions whose actions carry FHIR R4 orders, override reasons, and SMART links.

Orders are ServiceRequest / MedicationRequest resources an EHR can place (status draft, intent proposal),
built from cql_equivalents/data/orders.toml and validated with fhir.resources.R4B before they are sent. A
dose that needs a value the record lacks (weight, INR) never becomes an order: the reversal plan's DoseLine
then has no quantity, and the card names what to obtain.
"""
from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cql_equivalents.patient_reversal import OrderLine
from cql_equivalents.tables import RXNORM, SNOMED, load

from .answer_guard import tag
from .service import LinkSettings

log = logging.getLogger("hemoptysis_cds")
UCUM = "http://unitsofmeasure.org"
SELECTION = "any"  # the orders of a card are independent of each other: the clinician may accept several
_MODELS = {"ServiceRequest": ServiceRequest, "MedicationRequest": MedicationRequest}


@dataclass(frozen=True)
class OrderTable:
    services: dict[str, dict]
    medications: dict[str, dict]
    reason: dict
    override_system: str
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
        reason=orders["reason"], override_system=overrides["system"], override_sets=sets,
        offers={row["card"]: row for row in orders["offer"]},
        routes={row["text"]: row for row in orders.get("route", ())})


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

def _common(target: OrderTarget, source: str) -> dict:
    reason = order_table().reason
    common: dict[str, Any] = {
        "status": "draft", "intent": "proposal", "priority": target.priority,
        "subject": {"reference": f"Patient/{target.patient_id}"},
        "reasonCode": [{"coding": [{"system": reason["system"], "code": reason["code"], "display": reason["display"]}],
                        "text": reason["display"]}],
        "note": [{"text": f"Proposed by hemoptysis-cds. Source: {source}"}],
    }
    if target.encounter_id:
        common["encounter"] = {"reference": f"Encounter/{target.encounter_id}"}
    if target.reasons:
        common["reasonReference"] = [{"reference": reference} for reference in target.reasons]
    return common


def _uncoded_note(row: dict, what: str) -> dict:
    """An order without a verified code says so in plain words (the EHR maps the text to its own orderable)."""
    return {"text": f"Uncoded order: no verified {what} code ({row.get('code_note', 'none confirmed')}); "
                    "map this text to your orderable"}


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


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def medication_request(key: str, target: OrderTarget, quantity: float, dose_text: str = "") -> dict:
    row = order_table().medications[key]
    concept: dict[str, Any] = {"text": row["medication"]}
    if row.get("rxnorm"):
        concept["coding"] = [{"system": RXNORM, "code": row["rxnorm"], "display": row["medication"]}]
    unit_display = row.get("unit_display", row["unit"])
    timing = (" once" if not row.get("per_day") else " once daily" if row["per_day"] == 1
              else f" {row['per_day']} times daily") + (f" for {row['days']} days" if row.get("days") else "")
    if row.get("dose_low") is not None:  # a dose range from the source (fibrinogen concentrate 3-4 g)
        amount = f"{_amount(row['dose_low'])}-{_amount(row['dose_high'])}"
        dose_and_rate: dict[str, Any] = {"doseRange": {
            "low": {"value": row["dose_low"], "unit": unit_display, "system": UCUM, "code": row["unit"]},
            "high": {"value": row["dose_high"], "unit": unit_display, "system": UCUM, "code": row["unit"]}}}
    else:
        amount = _amount(quantity)
        dose_and_rate = {"doseQuantity": {"value": quantity, "unit": unit_display, "system": UCUM, "code": row["unit"]}}
    rate = _rate(row, target)
    if rate:
        dose_and_rate["rateQuantity"] = rate
    dosage: dict[str, Any] = {
        "text": (dose_text or f"{amount} {unit_display} {row['route']}{timing}")
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

    text = (f"{_amount(bolus)} mg IV bolus at {regimen['bolus_rate_mg_min']:g} mg/min, then "
            f"{regimen['infusion_rate_mg_min']:g} mg/min for up to {regimen['infusion_minutes']:g} min ({_amount(infused)} mg)")
    dosages = [
        {"sequence": 1, "text": f"bolus {_amount(bolus)} mg at {regimen['bolus_rate_mg_min']:g} mg/min",
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
# models already checked (FHIR id pattern), so the verdict is remembered per shape with those ids blanked.
_REFERENCE_KEYS = ("subject", "encounter", "reasonReference")
_VERDICTS: dict[bytes, bool] = {}
_VERDICTS_MAX = 4096


def _shape(resource: dict) -> bytes:
    blanked = {key: value for key, value in resource.items() if key not in _REFERENCE_KEYS}
    blanked["_references"] = [key for key in _REFERENCE_KEYS if key in resource]
    blanked["_reasons"] = len(resource.get("reasonReference", ()))
    return orjson.dumps(blanked, option=orjson.OPT_SORT_KEYS)  # a key only: C-level, ~10x the stdlib's speed


def valid(resource: dict) -> bool:
    """Validate with fhir.resources R4B; an order that is not valid FHIR R4 is never sent."""
    shape = _shape(resource)
    if shape in _VERDICTS:
        verdict = _VERDICTS[shape]
    else:
        try:
            _MODELS[resource["resourceType"]].model_validate(resource)
            verdict = True
        except ValidationError as error:
            # where and what kind only: the error's input values could carry patient identifiers
            first = error.errors()[0]
            log.error("a proposed %s failed FHIR R4 validation and was dropped: %s at %s", resource["resourceType"],
                      first.get("type"), ".".join(str(part) for part in first.get("loc", ())))
            verdict = False
        if len(_VERDICTS) < _VERDICTS_MAX:
            _VERDICTS[shape] = verdict
    return verdict


# ------------------------------------------------------------------------------------------ suggestions

def suggestion(label: str, actions: list[dict], recommended: bool | None = None) -> dict:
    built: dict[str, Any] = {"label": label, "uuid": str(uuid.uuid4()), "actions": actions}
    if recommended is not None:
        built["isRecommended"] = recommended
    return built


def create(resource: dict, description: str, label: str, recommended: bool | None = None) -> dict | None:
    if not valid(resource):
        return None
    return suggestion(label, [{"type": "create", "description": description, "resource": resource}], recommended)


def order(key: str, target: OrderTarget, recommended: bool | None = None) -> dict | None:
    """A ServiceRequest or fixed-dose MedicationRequest suggestion, by its orders.toml key (named on the
    suggestion, so the answer guard can tell which order it is)."""
    if key in order_table().services:
        return tag(order_service(key, target, recommended), key)
    return tag(order_medication(key, target, recommended), key)


def order_service(key: str, target: OrderTarget, recommended: bool | None = None, detail: str = "") -> dict | None:
    row = order_table().services[key]
    return create(service_request(key, target, detail), f"Order: {row['text']}" + (f": {detail}" if detail else "")
                  + f" ({row['source']})", row["label"], recommended)


def order_medication(key: str, target: OrderTarget, recommended: bool | None = None) -> dict | None:
    """A fixed-dose medication order (the dose is in orders.toml)."""
    row = order_table().medications[key]
    resource = medication_request(key, target, row.get("dose", row.get("dose_low")))
    return create(resource, f"Order: {resource['dosageInstruction'][0]['text']} ({row['source']})", row["label"],
                  recommended)


def reversal_orders(orders: Iterable[OrderLine], target: OrderTarget, recommended: bool | None = None) -> list[dict]:
    """One order per product of the patient's reversal plan (patient_reversal.py made each product once)."""
    made = []
    for item in orders:
        line = item.line
        row = order_table().medications[line.order]
        if row.get("phased"):
            resource, dose = phased_request(line.order, target, line.quantity)
        else:
            dose = f"{_amount(line.quantity)} {row.get('unit_display', row['unit'])} {row['route']} once"
            resource = medication_request(line.order, target, line.quantity, dose)
        covers = f" (for {' and '.join(item.agents)})" if len(item.agents) > 1 else ""
        made.append(tag(create(resource, f"Order {line.agent}{covers}: {line.dose} ({line.source})",
                               f"{row['label']} {dose}", recommended), line.order))
    return [order for order in made if order]


def hold_active_order(resource: Mapping[str, Any], agent: str, why: str, recommended: bool | None = None) -> dict | None:
    """Put the patient's active antithrombotic MedicationRequest on hold: an update carrying the whole resource
    (CDS Hooks 2.0: an update holds the resource in its entirety), status on-hold with the reason in text."""
    held = copy.deepcopy(dict(resource))
    held["status"] = "on-hold"
    held["statusReason"] = {"text": why}
    if not valid(held):
        return None
    reference = f"MedicationRequest/{held.get('id')}"
    return suggestion(f"Hold {agent} ({reference})",
                      [{"type": "update", "description": f"Set {reference} on hold: {why}", "resource": held}],
                      recommended)


def delete_draft(reference: str, label: str, description: str, recommended: bool | None = None) -> dict:
    """Remove an unsigned draft order (order-sign / order-select): a delete action with a relative resourceId."""
    return suggestion(label, [{"type": "delete", "description": description, "resourceId": reference}], recommended)


def with_suggestions(suggestions: Iterable[dict | None]) -> dict:
    """kit.card(...) keyword arguments: suggestions and the selectionBehavior CDS Hooks requires with them."""
    kept = [item for item in suggestions if item]
    return {"suggestions": kept, "selectionBehavior": SELECTION} if kept else {}


# ------------------------------------------------------------------------------------------ overrides & links

def override_reasons(kind: str) -> list[dict]:
    return [dict(reason) for reason in order_table().override_sets[kind]]


def smart_link(links: LinkSettings, topic: str) -> list[dict]:
    """A SMART app link when one is configured; appContext tells the app which card launched it."""
    if not links.smart_app_url:
        return []
    context = {"engine": "pulm.massive-hemoptysis.v1", "topic": topic}
    return [{"label": links.smart_app_label, "url": links.smart_app_url, "type": "smart",
             "appContext": json.dumps(context, separators=(",", ":"))}]


def dossier_link(links: LinkSettings) -> dict:
    return {"label": "Massive hemoptysis engine dossier", "url": f"{links.public_base_url}/docs/engine",
            "type": "absolute"}


def phases_link(links: LinkSettings) -> dict:
    """How the engine decides (its phases, entry points and calculators): documentation, no patient data."""
    return {"label": "How the engine decides: phases and calculators",
            "url": f"{links.public_base_url}/docs/engine#the-12-phases", "type": "absolute"}
