"""Respiratory and haemodynamic support: the compromise that normal-looking numbers hide (issue 13 item 1).

Seed 004 pivot 2 and Ibrahim (Eur Respir J 2008): massive hemoptysis is defined by its consequences. A patient
whose SpO2 is 95 % on FiO2 0.6, who is on a ventilator, or whose SBP is 110 mmHg on norepinephrine, has that
compromise: the support is the sign. Rules and codes: data/support.toml (each row with its source); numeric
settings come from the observation inputs (FiO2 3150-0, O2 flow 3151-8), ventilation procedures from the
findings table ('mechanical_ventilation'), vasopressors from calculators.toml and support.toml. The records
are read by readers/support.py; this module says what they amount to.
"""
from __future__ import annotations

import operator
from datetime import datetime, timedelta

from .model import EngineInputs, Observed, SupportInUse
from .tables import load
from .durations import hours, minutes

_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


# ------------------------------------------------------------------------------------------ reading

def support_in_use(inputs: EngineInputs) -> list[SupportInUse]:
    """Everything the record shows the patient is on now: settings over their cut-off, ventilation procedures,
    devices, vasopressors (SOFA ones via findings, the others via support.toml)."""
    found: list[SupportInUse] = []
    for row in load("support")["setting"]:
        observed = inputs.extreme(row["input"], "high")
        if observed is not None and _OPERATORS[row["op"]](observed.value, row["value"]):
            unit = observed.unit
            found.append(SupportInUse(row["key"], "respiratory", row["label"],
                                      f"{observed.label} {observed.value:g} {unit}".strip(), observed.reference,
                                      observed.at, True, observed.note, row["source"]))
    ventilation = inputs.finding("mechanical_ventilation")
    if ventilation is not None:
        row = next(r for r in load("support")["device"] if r["key"] == "invasive_ventilation")
        found.append(SupportInUse(row["key"], "respiratory", row["label"], ventilation.label, ventilation.reference,
                                  ventilation.at, True, ventilation.matched_by, row["source"]))
    window = hours(load("support")["vasoactive_window"]["hours"])
    for use in inputs.vasopressors:
        if not use.running and (use.at is None or inputs.now - use.at > window):
            continue  # SOFA reads the day's vasopressors; compromise of this episode is the last 6 h
        found.append(SupportInUse(f"vasoactive_{use.name}", "haemodynamic", f"{use.name} (vasopressor)",
                                  f"{use.name}" + (f" {use.rate:g} ug/kg/min" if use.rate is not None else ""),
                                  use.reference, use.at, True, use.matched_by,
                                  "seed 004 pivot 2 (haemodynamic compromise); SOFA cardiovascular 3-4 (Vincent 1996)"))
    found += inputs.support
    unique: dict[tuple[str, str], SupportInUse] = {}
    for item in found:
        unique.setdefault((item.key, item.reference), item)
    return list(unique.values())


def compromise_support(inputs: EngineInputs) -> list[SupportInUse]:
    return [item for item in support_in_use(inputs) if item.compromise]


def baseline_keys(inputs: EngineInputs) -> set[str]:
    """Support keys that describe the patient's chronic baseline (home oxygen)."""
    return {item.key for item in inputs.support if item.kind == "baseline"}


def on_support_at(inputs: EngineInputs, at: datetime | None,
                  in_use: list[SupportInUse] | None = None) -> tuple[str, ...]:
    """The support in use when a value was taken: charted within the tolerance before it, or any time after
    it within the episode (the patient was on it by then), or with no time (a running order). `in_use`:
    support_in_use(inputs), when the caller has it already."""
    return _support_at(at, _oxygen_on_record(inputs), support_in_use(inputs) if in_use is None else in_use)


def _oxygen_on_record(inputs: EngineInputs) -> tuple[timedelta, float, list[Observed | None]]:
    """What on_support_at compares every value's time with: the tolerance, room air's FiO2, the oxygen values."""
    tolerance = minutes(load("support")["window"]["on_support_tolerance_minutes"])
    room_air = load("calculators")["news2"]["room_air_fio2"]  # an FiO2 above room air is oxygen given
    return tolerance, room_air, [inputs.extreme(name, "high") for name in ("fio2", "o2_flow")]


def _support_at(at: datetime | None, oxygen_on_record: tuple[timedelta, float, list[Observed | None]],
                in_use: list[SupportInUse]) -> tuple[str, ...]:
    tolerance, room_air, oxygen = oxygen_on_record
    labels = []
    for observed in oxygen:
        if observed is not None and (observed.input != "fio2" or observed.value > room_air) and observed.value > 0 and (
                at is None or observed.at is None or abs(observed.at - at) <= tolerance):
            labels.append(f"{observed.label} {observed.value:g} {observed.unit}")
    for item in in_use:
        if item.kind == "baseline" or item.key in ("fio2_high", "o2_flow_high"):
            continue
        if at is None or item.at is None or item.at - tolerance <= at:
            labels.append(item.detail)
    return tuple(dict.fromkeys(labels))


def drivers(triggers: list, inputs: EngineInputs, in_use: list[SupportInUse] | None = None) -> list[Observed]:
    """What drove the decision, from the fired triggers' evidence. `in_use`: support_in_use(inputs), when the
    caller has it already (severity.classify does)."""
    found: list[Observed] = []
    if not triggers:
        return found
    if in_use is None:
        in_use = support_in_use(inputs)  # once for every driver, not once each
    oxygen_on_record = _oxygen_on_record(inputs)  # so are the tolerance and the oxygen values
    support_at: dict[datetime | None, tuple[str, ...]] = {}  # values taken at one time (a BP panel) share it
    for trigger in triggers:
        for evidence in trigger.evidence:
            newest = inputs.observations.get(evidence.input)
            labels = support_at.get(evidence.at)
            if labels is None:
                labels = support_at[evidence.at] = _support_at(evidence.at, oxygen_on_record, in_use)
            found.append(Observed(evidence.input, evidence.label, evidence.value, evidence.unit, evidence.at,
                                  evidence.reference, evidence.note, labels,
                                  newest if newest is not None and newest.reference != evidence.reference else None))
    return found
