"""Massive vs non-massive hemoptysis, physiology over volume (mirrors MassiveHemoptysisSeverity.cql).

Seed 004 pivot 2: gas-exchange or haemodynamic compromise makes hemoptysis life-threatening whatever the
volume (Charya 2021 PMID 34527355). The cut-offs are the NEWS2 red band and the shock index (triggers.toml),
since no hemoptysis-specific cut-off exists (clinical.md B1). Volume surrogates are secondary triggers,
read only when no physiologic trigger fired. Terrain and cause modifiers (seed 000) raise a non-massive bleed
to "severe"; they never make it massive. The FRAME gate runs first: another blood source routes away.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from enum import Enum

from .frame import FrameResult, Verdict, frame_gate
from .inputs import ConditionFact, EngineInputs, Observed
from .tables import load, tables

PHYSIOLOGY_INPUTS = ("spo2", "respiratory_rate", "systolic_bp", "heart_rate")
_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


class Level(str, Enum):
    NO_HEMOPTYSIS = "no-hemoptysis"
    NOT_ADULT = "not-adult"  # the engine's thresholds and doses are adult ones
    ROUTED_AWAY = "routed-away"  # FRAME gate: hematemesis / pseudohemoptysis
    SOURCE_UNCLEAR = "source-unclear"  # FRAME gate: evidence both ways
    MASSIVE = "massive"
    SEVERE_BY_MODIFIER = "severe-by-modifier"  # non-massive, raised by terrain or cause (seed 000)
    NON_MASSIVE = "non-massive"
    UNDETERMINED = "undetermined"  # hemoptysis with no physiology on record: massive not excluded


@dataclass(frozen=True)
class TriggerFired:
    key: str
    kind: str  # physiology | volume
    label: str
    value: float
    evidence: tuple[Observed, ...]
    source: str


@dataclass(frozen=True)
class ModifierFired:
    key: str
    kind: str  # terrain | cause
    label: str
    references: tuple[str, ...]
    source: str


@dataclass
class Severity:
    level: Level
    bleeding: list[ConditionFact] = field(default_factory=list)
    triggers: list[TriggerFired] = field(default_factory=list)
    missing_physiology: list[str] = field(default_factory=list)
    frame: FrameResult | None = None
    modifiers: list[ModifierFired] = field(default_factory=list)
    volume_triggers_below: list[str] = field(default_factory=list)  # volume readings present, no surrogate met

    @property
    def fired_by(self) -> str:
        """Which kind of trigger made the bleed massive: physiology, volume, or '' (not massive)."""
        return self.triggers[0].kind if self.level is Level.MASSIVE and self.triggers else ""


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


def fired_triggers(inputs: EngineInputs, kind: str = "physiology") -> list[TriggerFired]:
    derived = {"shock_index": shock_index(inputs), "volume_single": _volume_value(inputs, "single"),
               "volume_hourly": _volume_value(inputs, "hourly"), "volume_daily": _volume_value(inputs, "daily")}
    fired = []
    for trigger in tables().triggers:
        if trigger["kind"] != kind:
            continue
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
            fired.append(TriggerFired(trigger["key"], kind, trigger["label"], value, evidence, trigger["source"]))
    return fired


def severity_modifiers(inputs: EngineInputs) -> list[ModifierFired]:
    fired = []
    for row in load("triggers").get("modifier", ()):
        references = [fact.reference for fact in inputs.conditions_with_key(*row["condition_keys"])]
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
    physiology = fired_triggers(inputs, "physiology")
    if frame.verdict is Verdict.ROUTE_AWAY:
        return Severity(Level.ROUTED_AWAY, bleeding, physiology, missing, frame)
    if frame.verdict is Verdict.UNCLEAR:
        return Severity(Level.SOURCE_UNCLEAR, bleeding, physiology, missing, frame)
    modifiers = severity_modifiers(inputs)
    if physiology:
        return Severity(Level.MASSIVE, bleeding, physiology, missing, frame, modifiers)
    volume = fired_triggers(inputs, "volume")
    if volume:
        return Severity(Level.MASSIVE, bleeding, volume, missing, frame, modifiers)
    below = [f"{reading.ml:g} mL ({reading.kind})" for reading in inputs.volumes.values()]
    if all(name in missing for name in ("spo2", "respiratory_rate", "systolic_bp")):
        return Severity(Level.UNDETERMINED, bleeding, [], missing, frame, modifiers, below)
    if modifiers:
        return Severity(Level.SEVERE_BY_MODIFIER, bleeding, [], missing, frame, modifiers, below)
    return Severity(Level.NON_MASSIVE, bleeding, [], missing, frame, modifiers, below)
