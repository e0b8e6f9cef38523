"""Massive vs non-massive hemoptysis, physiology over volume (mirrors MassiveHemoptysisSeverity.cql).

Seed 004 pivot 2: gas-exchange or haemodynamic compromise makes hemoptysis life-threatening whatever the
volume (Charya 2021 PMID 34527355). The cut-offs are the NEWS2 red band and the shock index (triggers.toml),
since no hemoptysis-specific cut-off exists (clinical.md B1).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from enum import Enum

from .inputs import ConditionFact, EngineInputs, Observed
from .tables import tables

PHYSIOLOGY_INPUTS = ("spo2", "respiratory_rate", "systolic_bp", "heart_rate")
_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


class Level(str, Enum):
    NO_HEMOPTYSIS = "no-hemoptysis"
    MASSIVE = "massive"
    NON_MASSIVE = "non-massive"
    UNDETERMINED = "undetermined"  # hemoptysis with no physiology on record: massive not excluded


@dataclass(frozen=True)
class TriggerFired:
    key: str
    label: str
    value: float
    evidence: tuple[Observed, ...]
    source: str


@dataclass
class Severity:
    level: Level
    bleeding: list[ConditionFact] = field(default_factory=list)
    triggers: list[TriggerFired] = field(default_factory=list)
    missing_physiology: list[str] = field(default_factory=list)


def shock_index(inputs: EngineInputs) -> tuple[float, tuple[Observed, ...]] | None:
    """HR / SBP (Allgower 1967), when both are on record."""
    heart_rate, systolic = inputs.observations.get("heart_rate"), inputs.observations.get("systolic_bp")
    if heart_rate is None or systolic is None or systolic.value <= 0:
        return None
    return round(heart_rate.value / systolic.value, 2), (heart_rate, systolic)


def fired_triggers(inputs: EngineInputs) -> list[TriggerFired]:
    derived = {"shock_index": shock_index(inputs)}
    fired = []
    for trigger in tables().triggers:
        name = trigger["input"]
        if name in derived:
            if derived[name] is None:
                continue
            value, evidence = derived[name]
        else:
            observed = inputs.observations.get(name)
            if observed is None:
                continue
            value, evidence = observed.value, (observed,)
        if _OPERATORS[trigger["op"]](value, trigger["value"]):
            fired.append(TriggerFired(trigger["key"], trigger["label"], value, evidence, trigger["source"]))
    return fired


def classify(inputs: EngineInputs) -> Severity:
    bleeding = inputs.conditions_with_role("bleeding")
    missing = [name for name in PHYSIOLOGY_INPUTS if name not in inputs.observations]
    if not bleeding:
        return Severity(Level.NO_HEMOPTYSIS, missing_physiology=missing)
    triggers = fired_triggers(inputs)
    if triggers:
        return Severity(Level.MASSIVE, bleeding, triggers, missing)
    if all(name in missing for name in ("spo2", "respiratory_rate", "systolic_bp")):
        return Severity(Level.UNDETERMINED, bleeding, [], missing)
    return Severity(Level.NON_MASSIVE, bleeding, [], missing)
