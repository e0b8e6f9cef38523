"""The haemostatic plan of a bleeding patient, with or without an anticoagulant: which coagulation values are off
the targets of a major-bleeding guideline, what to give for each, and how DIC, HIT and sepsis change the plan
(data/haemostasis.toml, each row with its source)."""
from __future__ import annotations

import operator
from functools import cache

from .results import HaemostaticPlan, OffTarget, RuleApplied
from .model import EngineInputs
from .tables import load, tables

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# the values the plan shows (LOINC codes in observations.toml): platelets 777-3, fibrinogen 3255-7, INR 6301-6
# (VSAC set), PT 5902-2 / 5964-2, D-dimer FEU 48065-7, aPTT 14979-9 / 3173-2
SHOWN = ("platelets", "fibrinogen", "inr", "pt", "aptt", "d_dimer")


@cache
def haemostasis_table() -> dict:
    return load("haemostasis")


def platelet_target() -> float:
    return float(next(row["threshold"] for row in haemostasis_table()["target"] if row["key"] == "platelets"))


def _plasma_amount(row: dict, inputs: EngineInputs) -> tuple[str, tuple[str, ...]]:
    weight = inputs.observations.get("body_weight")
    if "per_kg_low" not in row:
        return "", ()
    low, high = row["per_kg_low"], row["per_kg_high"]
    if weight is None:
        return f"{low}-{high} mL/kg: weight not on record, obtain it", ("body_weight",)
    return (f"{low * weight.value:,.0f}-{high * weight.value:,.0f} mL = {low}-{high} mL/kg x {weight.value:g} kg", ())


def haemostatic_plan(inputs: EngineInputs, advised_against: dict[str, RuleApplied]) -> HaemostaticPlan | None:
    """None when nothing is off target and no DIC / HIT / sepsis-with-coagulopathy is on record."""
    table = haemostasis_table()
    plan = HaemostaticPlan(advised_against=dict(advised_against))
    for row in table["target"]:
        observed = inputs.observations.get(row["input"])
        if observed is None or not _OPS[row["op"]](observed.value, row["threshold"]):
            continue
        covering = [use for use in inputs.medications if use.agent.drug_class in row.get("skip_if_classes", ())]
        if row.get("skip_unless_advised_against") in advised_against:
            covering = []  # the reversal's own product is contraindicated: the component corrects the value
        if covering:  # the agent's own reversal treats this value: one plan (the reversal card), not two
            plan.skipped.append(f"{observed.label} {observed.value:g}: treated first by the reversal of "
                                f"{', '.join(dict.fromkeys(use.agent.name for use in covering))} (see the reversal card)")
            continue
        amount, needs = _plasma_amount(row, inputs)
        plan.off_target.append(OffTarget(row["key"], observed, row, amount, needs))
    for row in table["condition"]:
        facts = inputs.conditions_with_key(row["key"])
        if facts:
            plan.conditions.append((row, [fact.reference for fact in facts]))
    sepsis_only = [row for row, _ in plan.conditions if row["key"] == "sepsis"] == [row for row, _ in plan.conditions]
    if not plan.off_target and (not plan.conditions or (sepsis_only and not _any_abnormal(inputs))):
        return None
    return plan


def _any_abnormal(inputs: EngineInputs) -> bool:
    """Sepsis opens the plan only with a coagulation value off a target or an INR at the NCS reversal threshold
    (reversal.toml, the vitamin K antagonist's lab_threshold: 1.4, NCS/SCCM 2016 PMID 26714677)."""
    inr = inputs.observations.get("inr")
    return inr is not None and inr.value >= tables().reversal_classes["vka"]["lab_threshold"]
