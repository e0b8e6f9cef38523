"""The dossier's inputs, entry points and 12-phase report (mirrors PhaseReport.cql).

For each of the 17 inputs: present, stale, or missing, with the records behind it. For each entry point:
whether it is met. For each phase (FRAME ... FOLLOWUP): which of its inputs are present, which are missing,
and whether its advance condition is met, not met, or cannot be read from FHIR data.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from .results import EntryPoint, InputStatus, Level, Localization, MET, MISSING, NOT_MET, NOT_READABLE, PRESENT, PhaseReport, PhaseStatus, PopulationMatch, STALE, Severity, Verdict
from .imaging_causes import imaging_causes
from .model import EngineInputs
from .tables import load, tables



@cache
def _chronic_engines() -> frozenset[str]:
    """The engines whose patients enter by the red flag from a chronic engine (dossier.toml entry point)."""
    row = next(row for row in _dossier()["entry_point"] if row["detect"] == "chronic_engine_patient")
    return frozenset(row["engines"])


@cache
def _dossier() -> dict:
    return load("dossier")


# ------------------------------------------------------------------------------------------ inputs

def _observation_status(inputs: EngineInputs, names: list[str]) -> tuple[str, list[str], list[str]]:
    present = [f"{o.label} {o.value:g} (`{o.reference}`)" for n in names if (o := inputs.observations.get(n))]
    stale = [f"{o.label} {o.value:g} stale (`{o.reference}`)" for n in names if (o := inputs.stale.get(n))]
    missing = [tables().observation_inputs[n].label for n in names if n not in inputs.observations]
    if present:
        return PRESENT, present, missing
    return (STALE, stale, missing) if stale else (MISSING, [], missing)


def _finding_status(inputs: EngineInputs, keys: list[str]) -> tuple[str, list[str], list[str]]:
    current = [f for f in inputs.findings if f.key in keys and not f.stale]
    old = [f for f in inputs.findings if f.key in keys and f.stale]
    describe = lambda f: f"{f.label} {f.result} (`{f.reference}`)"  # noqa: E731
    if current:
        return PRESENT, [describe(f) for f in current], []
    return (STALE, [describe(f) + " stale" for f in old], []) if old else (MISSING, [], [])


def _other_status(inputs: EngineInputs, resolver: str) -> tuple[str, list[str], list[str]]:
    from .frame import blood_source_evidence
    if resolver == "volume":
        lines = [f"{r.ml:g} mL ({r.kind}) (`{r.reference}`)" for r in inputs.volumes.values()]
    elif resolver == "blood_source":
        lines = [f"{e.label} -> {e.points_to} (`{e.reference}`)" for e in blood_source_evidence(inputs)]
    elif resolver == "causes":
        lines = [f"{f.concept.label} (`{f.reference}`)" for f in inputs.conditions if f.concept.role in ("cause", "terrain")]
    elif resolver == "antithrombotics":
        lines = [f"{u.agent.name} (`{u.reference}`)" for u in inputs.medications]
    else:  # vasculitis
        lines = [f"{f.concept.label} (`{f.reference}`)" for f in inputs.conditions
                 if f.concept.population == "dah_vasculitis"]
    return (PRESENT if lines else MISSING), lines, []


def input_statuses(inputs: EngineInputs) -> dict[str, InputStatus]:
    statuses = {}
    for row in _dossier()["input"]:
        resolve = row["resolve"]
        if "observations" in resolve:
            status, evidence, partial = _observation_status(inputs, resolve["observations"])
        elif "findings" in resolve:
            status, evidence, partial = _finding_status(inputs, resolve["findings"])
        else:
            status, evidence, partial = _other_status(inputs, resolve["other"])
        statuses[row["name"]] = InputStatus(row["name"], row["required"], status, evidence,
                                            partial if status == PRESENT else [])
    return statuses


# ------------------------------------------------------------------------------------------ entry points

@dataclass
class _Context:
    inputs: EngineInputs
    severity: Severity
    localization: Localization
    populations: list[PopulationMatch]
    statuses: dict[str, InputStatus]


def _detect_expectorated_blood(c: _Context) -> list[str]:
    return [e.label for e in (c.severity.frame.hemoptysis if c.severity.frame else [])]


def _detect_physiologic_compromise(c: _Context) -> list[str]:
    return [t.label for t in c.severity.triggers if t.kind == "physiology"]


def _detect_chronic_engine_patient(c: _Context) -> list[str]:
    return [f"{f.concept.label} -> {f.concept.sibling}" for f in c.inputs.conditions_with_role("cause")
            if f.concept.sibling in _chronic_engines()]


def _detect_recent_procedure(c: _Context) -> list[str]:
    return [f"{f.label} (`{f.reference}`)" for f in c.inputs.findings
            if f.key in ("pa_catheter", "lung_procedure") and not f.stale] + [
        f"{f.concept.label} (`{f.reference}`)" for f in c.inputs.conditions_with_key("iatrogenic_pa_rupture")]


def _detect_cavity_or_mass(c: _Context) -> list[str]:
    lines = [f"{f.label} report: excavated lesion (`{f.reference}`)" for f in c.inputs.findings
             if "excavated_lesion" in f.cues and not f.stale]
    lines += [f"{cause.study} report: {cause.label} (`{cause.reference}`)" for cause in imaging_causes(c.inputs)]
    lines += [f"{f.concept.label} (`{f.reference}`)" for f in c.inputs.conditions_with_key(
        "lung_cancer", "aspergilloma", "hht_avm")]
    return lines


_ENTRY_DETECTORS: dict[str, Callable[[_Context], list[str]]] = {
    "expectorated_blood": _detect_expectorated_blood, "physiologic_compromise": _detect_physiologic_compromise,
    "chronic_engine_patient": _detect_chronic_engine_patient, "recent_procedure": _detect_recent_procedure,
    "cavity_or_mass": _detect_cavity_or_mass,
}


# ------------------------------------------------------------------------------------------ phase advance

def _frame_passed(c: _Context) -> tuple[bool, str]:
    verdict = c.severity.frame.verdict if c.severity.frame else Verdict.NONE
    return verdict is Verdict.HEMOPTYSIS, f"FRAME verdict: {verdict.value}"


def _volume_captured(c: _Context) -> tuple[bool, str]:
    kinds = sorted(c.inputs.volumes)
    return bool(kinds), ("volume on record: " + ", ".join(kinds)) if kinds else "no volume / rate on record"


def _amplifiers_identified(c: _Context) -> tuple[bool, str]:
    panel = c.statuses["coagulation_panel"].status == PRESENT
    inr_needed = any(u.agent.drug_class == "vka" for u in c.inputs.medications)
    inr_ok = "inr" in c.inputs.observations or not inr_needed
    return panel and inr_ok, ("coagulation panel on record" if panel else "coagulation panel missing") + (
        "" if inr_ok else "; on a VKA without a current INR")


def _triaged(c: _Context) -> tuple[bool, str]:
    if c.severity.level in (Level.NON_MASSIVE, Level.SEVERE_BY_MODIFIER):
        return True, "non-massive confirmed by physiology on record"
    if c.severity.level is Level.MASSIVE:
        airway = c.inputs.finding("mechanical_ventilation")
        return airway is not None, ("airway protected (`%s`)" % airway.reference) if airway else (
            "massive: airway protection / lung isolation not on record")
    return False, f"severity {c.severity.level.value}"


def _localized_or_repeat_planned(c: _Context) -> tuple[bool, str]:
    loc = c.localization
    if loc.localized and loc.beds:
        return True, f"side {loc.side}, bed {', '.join(loc.beds)}"
    if loc.repeat_during_active_bleeding:
        return True, "negative study in a quiet interval: repeat during active bleeding"
    return False, "side and bleeding bed not localised by CTA / bronchoscopy"


def _cause_and_bronchoscopic_side(c: _Context) -> tuple[bool, str]:
    cause = bool(c.inputs.conditions_with_role("cause")) or any(p.key == "dah_vasculitis" for p in c.populations)
    scoped = any(f.key == "bronchoscopy" and ({"lateral_right", "lateral_left"} & set(f.cues))
                 for f in c.localization.studies)
    return cause and scoped, f"cause {'assigned' if cause else 'not assigned'}; bronchoscopic side " \
                             f"{'confirmed' if scoped else 'not confirmed'}"


def _bed_and_cause(c: _Context) -> tuple[bool, str]:
    if any(p.key == "dah_vasculitis" for p in c.populations):
        return True, "DAH / vasculitic pattern recognised"
    cause = bool(c.inputs.conditions_with_role("cause"))
    beds = c.localization.beds or [p.label for p in c.populations if p.bae == "pa-targeted"]
    return cause and bool(beds), f"bed: {', '.join(beds) or 'not identified'}; cause {'on record' if cause else 'not on record'}"


def _risk_tier_assigned(c: _Context) -> tuple[bool, str]:
    assigned = c.severity.level in (Level.MASSIVE, Level.SEVERE_BY_MODIFIER, Level.NON_MASSIVE)
    return assigned, f"severity {c.severity.level.value}"


def _definitive_control_activated(c: _Context) -> tuple[bool, str]:
    embolisation = c.inputs.finding("embolisation")
    if embolisation:
        return True, f"embolisation on record (`{embolisation.reference}`)"
    immunosuppression = c.inputs.finding("immunosuppression")
    if immunosuppression and any(p.key == "dah_vasculitis" for p in c.populations):
        return True, f"immunosuppression for DAH / vasculitis on record (`{immunosuppression.reference}`)"
    return False, "no embolisation Procedure, nor immunosuppression for DAH, on record"


_ADVANCE: dict[str, Callable[[_Context], tuple[bool, str]]] = {
    "frame_passed": _frame_passed, "volume_captured": _volume_captured, "amplifiers_identified": _amplifiers_identified,
    "triaged": _triaged, "localized_or_repeat_planned": _localized_or_repeat_planned,
    "cause_and_bronchoscopic_side": _cause_and_bronchoscopic_side, "bed_and_cause": _bed_and_cause,
    "risk_tier_assigned": _risk_tier_assigned, "definitive_control_activated": _definitive_control_activated,
}


def phase_report(inputs: EngineInputs, severity: Severity, localization: Localization,
                 populations: list[PopulationMatch]) -> PhaseReport:
    statuses = input_statuses(inputs)
    context = _Context(inputs, severity, localization, populations, statuses)
    entries = []
    for row in _dossier()["entry_point"]:
        evidence = _ENTRY_DETECTORS[row["detect"]](context)
        entries.append(EntryPoint(row["key"], row["label"], bool(evidence), evidence))
    phases = []
    for row in _dossier()["phase"]:
        names = row["inputs"]
        present = [n for n in names if statuses[n].status == PRESENT]
        stale = [n for n in names if statuses[n].status == STALE]
        missing = [n for n in names if statuses[n].status != PRESENT]
        if row["advance"] == "not-readable":
            advance, why = NOT_READABLE, "the record read by the service does not carry it"
        else:
            met, why = _ADVANCE[row["advance"]](context)
            advance = MET if met else NOT_MET
        phases.append(PhaseStatus(row["order"], row["key"], present, missing, stale, advance, why))
    return PhaseReport(statuses, entries, phases)
