"""Massive vs non-massive hemoptysis, physiology over volume (mirrors MassiveHemoptysisSeverity.cql).

Seed 004 pivot 2: gas-exchange or haemodynamic compromise makes hemoptysis life-threatening whatever the
volume (Charya 2021 PMID 34527355). The cut-offs are the NEWS2 red band and the shock index (triggers.toml),
since no hemoptysis-specific cut-off exists (clinical.md B1). Volume surrogates are secondary triggers,
read only when no physiologic trigger fired. Terrain and cause modifiers (seed 000) raise a non-massive bleed
to "severe"; they never make it massive. The FRAME gate runs first: another blood source routes away.
"""
from __future__ import annotations

import operator
from functools import cache

from .frame import frame_gate
from .results import Level, ModifierFired, Severity, TriggerFired, Verdict
from .model import EngineInputs, Observed, SupportInUse
from .support import baseline_keys, compromise_support, drivers, support_in_use
from .tables import load, tables

PHYSIOLOGY_INPUTS = ("spo2", "respiratory_rate", "systolic_bp", "heart_rate")
_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def shock_index(inputs: EngineInputs) -> tuple[float, tuple[Observed, ...]] | None:
    """HR / SBP (Allgower 1967), when both are on record."""
    heart_rate, systolic = inputs.observations.get("heart_rate"), inputs.observations.get("systolic_bp")
    if heart_rate is None or systolic is None or systolic.value <= 0:
        return None
    return round(heart_rate.value / systolic.value, 2), (heart_rate, systolic)


def _volume_value(inputs: EngineInputs, kind: str) -> tuple[float, tuple[Observed, ...]] | None:
    reading = inputs.volumes.get(kind)
    if reading is None:
        return None
    unit = {"single": "mL", "hourly": "mL/h", "daily": "mL/24 h"}[kind]
    observed = Observed(f"volume_{kind}", "Hemoptysis volume", reading.ml, unit, reading.at, reading.reference,
                        reading.note)
    return reading.ml, (observed,)


@cache
def _overrides_of() -> dict[str, tuple[dict, ...]]:
    """triggers.toml threshold_override rows by the trigger they change, in table order: grouped once per process
    (every trigger row looked through every override row on every call)."""
    grouped: dict[str, list[dict]] = {}
    for row in load("triggers").get("threshold_override", ()):
        grouped.setdefault(row["trigger"], []).append(row)
    return {key: tuple(rows) for key, rows in grouped.items()}


def adjusted_trigger(trigger: dict, inputs: EngineInputs) -> tuple[dict, str]:
    """The trigger row judged against the patient's terrain (triggers.toml threshold_override): CF volume, the
    NEWS2 Scale 2 SpO2 of chronic respiratory failure. Returns the row to apply and why it was changed ("")."""
    for row in _overrides_of().get(trigger["key"], ()):
        facts = inputs.conditions_with_key(*row["condition_keys"])
        baseline = baseline_keys(inputs) & set(row["support_keys"])
        if facts or baseline:
            why = ", ".join([fact.reference for fact in facts] + [k.replace("_", " ") for k in sorted(baseline)])
            return {**trigger, "op": row["op"], "value": row["value"], "label": row["label"],
                    "source": row["source"]}, f"{row['label']} (because of {why})"
    return trigger, ""


def fired_triggers(inputs: EngineInputs, kind: str = "physiology", adjusted: list[str] | None = None) -> list[TriggerFired]:
    derived = {"shock_index": shock_index(inputs), "volume_single": _volume_value(inputs, "single"),
               "volume_hourly": _volume_value(inputs, "hourly"), "volume_daily": _volume_value(inputs, "daily")}
    fired = []
    for row in tables().triggers:
        if row["kind"] != kind:
            continue
        trigger, why = adjusted_trigger(row, inputs)
        if why and adjusted is not None:
            adjusted.append(why)
        name = trigger["input"]
        if name in derived:
            if derived[name] is None:
                continue
            value, evidence = derived[name]
        else:
            # the worst value of the episode in the trigger's direction, not only the newest (support.toml)
            observed = inputs.extreme(name, "low" if trigger["op"] in ("<=", "<") else "high")
            if observed is None:
                continue
            value, evidence = observed.value, (observed,)
        if _OPERATORS[trigger["op"]](value, trigger["value"]):
            fired.append(TriggerFired(trigger["key"], kind, trigger["label"], value, evidence, trigger["source"]))
    return fired


def severity_modifiers(inputs: EngineInputs) -> list[ModifierFired]:
    fired = []
    baseline = {item.key: item for item in inputs.support if item.kind == "baseline"}
    for row in load("triggers").get("modifier", ()):
        references = [fact.reference for fact in inputs.conditions_with_key(*row["condition_keys"])]
        references += [baseline[key].reference for key in row.get("support_keys", ()) if key in baseline]
        if row["cue"]:
            references += [f.reference for f in inputs.findings if row["cue"] in f.cues and not f.stale]
        if references:
            fired.append(ModifierFired(row["key"], row["kind"], row["label"], tuple(dict.fromkeys(references)),
                                       row["source"]))
    return fired


def classify(inputs: EngineInputs) -> Severity:
    frame = frame_gate(inputs)
    bleeding = inputs.conditions_with_role("bleeding")
    missing = [name for name in PHYSIOLOGY_INPUTS if name not in inputs.observations]
    if frame.verdict is Verdict.NONE:
        return Severity(Level.NO_HEMOPTYSIS, missing_physiology=missing, frame=frame)
    if inputs.age_years is not None and inputs.age_years < load("triggers")["scope"]["adult_from_years"]:
        return Severity(Level.NOT_ADULT, bleeding, [], missing, frame)
    adjusted: list[str] = []
    support = support_in_use(inputs)
    # physiology, and the support that holds it (seed 004 pivot 2; Ibrahim ERJ 2008): both are compromise
    physiology = fired_triggers(inputs, "physiology", adjusted) + support_triggers(inputs, support)

    def result(level: Level, triggers: list[TriggerFired], modifiers=(), below=()) -> Severity:
        return Severity(level, bleeding, triggers, missing, frame, list(modifiers), list(below),
                        drivers(triggers, inputs, support), support, list(dict.fromkeys(adjusted)))

    if frame.verdict is Verdict.ROUTE_AWAY:
        return result(Level.ROUTED_AWAY, physiology)
    if frame.verdict is Verdict.UNCLEAR:
        return result(Level.SOURCE_UNCLEAR, physiology)
    modifiers = severity_modifiers(inputs)
    if physiology:
        return result(Level.MASSIVE, physiology, modifiers)
    volume = fired_triggers(inputs, "volume", adjusted)
    if volume:
        return result(Level.MASSIVE, volume, modifiers)
    below = [f"{reading.ml:g} mL ({reading.kind})" for reading in inputs.volumes.values()]
    if all(name in missing for name in ("spo2", "respiratory_rate", "systolic_bp")) and not support:
        return result(Level.UNDETERMINED, [], modifiers, below)
    if modifiers:
        return result(Level.SEVERE_BY_MODIFIER, [], modifiers, below)
    return result(Level.NON_MASSIVE, [], modifiers, below)


def support_triggers(inputs: EngineInputs, in_use: list[SupportInUse] | None = None) -> list[TriggerFired]:
    """Each support in use that is compromise, as a trigger (support.toml). `in_use`: support_in_use(inputs),
    when the caller has it already."""
    compromise = compromise_support(inputs) if in_use is None else [item for item in in_use if item.compromise]
    return [TriggerFired(item.key, "support", f"on {item.label}", 1.0, (item.as_observed(),), item.source)
            for item in compromise]
