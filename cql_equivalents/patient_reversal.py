"""One patient, one reversal plan: the per-agent plans (reversal.py) ordered by urgency, with each product
ordered once (desmopressin once for two antiplatelets; one 4F-PCC dose for two anticoagulants), and dual
antiplatelet therapy after a recent coronary stent flagged for cardiology before anything is stopped."""
from __future__ import annotations

from datetime import timedelta
from functools import cache

from .model import EngineInputs
from .results import DoseLine, OrderLine, PatientReversal, RecentStent, ReversalPlan
from .tables import load


@cache
def _stent_rule() -> dict:
    return load("reversal")["stent_dapt"]


def _orders(plans: list[ReversalPlan]) -> list[OrderLine]:
    """Orderable lines (a dose computed from the record), one per orders.toml key: the largest computed dose
    wins (each is already within its label maximum), and the order names every agent it covers."""
    chosen: dict[str, DoseLine] = {}
    agents: dict[str, list[str]] = {}
    for plan in plans:
        for line in plan.steps:
            if not line.order or line.quantity is None or line.needs:
                continue
            agents.setdefault(line.order, []).append(plan.agent)
            if line.order not in chosen or line.quantity > chosen[line.order].quantity:
                chosen[line.order] = line
    return [OrderLine(line, tuple(dict.fromkeys(agents[key]))) for key, line in chosen.items()]


def recent_stent(inputs: EngineInputs, plans: list[ReversalPlan]) -> RecentStent | None:
    """A coronary stent within the DAPT window, with an antiplatelet on record (data/reversal.toml stent_dapt)."""
    rule = _stent_rule()
    antiplatelets = [plan for plan in plans if plan.drug_class == "antiplatelet"]
    if not antiplatelets:
        return None
    found = [finding for finding in inputs.findings if finding.key == rule["finding"] and not finding.stale]
    if not found:
        return None
    newest = max(found, key=lambda finding: finding.at or inputs.now - timedelta(days=10_000))
    days = None if newest.at is None else int((inputs.now - newest.at) / timedelta(days=1))
    return RecentStent(newest.reference, newest.label, days, rule)


def patient_reversal(inputs: EngineInputs, plans: list[ReversalPlan]) -> PatientReversal | None:
    if not plans:
        return None
    ordered = sorted(plans, key=lambda plan: plan.urgency)
    return PatientReversal(ordered, _orders(ordered), recent_stent(inputs, ordered))
