"""CDS Hooks suggestions: each action carries a FHIR R4 order (fhir_orders), a hold of an active order, or the
removal of an unsigned draft. Every order suggestion names its orders.toml key (answer_guard.tag), so the answer
guard can tell which order it is. The uuids are given when the answer is assembled (builder.tidy)."""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from cql_equivalents.results import OrderLine

from .answer_guard import tag
from .fhir_orders import (OrderTarget, amount_text, medication_request, order_table, phased_request, service_request,
                          service_valid, valid)

SELECTION = "any"  # the orders of a card are independent of each other: the clinician may accept several


def suggestion(label: str, actions: list[dict], recommended: bool | None = None) -> dict:
    built: dict[str, Any] = {"label": label, "actions": actions}
    if recommended is not None:
        built["isRecommended"] = recommended
    return built


def create(resource: dict, description: str, label: str, recommended: bool | None = None,
           verdict: bool | None = None) -> dict | None:
    """An order suggestion; None when the resource is not valid FHIR R4 (`verdict`: valid(resource), known already)."""
    if not (valid(resource) if verdict is None else verdict):
        return None
    return suggestion(label, [{"type": "create", "description": description, "resource": resource}], recommended)


def order(key: str, target: OrderTarget, recommended: bool | None = None, detail: str = "") -> dict | None:
    """A ServiceRequest or fixed-dose MedicationRequest suggestion, by its orders.toml key (named on the
    suggestion, so the answer guard can tell which order it is). `detail`: an amount computed from the record,
    shown on a ServiceRequest (e.g. plasma mL from the weight)."""
    if key in order_table().services:
        return tag(order_service(key, target, recommended, detail), key)
    return tag(order_medication(key, target, recommended), key)


def order_service(key: str, target: OrderTarget, recommended: bool | None = None, detail: str = "") -> dict | None:
    row = order_table().services[key]
    resource = service_request(key, target, detail)
    return create(resource, f"Order: {row['text']}" + (f": {detail}" if detail else "") + f" ({row['source']})",
                  row["label"], recommended, service_valid(key, target, detail, resource))


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
            dose = f"{amount_text(line.quantity)} {row.get('unit_display', row['unit'])} {row['route']} once"
            resource = medication_request(line.order, target, line.quantity, dose)
        covers = f" (for {' and '.join(item.agents)})" if len(item.agents) > 1 else ""
        made.append(tag(create(resource, f"Order {line.agent}{covers}: {line.dose} ({line.source})",
                               f"{row['label']} {dose}", recommended), line.order))
    return [order for order in made if order]


def hold_active_order(resource: Mapping[str, Any], agent: str, why: str, recommended: bool | None = None) -> dict | None:
    """Put the patient's active antithrombotic MedicationRequest on hold: an update carrying the whole resource
    (CDS Hooks 2.0: an update holds the resource in its entirety), status on-hold with the reason in text."""
    held = json_copy(dict(resource))
    held["status"] = "on-hold"
    held["statusReason"] = {"text": why}
    if not valid(held, from_record=True):
        return None
    reference = f"MedicationRequest/{held.get('id')}"
    return suggestion(f"Hold {agent} ({reference})",
                      [{"type": "update", "description": f"Set {reference} on hold: {why}", "resource": held}],
                      recommended)


def json_copy(value: Any) -> Any:
    """A fresh copy of parsed JSON: every dict and list new, the immutable leaves (str, numbers, bool, None) shared,
    anything else deep-copied. Equal to copy.deepcopy's copy at ~1/3 of its cost (it keeps no memo of the objects
    seen: a dict met twice is copied twice, which parsed JSON never holds and JSON output cannot tell). A member
    that is a leaf is taken in the comprehension itself, without a call (most members are)."""
    kind = type(value)
    if kind is dict:
        return {key: member if type(member) in _JSON_LEAVES else json_copy(member) for key, member in value.items()}
    if kind is list:
        return [member if type(member) in _JSON_LEAVES else json_copy(member) for member in value]
    if kind in _JSON_LEAVES:
        return value
    return copy.deepcopy(value)


# the immutable leaves of parsed JSON, by exact type (a subclass, e.g. a str enum, is deep-copied as before)
_JSON_LEAVES = frozenset({str, int, float, bool, type(None)})


def delete_draft(reference: str, label: str, description: str, recommended: bool | None = None) -> dict:
    """Remove an unsigned draft order (order-sign): a delete action with a relative resourceId."""
    return suggestion(label, [{"type": "delete", "description": description, "resourceId": reference}], recommended)


def with_suggestions(suggestions: Iterable[dict | None]) -> dict:
    """builder.card(...) keyword arguments: suggestions and the selectionBehavior CDS Hooks requires with them."""
    kept = [item for item in suggestions if item]
    return {"suggestions": kept, "selectionBehavior": SELECTION} if kept else {}
