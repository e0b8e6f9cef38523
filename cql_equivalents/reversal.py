"""Antithrombotic reversal: the agent, the lab that tells its effect, the reversal and its dose
(mirrors AntithromboticReversal.cql). Numbers come from data/reversal.toml; a dose that needs a value the
record lacks (weight, INR) is not guessed: the missing value is named.
Just over 300 lines on purpose: the dose rule of every reversal family (PCC by INR, per kg, andexanet, charcoal,
protamine by units or by enoxaparin dose, fixed, platelets) stands beside the plan that picks it, read as one.
"""
from __future__ import annotations

import re
from functools import cache

from .heparin_infusion import UNITS, heparin_in_window
from .readers.medications import ADMINISTRATION_STATUSES_ENDING
from .model import DoseGiven, EngineInputs, MedicationUse
from .tables import tables
from .results import DoseLine, PlanContext, ReversalPlan
from .durations import HOUR
from .quick_frozen import replaced

# "Eliquis 5 MG Oral Tablet" -> 5: the product strength, used only when no administered dose is recorded.
_STRENGTH_MG = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)
_UNITS = UNITS


# Values a dose may need that are not observation inputs (the card names them under "Obtain").
_NEED_LABELS = {"last_dose_time": "time of the last dose", "last_dose_mg": "strength of the last dose (mg)",
                "last_dose_units": "last dose in anti-Xa units", "heparin_given": "heparin given in the last 3 h"}


def need_label(name: str) -> str:
    spec = tables().observation_inputs.get(name)
    return spec.label if spec else _NEED_LABELS.get(name, name.replace("_", " "))


def _fmt(number: float) -> str:
    return f"{number:,.0f}" if number >= 100 else f"{number:g}"


def _band_label(band: dict) -> str:
    """'INR 2-<4', 'INR 4-6', 'INR > 6' from the table's half-open bounds (6.0000001 stands for 'above 6')."""
    low, below = band["inr_from"], band["inr_below"]
    if below >= 100:
        return f"INR > {round(low, 2):g}"
    if round(below, 2) != below:
        return f"INR {round(low, 2):g}-{round(below, 2):g}"
    return f"INR {round(low, 2):g}-<{below:g}"


@cache
def _band_text() -> str:
    """Every INR band and its dose, as a card says them when the INR is not on record (from the tables: once)."""
    return "; ".join(f"{_band_label(b)}: {b['units_per_kg']} U/kg (max {_fmt(b['max_units'])} U)"
                     for b in tables().pcc_bands)


def _pcc_by_inr(step: dict, inputs: EngineInputs) -> DoseLine:
    inr, weight = inputs.observations.get("inr"), inputs.observations.get("body_weight")
    bands = tables().pcc_bands
    if inr is None:
        return DoseLine(step["agent"], f"dose by INR band ({_band_text()}); INR not on record: obtain INR now",
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
    dosing_weight, weight_text = dosing_weight_kg(step, weight.value)
    units = min(dosing_weight * band["units_per_kg"], band["max_units"], step.get("max_amount", band["max_units"]))
    return DoseLine(step["agent"], f"{_fmt(units)} U IV = {per_kg} x {dosing_weight:g} kg{weight_text}",
                    step.get("note", ""), step["source"], order=step.get("order", ""), quantity=round(units))


def dosing_weight_kg(step: dict, weight_kg: float) -> tuple[float, str]:
    """The weight a per-kg dose uses: the table's `max_dosing_weight_kg` caps it (Kcentra US PI: 100 kg)."""
    cap = step.get("max_dosing_weight_kg")
    if cap is not None and weight_kg > cap:
        return float(cap), f" (dosing weight capped at {cap:g} kg; {weight_kg:g} kg on record)"
    return weight_kg, ""


def _per_kg(step: dict, inputs: EngineInputs) -> DoseLine:
    weight = inputs.observations.get("body_weight")
    unit, suffix = step["per_kg_unit"], step.get("dose_suffix", "")
    per_kg = f"{step['per_kg']:g} {unit}/kg"
    if weight is None:
        return DoseLine(step["agent"], f"{per_kg} {suffix}; weight not on record: obtain weight".replace("  ", " "),
                        step.get("note", ""), step["source"], ("body_weight",))
    dosing_weight, weight_text = dosing_weight_kg(step, weight.value)
    amount = step["per_kg"] * dosing_weight
    cap_text = ""
    if step.get("max_amount") is not None:
        cap_text = f", max {_fmt(step['max_amount'])} {unit}"
        if amount > step["max_amount"]:
            amount, cap_text = float(step["max_amount"]), cap_text + " (capped)"
    return DoseLine(step["agent"], f"{_fmt(amount)} {unit} {suffix} = {per_kg} x {dosing_weight:g} kg{weight_text}{cap_text}"
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


def last_dose(inputs: EngineInputs, agent_name: str) -> DoseGiven | None:
    """The newest recorded administration of the agent (MedicationAdministration), if any."""
    given = [dose for dose in inputs.administrations if dose.agent.name == agent_name and dose.at is not None
             and dose.status not in ADMINISTRATION_STATUSES_ENDING]
    return max(given, key=lambda dose: dose.at) if given else None


def hours_since(inputs: EngineInputs, dose: DoseGiven | None) -> float | None:
    return None if dose is None or dose.at is None else round((inputs.now - dose.at) / HOUR, 2)


def _last_dose_mg(dose: DoseGiven | None, uses: list[MedicationUse]) -> tuple[float | None, str]:
    if dose is not None and dose.dose is not None and dose.dose_unit.lower() == "mg":
        return dose.dose, f"administered dose (`{dose.reference}`)"
    for use in uses:
        match = _STRENGTH_MG.search(use.text)
        if match:
            return float(match.group(1)), f"product strength in '{use.text}' (confirm the number of tablets)"
    return None, ""


def andexanet_regimen(agent: str, dose_mg: float | None, hours: float | None) -> str | None:
    """Andexxa US PI: last dose >= 8 h ago -> LOW; otherwise (< 8 h or time unknown) <= threshold mg -> LOW,
    above it or unknown -> HIGH. None when the label gives no regimen for the agent (edoxaban)."""
    threshold = tables().andexanet_thresholds.get(agent)
    if threshold is None:
        return None
    if hours is not None and hours >= threshold["hours"]:
        return "low"
    if dose_mg is not None and dose_mg <= threshold["low_max_mg"]:
        return "low"
    return "high"


def _andexanet(step: dict, inputs: EngineInputs, uses: list[MedicationUse]) -> DoseLine:
    table = tables()
    agent = uses[0].agent.name
    dose = last_dose(inputs, agent)
    hours = hours_since(inputs, dose)
    dose_mg, dose_from = _last_dose_mg(dose, uses)
    regimen = andexanet_regimen(agent, dose_mg, hours)
    if regimen is None:
        return DoseLine(step["agent"], f"no andexanet regimen is given for {agent} in the label", step.get("note", ""),
                        step["source"])
    threshold = table.andexanet_thresholds[agent]
    when = f"last dose {hours:g} h ago (`{dose.reference}`)" if hours is not None else "time of last dose not recorded"
    strength = f"{dose_mg:g} mg from the {dose_from}" if dose_mg is not None else "strength of last dose not recorded"
    rule = (f"label: last dose >= {threshold['hours']} h ago -> LOW; < {threshold['hours']} h or unknown time: "
            f"<= {threshold['low_max_mg']} mg -> LOW, above or unknown -> HIGH")
    needs = tuple(name for name, known in (("last_dose_time", hours is not None), ("last_dose_mg", dose_mg is not None))
                  if not known and regimen == "high")
    # the order carries the bolus (mg); suggestions builds the bolus + infusion phases from the regimen row
    return DoseLine(step["agent"], f"{regimen.upper()} regimen: {table.andexanet_regimens[regimen]['text']} "
                                   f"({when}; {strength}; {rule})", step.get("note", ""), step["source"], needs,
                    order=step.get("order", ""), quantity=table.andexanet_regimens[regimen].get("bolus_mg"))


def _charcoal(step: dict, inputs: EngineInputs, uses: list[MedicationUse]) -> DoseLine:
    dose = last_dose(inputs, uses[0].agent.name)
    hours = hours_since(inputs, dose)
    limit = step["within_hours"]
    if hours is None:
        text = f"{step['dose']} if the last dose was <= {limit} h ago (time of last dose not recorded: ask)"
    elif hours <= limit:
        text = f"{step['dose']} now: last dose {hours:g} h ago (<= {limit} h, `{dose.reference}`)"
    else:
        text = f"not indicated: last dose {hours:g} h ago (> {limit} h, `{dose.reference}`)"
    return DoseLine(step["agent"], text, step.get("note", ""), step["source"])


def heparin_units_in_window(inputs: EngineInputs, agent: str, window_hours: float) -> tuple[float, list[str]]:
    """Units of heparin given in the last `window_hours` (cql_equivalents/heparin_infusion.py) and their records."""
    exposure = heparin_in_window(inputs, agent, window_hours)
    return exposure.units, exposure.references


def _protamine_by_units(step: dict, inputs: EngineInputs, uses: list[MedicationUse]) -> DoseLine:
    agent = uses[0].agent.name
    per_100, cap = step["mg_per_100_units"], step["max_mg"]
    if step["window_hours"] == 0:  # LMWH other than enoxaparin: the window is 3-5 half-lives, not a fixed time
        dose = last_dose(inputs, agent)
        if dose is None or dose.dose is None or dose.dose_unit not in _UNITS:
            return DoseLine(step["agent"], step["dose"] + "; last dose (anti-Xa units) not recorded: ask",
                            step.get("note", ""), step["source"], ("last_dose_units",))
        mg = round(min(dose.dose / 100 * per_100, cap), 1)
        return DoseLine(step["agent"], f"{mg:g} mg IV = {per_100:g} mg per 100 anti-Xa U x {dose.dose:g} U "
                                       f"(`{dose.reference}`, {hours_since(inputs, dose):g} h ago), max {cap} mg; "
                                       "only within 3-5 half-lives of the dose", step.get("note", ""), step["source"],
                        order=step.get("order", ""), quantity=mg)
    window = step["window_hours"]
    exposure = heparin_in_window(inputs, agent, window)
    if exposure.units <= 0:
        seen = f" ({'; '.join(exposure.notes)})" if exposure.notes else ""
        return DoseLine(step["agent"], f"{per_100:g} mg per 100 U of heparin given in the last {window} h, max {cap} mg; "
                                       f"no heparin administration recorded in that window{seen}: no protamine dose "
                                       "from the record; count any heparin given at the bedside",
                        step.get("note", ""), step["source"],
                        tuple(exposure.needs) or (() if exposure.notes else ("heparin_given",)),
                        none_due=bool(exposure.notes) and not exposure.needs)
    mg = min(round(exposure.units / 100 * per_100, 1), cap)
    capped = " (capped)" if mg == cap else ""
    return DoseLine(step["agent"], f"{mg:g} mg IV{capped} = {per_100:g} mg per 100 U x {exposure.units:g} U given in the "
                                   f"last {window} h ({exposure.text()}), max {cap} mg", step.get("note", ""),
                    step["source"], tuple(exposure.needs), order=step.get("order", ""), quantity=mg)


def _protamine_enoxaparin(step: dict, inputs: EngineInputs, uses: list[MedicationUse]) -> DoseLine:
    dose = last_dose(inputs, uses[0].agent.name)
    hours = hours_since(inputs, dose)
    bands = sorted(step["band"], key=lambda band: band["hours_upto"])
    band_text = "; ".join(f"<= {b['hours_upto']} h: {b['mg_per_mg']:g} mg per mg" for b in bands)
    rule = f"{band_text}; > {bands[-1]['hours_upto']} h: of minimal use; max {step['max_mg']} mg"
    if hours is None:
        return DoseLine(step["agent"], f"{rule}; time of the last enoxaparin dose not recorded: ask",
                        step.get("note", ""), step["source"], ("last_dose_time",))
    band = next((b for b in bands if hours <= b["hours_upto"]), None)
    if band is None:
        return DoseLine(step["agent"], f"last dose {hours:g} h ago (> {bands[-1]['hours_upto']} h): protamine is of "
                                       f"minimal use (`{dose.reference}`)", step.get("note", ""), step["source"])
    if dose.dose is None or dose.dose_unit.lower() != "mg":
        return DoseLine(step["agent"], f"{band['mg_per_mg']:g} mg per mg of the last dose ({hours:g} h ago, "
                                       f"`{dose.reference}`), max {step['max_mg']} mg; dose in mg not recorded",
                        step.get("note", ""), step["source"], ("last_dose_mg",))
    mg = round(min(dose.dose * band["mg_per_mg"], step["max_mg"]), 1)
    return DoseLine(step["agent"], f"{mg:g} mg IV = {band['mg_per_mg']:g} mg per mg x {dose.dose:g} mg given "
                                   f"{hours:g} h ago (`{dose.reference}`), max {step['max_mg']} mg",
                    step.get("note", ""), step["source"], order=step.get("order", ""), quantity=mg)


def _fixed(step: dict, inputs: EngineInputs) -> DoseLine:
    return DoseLine(step["agent"], step["dose"], step.get("note", ""), step["source"], order=step.get("order", ""),
                    quantity=step.get("quantity"))


_RULES = {"pcc_by_inr": _pcc_by_inr, "per_kg": _per_kg, "per_kg_range": _per_kg_range, "fixed": _fixed}
# rules that also need the agent's uses (last dose time and strength)
_USE_RULES = {"andexanet": _andexanet, "charcoal_by_time": _charcoal, "protamine_by_units": _protamine_by_units,
              "protamine_enoxaparin": _protamine_enoxaparin}


def _platelets_for_antiplatelet(step: dict, inputs: EngineInputs, context: "PlanContext") -> DoseLine:
    """PATCH is an intracranial-haemorrhage trial without procedures: its "no routine platelets" is never said
    when a procedure is expected, nor when the count itself is below the bleeding target."""
    platelets = inputs.observations.get("platelets")
    target = context.platelet_target
    if platelets is not None and target is not None and platelets.value < target:
        text = f"platelets {platelets.value:g} x10^9/L (`{platelets.reference}`) < {target:g}: {step['low_count']}"
    elif context.procedure_expected:
        text = step["procedure"]
    else:
        text = step["no_procedure"]
    return DoseLine(step["agent"], text, step.get("note", ""), step["source"])


WITHHELD = "**not given:"  # how a withheld step's dose text begins (cards test it)
_CONTEXT_RULES = {"platelets_for_antiplatelet": _platelets_for_antiplatelet}


def _withheld(line: DoseLine, rule) -> DoseLine:
    return DoseLine(line.agent, f"{WITHHELD} {rule.kind}** ({', '.join(rule.because)}): {rule.text}", "",
                    rule.source, product=line.product)


def reversal_plans(inputs: EngineInputs, context: PlanContext | None = None) -> list[ReversalPlan]:
    """One plan per active agent (a statement and an order for the same drug make one plan), by urgency."""
    context = context or PlanContext()
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
            lab_label=spec["lab_label"],
            lab=inputs.observations.get(spec["lab"]) or inputs.observations.get(spec.get("lab_fallback", "")),
            lab_note=spec.get("lab_note", ""), source=spec["source"], urgency=spec.get("urgency", 99))
        for step in spec.get("step", ()):
            rule = step["rule"]
            if rule in _CONTEXT_RULES:
                line = _CONTEXT_RULES[rule](step, inputs, context)
            elif rule in _USE_RULES:
                line = _USE_RULES[rule](step, inputs, uses)
            else:
                line = _RULES[rule](step, inputs)
            line = replaced(line, product=step.get("product", ""))
            for product, words in step.get("if_withheld", {}).items():
                if product in context.advised_against:  # the step's words follow the product ruled out
                    line = replaced(line, **{key: words[key] for key in ("agent", "dose", "note") if key in words})
            if line.product in context.advised_against:  # e.g. 4F-PCC in DIC / HIT: never offered, never pointed to
                line = _withheld(line, context.advised_against[line.product])
            plan.steps.append(line)
        plans.append(plan)
    plans.sort(key=lambda plan: plan.urgency)
    return plans
