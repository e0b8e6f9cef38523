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

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cql_equivalents.reversal import ReversalPlan
from cql_equivalents.tables import RXNORM, load

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
        offers={row["card"]: row for row in orders["offer"]})


@dataclass(frozen=True)
class OrderTarget:
    """Whom the orders are for, from the hook context; `reasons` are the bleeding records they treat."""

    patient_id: str
    encounter_id: str | None = None
    priority: str = "stat"
    reasons: tuple[str, ...] = ()

    @classmethod
    def of(cls, context: Mapping[str, Any], priority: str = "stat", reasons: Iterable[str] = ()) -> "OrderTarget":
        return cls(str(context["patientId"]), context.get("encounterId"), priority, tuple(reasons))


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


def service_request(key: str, target: OrderTarget) -> dict:
    row = order_table().services[key]
    return {"resourceType": "ServiceRequest", **_common(target, row["source"]), "code": {"text": row["text"]}}


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
    dosage: dict[str, Any] = {
        "text": dose_text or f"{_amount(quantity)} {unit_display} {row['route']}{timing}",
        "route": {"text": row["route"]},
        "doseAndRate": [{"doseQuantity": {"value": quantity, "unit": unit_display, "system": UCUM,
                                          "code": row["unit"]}}],
    }
    if row.get("per_day"):
        dosage["timing"] = {"repeat": {"frequency": row["per_day"], "period": 1, "periodUnit": "d"}}
        if row.get("days"):  # a course of a fixed number of days
            dosage["timing"]["repeat"]["count"] = row["per_day"] * row["days"]
    else:
        dosage["timing"] = {"repeat": {"count": 1}}
    return {"resourceType": "MedicationRequest", **_common(target, row["source"]),
            "medicationCodeableConcept": concept, "dosageInstruction": [dosage]}


# Validation costs ~0.35 ms per order. Orders differ between patients only in references whose ids the request
# models already checked (FHIR id pattern), so the verdict is remembered per shape with those ids blanked.
_REFERENCE_KEYS = ("subject", "encounter", "reasonReference")
_VERDICTS: dict[str, bool] = {}
_VERDICTS_MAX = 4096


def _shape(resource: dict) -> str:
    blanked = {key: value for key, value in resource.items() if key not in _REFERENCE_KEYS}
    blanked["_references"] = [key for key in _REFERENCE_KEYS if key in resource]
    blanked["_reasons"] = len(resource.get("reasonReference", ()))
    return json.dumps(blanked, sort_keys=True)


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


def order_service(key: str, target: OrderTarget, recommended: bool | None = None) -> dict | None:
    row = order_table().services[key]
    return create(service_request(key, target), f"Order: {row['text']} ({row['source']})", row["label"], recommended)


def order_medication(key: str, target: OrderTarget, recommended: bool | None = None) -> dict | None:
    """A fixed-dose medication order (the dose is in orders.toml)."""
    row = order_table().medications[key]
    resource = medication_request(key, target, row["dose"])
    return create(resource, f"Order: {resource['dosageInstruction'][0]['text']} ({row['source']})", row["label"],
                  recommended)


def reversal_orders(plan: ReversalPlan, target: OrderTarget, recommended: bool | None = None) -> list[dict]:
    """One order per reversal step whose dose the record lets us compute; the rest stay text in the card."""
    made = []
    for line in plan.steps:
        if not line.order or line.quantity is None or line.needs:
            continue
        row = order_table().medications[line.order]
        dose = f"{_amount(line.quantity)} {row.get('unit_display', row['unit'])} {row['route']} once"
        resource = medication_request(line.order, target, line.quantity, dose)
        label = f"{row['label']} {dose}"
        made.append(tag(create(resource, f"Order {line.agent}: {line.dose} ({line.source})", label, recommended),
                        line.order))
    return [item for item in made if item]


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
            "url": f"{links.public_base_url}/docs/engine.html#the-12-phases", "type": "absolute"}
