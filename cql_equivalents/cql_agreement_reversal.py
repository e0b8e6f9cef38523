"""The reversal part of the CQL agreement (called by cql_agreement.py): the plan per agent, the patient's orders,
whether a reversal agent is due and the haemostatic plan, in one comparable shape for both engines, and the rules that
compare them. The dose rounding rule is written once here (`dose_tolerance`)."""
from __future__ import annotations

from typing import Any, Callable

from .agreement_numbers import OBSERVATION_TOLERANCE, numbers_equal


def python_results(inputs) -> dict[str, Any]:
    """The reversal plan per agent and the patient's orders (engine.assess: the same context the cards get)."""
    from .engine import assess
    from .reversal import hours_since, last_dose
    from .reversal_due import reversal_agent_due
    from .tables import tables
    assessment = assess(inputs)
    against = assessment.advised_against or {}
    plans = {}
    for plan in assessment.reversal:
        spec = tables().reversal_classes[plan.drug_class]
        lab = next((name for name in (spec["lab"], spec.get("lab_fallback", "")) if name in inputs.observations), None)
        steps = [{"rule": row["rule"], "agent": line.agent, "product": line.product, "order": line.order,
                  "quantity": line.quantity, "needs": sorted(line.needs), "noneDue": line.none_due,
                  "withheldBy": against[line.product].key if line.product in against else None}
                 for row, line in zip(spec.get("step", ()), plan.steps)]
        plans[plan.agent] = {"drugClass": plan.drug_class, "urgency": plan.urgency, "lab": lab,
                             "labValue": plan.lab.value if plan.lab else None,
                             "lastDoseHours": hours_since(inputs, last_dose(inputs, plan.agent)), "steps": steps}
    orders = {order.line.order: {"quantity": order.line.quantity, "agents": sorted(order.agents)}
              for order in (assessment.patient_reversal.orders if assessment.patient_reversal else ())}
    return {"Reversal Plans": plans, "Reversal Orders": orders, "Haemostatic Plan": _haemostasis(assessment.haemostasis),
            "Reversal Agent Due": reversal_agent_due(assessment.severity)}


def _haemostasis(plan) -> dict | None:
    if plan is None:
        return None
    return {"offTarget": {item.key: item.observed.value for item in plan.off_target},
            "needs": sorted({need for item in plan.off_target for need in item.needs}),
            "conditions": sorted(row["key"] for row, _ in plan.conditions), "orders": sorted(plan.orders),
            "alternatives": sorted(plan.alternatives), "notRecommended": sorted(plan.not_recommended)}


def _cql_haemostasis(plan: dict | None) -> dict | None:
    if plan is None:
        return None
    return {"offTarget": {item["key"]: item["value"] for item in plan["offTarget"] or ()},
            **{key: sorted(set(plan[key] or ())) for key in ("needs", "conditions", "orders", "alternatives", "notRecommended")}}


def _haemostasis_equal(left: dict | None, right: dict | None) -> bool:
    if left is None or right is None:
        return left is None and right is None
    values_equal = sorted(left["offTarget"]) == sorted(right["offTarget"]) and all(
        numbers_equal(value, right["offTarget"][key], OBSERVATION_TOLERANCE) for key, value in left["offTarget"].items())
    return values_equal and all(left[key] == right[key] for key in left if key != "offTarget")


def cql_results(raw: dict[str, Any]) -> dict[str, Any]:
    plans = {p["agent"]: {"drugClass": p["drugClass"], "urgency": p["urgency"], "lab": p["lab"], "labValue": p["labValue"],
                          "lastDoseHours": p["lastDoseHours"],
                          "steps": [{**step, "needs": sorted(step["needs"] or ())} for step in p["steps"] or ()]}
             for p in raw["Reversal Plans"] or ()}
    orders = {o["order"]: {"quantity": o["quantity"], "agents": sorted(o["agents"] or ())} for o in raw["Reversal Orders"] or ()}
    return {"Reversal Plans": plans, "Reversal Orders": orders, "Haemostatic Plan": _cql_haemostasis(raw["Haemostatic Plan"]),
            "Reversal Agent Due": raw["Reversal Agent Due"]}


def dose_tolerance(rule: str, quantity: float | None) -> float:
    """One unit of the last decimal a dose keeps (reversal.py): 4F-PCC by INR band and any dose from 100 up are
    whole units, the others one decimal (Python rounds half to even, CQL half up)."""
    return 1.0 if rule == "pcc_by_inr" or (quantity is not None and abs(quantity) >= 100) else 0.1


def _steps_equal(left: list[dict], right: list[dict]) -> bool:
    if len(left) != len(right):
        return False
    for a, b in zip(left, right):
        if {k: v for k, v in a.items() if k != "quantity"} != {k: v for k, v in b.items() if k != "quantity"}:
            return False
        if not numbers_equal(a["quantity"], b["quantity"], dose_tolerance(a["rule"], a["quantity"])):
            return False
    return True


def _plans_equal(left: dict, right: dict) -> bool:
    return (left["drugClass"] == right["drugClass"] and left["urgency"] == right["urgency"] and left["lab"] == right["lab"]
            and numbers_equal(left["labValue"], right["labValue"], OBSERVATION_TOLERANCE)
            and numbers_equal(left["lastDoseHours"], right["lastDoseHours"], HOURS_TOLERANCE)
            and _steps_equal(left["steps"], right["steps"]))


HOURS_TOLERANCE = 0.01  # hours since the last dose keep 2 decimals (reversal.hours_since)


def compare(python: dict[str, Any], cql: dict[str, Any], check: Callable[[str, bool, Any, Any], None],
            not_here: set[str]) -> None:
    """Every reversal result, through cql_agreement's `check`; due only where the level and triggers are compared."""
    pp, cp = python["Reversal Plans"], cql["Reversal Plans"]
    check("Reversal Agents", sorted(pp) == sorted(cp), sorted(pp), sorted(cp))
    for agent in sorted(set(pp) & set(cp)):
        check(f"reversal plan {agent}", _plans_equal(pp[agent], cp[agent]), pp[agent], cp[agent])
    po_, co_ = python["Reversal Orders"], cql["Reversal Orders"]
    check("Reversal Order Keys", sorted(po_) == sorted(co_), sorted(po_), sorted(co_))
    for key in sorted(set(po_) & set(co_)):
        equal = po_[key]["agents"] == co_[key]["agents"] and numbers_equal(
            po_[key]["quantity"], co_[key]["quantity"], dose_tolerance("", po_[key]["quantity"]))
        check(f"reversal order {key}", equal, po_[key], co_[key])
    if not {"Severity Level", "Severity Triggers"} & not_here:  # due follows the level and its triggers
        check("Reversal Agent Due", python["Reversal Agent Due"] == cql["Reversal Agent Due"],
              python["Reversal Agent Due"], cql["Reversal Agent Due"])
    check("Haemostatic Plan", _haemostasis_equal(python["Haemostatic Plan"], cql["Haemostatic Plan"]),
          python["Haemostatic Plan"], cql["Haemostatic Plan"])
