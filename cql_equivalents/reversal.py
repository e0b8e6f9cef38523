"""Antithrombotic reversal: the agent, the lab that tells its effect, the reversal and its dose
(mirrors AntithromboticReversal.cql). Numbers come from data/reversal.toml; a dose that needs a value the
record lacks (weight, INR) is not guessed: the missing value is named.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .inputs import EngineInputs, MedicationUse, Observed
from .tables import tables

# Kcentra US PI: the dosing weight is capped at 100 kg.
PCC_MAX_DOSING_WEIGHT_KG = 100.0


@dataclass(frozen=True)
class DoseLine:
    agent: str
    dose: str
    note: str
    source: str
    needs: tuple[str, ...] = ()  # inputs the record lacks for this dose
    # For an order (hooks/suggestions.py): the orders.toml key and the computed amount in that row's unit;
    # quantity stays None when the dose cannot be computed from the record.
    order: str = ""
    quantity: float | None = None


@dataclass
class ReversalPlan:
    agent: str
    drug_class: str
    class_label: str
    uses: list[MedicationUse]
    lab_label: str
    lab: Observed | None
    lab_note: str
    steps: list[DoseLine] = field(default_factory=list)
    source: str = ""


def _fmt(number: float) -> str:
    return f"{number:,.0f}" if number >= 100 else f"{number:g}"


def _pcc_by_inr(step: dict, inputs: EngineInputs) -> DoseLine:
    inr, weight = inputs.observations.get("inr"), inputs.observations.get("body_weight")
    bands = tables().pcc_bands
    band_text = "; ".join(
        f"INR {b['inr_from']:g}-{min(b['inr_below'], 99):.3g}: {b['units_per_kg']} U/kg (max {_fmt(b['max_units'])} U)"
        for b in bands
    )
    if inr is None:
        return DoseLine(step["agent"], f"dose by INR band ({band_text}); INR not on record: obtain INR now",
                        step.get("note", ""), step["source"], ("inr",))
    band = next((b for b in bands if b["inr_from"] <= inr.value < b["inr_below"]), None)
    if band is None:
        return DoseLine(
            step["agent"],
            f"INR {inr.value:g} is below 2: the label gives no PCC dose below INR 2 (sources silent); "
            "discuss with haematology / pharmacy",
            step.get("note", ""), step["source"])
    per_kg = f"{band['units_per_kg']} U/kg (INR {inr.value:g}), max {_fmt(band['max_units'])} U"
    if weight is None:
        return DoseLine(step["agent"], f"{per_kg}; weight not on record: obtain weight to compute the dose",
                        step.get("note", ""), step["source"], ("body_weight",))
    dosing_weight = min(weight.value, PCC_MAX_DOSING_WEIGHT_KG)
    units = min(dosing_weight * band["units_per_kg"], band["max_units"])
    return DoseLine(step["agent"], f"{_fmt(units)} U IV = {per_kg} x {dosing_weight:g} kg",
                    step.get("note", ""), step["source"], order=step.get("order", ""), quantity=round(units))


def _per_kg(step: dict, inputs: EngineInputs) -> DoseLine:
    weight = inputs.observations.get("body_weight")
    unit, suffix = step["per_kg_unit"], step.get("dose_suffix", "")
    per_kg = f"{step['per_kg']:g} {unit}/kg"
    if weight is None:
        return DoseLine(step["agent"], f"{per_kg} {suffix}; weight not on record: obtain weight".replace("  ", " "),
                        step.get("note", ""), step["source"], ("body_weight",))
    amount = step["per_kg"] * weight.value
    return DoseLine(step["agent"], f"{_fmt(amount)} {unit} {suffix} = {per_kg} x {weight.value:g} kg"
                    .replace("  ", " "), step.get("note", ""), step["source"], order=step.get("order", ""),
                    quantity=round(amount) if amount >= 100 else round(amount, 1))


def _per_kg_range(step: dict, inputs: EngineInputs) -> DoseLine:
    weight = inputs.observations.get("body_weight")
    low, high, unit = step["per_kg_low"], step["per_kg_high"], step["per_kg_unit"]
    if weight is None:
        return DoseLine(step["agent"], f"{low}-{high} {unit}/kg; weight not on record: obtain weight",
                        step.get("note", ""), step["source"], ("body_weight",))
    return DoseLine(step["agent"], f"{_fmt(low * weight.value)}-{_fmt(high * weight.value)} {unit} "
                    f"= {low}-{high} {unit}/kg x {weight.value:g} kg", step.get("note", ""), step["source"])


def _andexanet(step: dict, inputs: EngineInputs, uses: list[MedicationUse]) -> DoseLine:
    table = tables()
    agent = uses[0].agent.name
    threshold = table.andexanet_thresholds.get(agent)
    if threshold is None:
        return DoseLine(step["agent"], f"no andexanet regimen is given for {agent} in the label", step.get("note", ""),
                        step["source"])
    # Andexxa US PI: strength > threshold or unknown, taken < 8 h ago or at an unknown time -> HIGH.
    # The record rarely carries the last dose's strength and time, so unknown -> HIGH, as the label says.
    high = table.andexanet_regimens["high"]["text"]
    low = table.andexanet_regimens["low"]["text"]
    return DoseLine(
        step["agent"],
        f"HIGH regimen when the last {agent} dose was > {threshold['low_max_mg']} mg or unknown and < "
        f"{threshold['hours']} h ago or at an unknown time: {high}. LOW regimen otherwise: {low}. "
        "Last dose strength and time: confirm with the patient / MAR",
        step.get("note", ""), step["source"])


def _fixed(step: dict, inputs: EngineInputs) -> DoseLine:
    return DoseLine(step["agent"], step["dose"], step.get("note", ""), step["source"], order=step.get("order", ""),
                    quantity=step.get("quantity"))


_RULES = {"pcc_by_inr": _pcc_by_inr, "per_kg": _per_kg, "per_kg_range": _per_kg_range, "fixed": _fixed}


def reversal_plans(inputs: EngineInputs) -> list[ReversalPlan]:
    """One plan per active agent (a statement and an order for the same drug make one plan)."""
    by_agent: dict[str, list[MedicationUse]] = {}
    for use in inputs.medications:
        by_agent.setdefault(use.agent.name, []).append(use)
    plans = []
    for agent_name, uses in by_agent.items():
        drug_class = uses[0].agent.drug_class
        spec = tables().reversal_classes.get(drug_class)
        if spec is None:
            continue
        plan = ReversalPlan(
            agent=agent_name, drug_class=drug_class, class_label=spec["label"], uses=uses,
            lab_label=spec["lab_label"], lab=inputs.observations.get(spec["lab"]),
            lab_note=spec.get("lab_note", ""), source=spec["source"])
        for step in spec.get("step", ()):
            rule = step["rule"]
            line = _andexanet(step, inputs, uses) if rule == "andexanet" else _RULES[rule](step, inputs)
            plan.steps.append(line)
        plans.append(plan)
    # anticoagulants before antiplatelets: they are the ones with a specific, dose-bearing reversal
    plans.sort(key=lambda plan: plan.drug_class == "antiplatelet")
    return plans
