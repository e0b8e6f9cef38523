"""The public results both engines compute, in one comparable shape, and the rules that compare them.

Written once, used by tests/test_cql_agreement.py (and read by docs/engine.md, "CQL"):
- a number is equal when both are null, or when they differ by at most one unit of the last decimal the
  result is rounded to (Python rounds half to even, CQL half up: a tie may round to either neighbour);
  scores (sums of integer points) must be equal exactly;
- null / missing is equal only to null / missing; an empty list is "nothing", not null;
- lists of keys (conditions, agents) compare as sets; points parts compare as {part: points}.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from . import cql_agreement_reversal as reversal_agreement
from .agreement_numbers import OBSERVATION_TOLERANCE, numbers_equal as _numbers_equal
from .calculators import all_calculations
from .causes import underlying_causes
from .contraindications import applicable_rules
from .frame import frame_gate
from .localization import localize
from .phases import phase_report
from .populations import special_populations
from .severity import classify
from .tables import load
from .fhir_select import pool_from_values
from .fhir_values import parse_instant
from .readers import map_inputs

# result -> its tolerance: the unit of the last decimal a rounded result keeps; 0 for the integer scores
# (sums of points are exact). The names are the CQL defines of MassiveHemoptysisEngine.
TOLERANCE = {"NEWS2": 0, "MAP": 0.1, "Shock Index": 0.01, "A-a Gradient": 0.1, "SOFA": 0, "HAS-BLED": 0}
VOLUME_TOLERANCE = 0.1  # the CQL keeps volumes (mL, mL/h) to 1 decimal
_PYTHON_CALCULATOR = {"NEWS2": "NEWS2", "MAP": "MAP", "Shock Index": "shock index", "A-a Gradient": "A-a gradient",
                      "SOFA": "SOFA (partial)", "HAS-BLED": "HAS-BLED"}

# Every public result of engine.Assessment that is NOT compared yet, and why (docs/engine.md lists the same).
NOT_COMPARED = {
    "FRAME evidence lists (labels, references)": "the verdict is compared; the evidence lines are wording",
    "special population evidence lines and paths": "which populations open is compared; the lines naming each "
                                                    "record and the steps are wording from the same table",
    "reversal step words (dose and note text, charcoal and platelet advice)": "wording from the same table rows; "
        "the numbers behind them (dose, hours since the last dose, heparin counted, what the record lacks) are compared",
    "haemostatic plan words and the targets set aside for a reversal": "the values off target, what the record "
        "lacks, the conditions, the orders, alternatives and orders left to a specialist are compared; the lines "
        "saying which target the reversal card treats are wording",
    "localization studies listed": "side, beds, localized, active bleeding and the repeat advice are compared; "
                                   "the list of studies behind them is wording",
    "phase statuses, dossier inputs and entry points when a result they read is skipped and differs": "e.g. "
        "FRAME and RISK_STRATIFICATION read the FRAME verdict and the severity level, CONTEXT the agents in use (an "
        "INR on a vitamin K antagonist), DIFFERENTIAL the special populations, the cause input and entry points the "
        "condition keys: for a patient whose such result is skipped here, they are compared when both engines still "
        "agree on that result, and skipped when they differ (READS_SKIPPED)",
    "phase evidence lines, the present / missing lists and the why of each phase": "the advance of every phase, "
        "the status of every dossier input and which entry points are met are compared; the lines naming each "
        "record and the reasons are the report's wording built on them",
    "severity drivers and evidence lines": "the level and the triggers fired are compared; the values, times, "
        "records and support each driver was taken on, the modifiers' references and the adjusted cut-off labels "
        "are the card's wording built on the same rows",
    "agents (and HAS-BLED, populations, rules) when the drug is a contained Medication": (
        "cql-exec-fhir 2.2.0 builds every element from the type the model info declares for it (fhir.js "
        "toFHIRObject: modelInfo.findClass(typeSpecifier.fqn)), never from the JSON's resourceType, and "
        "DomainResource.contained is declared List<FHIR.Resource>: a contained Medication is a FHIR.Resource "
        "with only id, meta, implicitRules and language, so `as FHIR.Medication` (its type hierarchy, "
        "FHIRObject._typeHierarchy) is null and `.code` does not exist on Resource (the translator refuses "
        "it); cql-execution implements neither Children nor Descendents, and the upstream source "
        "(cqframework/cql-exec-fhir master) builds it the same way. No CQL path reaches the code; the one "
        "host rule that would (copying the contained Medication into the Bundle as a resource of its own) is "
        "not standard FHIR (a contained resource has no identity outside its container), so none is used. The "
        "Python reads it; such fixtures are counted as skipped for these results"),
    "a patient whose prefetch holds no Patient resource": "the libraries run in Patient context and cql-exec-fhir "
        "needs the Patient to build one (a host must send it); the run reports the patient as skipped",
    "a request the service refuses before evaluating (a non-200 golden)": "e.g. a Patient resource with another "
        "id (412 conflict) or a required prefetch key missing (412): the service evaluates nothing, so there is "
        "nothing to agree on",
    "calculator 'missing' lists and interpretations": "wording, not a value; the values and parts are compared",
    "records not used (rejected) and stale values": "the CQL skips them the same way but does not list the reasons",
}


def python_results(request: dict) -> dict[str, Any]:
    """The Python engine in-process on one CDS Hooks request (prefetch + `_fixture.referenceInstant`)."""
    now = reference_instant(request)
    inputs = map_inputs(pool_from_values(request.get("prefetch") or {}), now)
    by_name = {calc.name: calc for calc in all_calculations(inputs)}
    populations = special_populations(inputs)
    severity = classify(inputs)
    results: dict[str, Any] = {
        "Current Observations": {name: o.value for name, o in inputs.observations.items()},
        "Age In Years": inputs.age_years,
        "Condition Keys": sorted({fact.concept.key for fact in inputs.conditions}),
        "Agents In Use": sorted({use.agent.name for use in inputs.medications}),
        "Current Finding Keys": sorted({finding.key for finding in inputs.findings if not finding.stale}),
        "Hemoptysis Volumes": {kind: reading.ml for kind, reading in inputs.volumes.items()},
        "Population Keys": sorted(match.key for match in populations),
        "Rules": sorted(rule.key for rule in applicable_rules(inputs, populations, severity.level.value)),
        "Severity Level": severity.level.value,
        "Severity Triggers": sorted({trigger.key for trigger in severity.triggers}),
        **_phase_report(phase_report(inputs, severity, localize(inputs), populations)),
        "Cause Groups": sorted((group.engine_id, tuple(group.labels)) for group in underlying_causes(inputs)),
        "FRAME Verdict": frame_gate(inputs).verdict.value,
        **_localization(inputs),
        **reversal_agreement.python_results(inputs),
    }
    for define, python_name in _PYTHON_CALCULATOR.items():
        calc = by_name[python_name]
        results[define] = {"value": calc.value, "parts": {k: int(v) for k, v in calc.parts.items()
                                                          if define in ("NEWS2", "SOFA", "HAS-BLED")}}
    return results


def _localization(inputs) -> dict[str, Any]:
    found = localize(inputs)
    return {"Side": found.side, "Beds": sorted(found.beds), "Localized": found.localized,
            "Active Bleeding Seen": bool(found.active_bleeding_seen),
            "Repeat During Active Bleeding": found.repeat_during_active_bleeding}


def _phase_report(report) -> dict[str, Any]:
    return {"Phase Statuses": {phase.key: phase.advance for phase in report.phases},
            "Input Statuses": {name: status.status for name, status in report.inputs.items()},
            "Entry Points": {entry.key: entry.met for entry in report.entry_points}}


ENTRY_POINTS = tuple(row["key"] for row in load("dossier")["entry_point"])
LOCALIZATION = ("Side", "Beds", "Localized", "Active Bleeding Seen", "Repeat During Active Bleeding")


def cql_results(raw: dict[str, Any]) -> dict[str, Any]:
    """The CQL defines of MassiveHemoptysisEngine in the same shape."""
    results: dict[str, Any] = {
        "Current Observations": {row["input"]: row["value"] for row in raw["Current Observations"]},
        "Age In Years": raw["Age In Years"],
        "Condition Keys": sorted(set(raw["Condition Keys"] or ())),
        "Agents In Use": sorted(set(raw["Agents In Use"] or ())),
        "Current Finding Keys": sorted(set(raw["Current Finding Keys"] or ())),
        "Hemoptysis Volumes": {row["kind"]: row["ml"] for row in raw["Hemoptysis Volumes"] or ()},
        "Population Keys": sorted(set(raw["Population Keys"] or ())),
        "Rules": sorted(set(raw["Contraindication Rules"] or ())),
        "Severity Level": raw["Severity Level"],
        "Severity Triggers": sorted(set(raw["Severity Triggers"] or ())),
        "Phase Statuses": {row["key"]: row["advance"] for row in raw["Phase Statuses"] or ()},
        "Input Statuses": {row["name"]: row["status"] for row in raw["Input Statuses"] or ()},
        "Entry Points": {key: key in (raw["Entry Points Met"] or ()) for key in ENTRY_POINTS},
        "Cause Groups": sorted((g["engine"], tuple(g["labels"] or ())) for g in raw["Cause Groups"] or ()),
        "FRAME Verdict": raw["FRAME Verdict"],
        **{name: sorted(raw[name] or ()) if name == "Beds" else raw[name] for name in LOCALIZATION},
        **reversal_agreement.cql_results(raw),
    }
    for define in _PYTHON_CALCULATOR:
        found = raw[define] or {}
        results[define] = {"value": found.get("value"), "parts": {p["name"]: p["points"] for p in found.get("parts") or ()}}
    return results


def reference_instant(request: dict) -> datetime:
    instant = parse_instant((request.get("_fixture") or {}).get("referenceInstant"))
    if instant is None:
        raise ValueError("the request has no _fixture.referenceInstant: the agreement test needs a fixed now")
    return instant


def uses_contained_medication(request: dict) -> bool:
    """A MedicationStatement / Request / Administration whose drug is a contained Medication ('#id')."""
    from .fhir_select import pool_from_values
    pool = pool_from_values(request.get("prefetch") or {})
    return any(str((raw.get("medicationReference") or {}).get("reference", "")).startswith("#")
               for kind in ("MedicationStatement", "MedicationRequest", "MedicationAdministration") for raw in pool.of(kind))


# The phase statuses, dossier inputs and entry points that read a result skipped for some patients (NOT_COMPARED):
# for such a patient they are compared when the engines agree on that result anyway, and skipped when they do not.
READS_SKIPPED = {
    "FRAME Verdict": ("phase FRAME", "phase RED_FLAGS", "phase RISK_STRATIFICATION", "input blood_source_features",
                      "entry expectorated_blood"),
    "Severity Level": ("phase RED_FLAGS", "phase RISK_STRATIFICATION"),
    "Severity Triggers": ("entry hypoxia_or_hemodynamic_compromise",),
    "Agents In Use": ("phase CONTEXT", "input anticoagulant_or_antiplatelet"),  # an INR is needed on a VKA
    "Population Keys": ("phase BRANCHING_WORKUP", "phase DIFFERENTIAL", "phase TREATMENT"),  # DAH, PA-targeted
    "Condition Keys": ("input blood_source_features", "input underlying_lung_disease",
                       "input vasculitis_or_pulmonary_renal", "entry expectorated_blood",
                       "entry red_flag_from_chronic_engine", "entry recent_pa_catheter_or_lung_procedure",
                       "entry cavity_or_mass_on_imaging"),
}


def compare(python: dict[str, Any], cql: dict[str, Any], contained_medication: bool = False) -> tuple[list[str], list[str], list[str]]:
    """-> (results compared, disagreements as lines, results skipped here by a NOT_COMPARED rule)."""
    compared, disagreements, skipped = [], [], []
    not_here = ({"Agents In Use", "HAS-BLED", "Rules", "Population Keys", "Reversal Plans", "Reversal Orders"}
                if contained_medication else set())
    # a phase reads results skipped above: compared unless one of them differs between the engines here
    for dependency, names in READS_SKIPPED.items():
        if dependency in not_here and python[dependency] != cql[dependency]:
            not_here |= set(names)
    skipped += sorted(not_here)

    def check(name: str, equal: bool, left: Any, right: Any) -> None:
        compared.append(name)
        if not equal:
            disagreements.append(f"{name}: Python {left!r} != CQL {right!r}")

    po, co = python["Current Observations"], cql["Current Observations"]
    for name in sorted(set(po) | set(co)):
        check(f"observation {name}", _numbers_equal(po.get(name), co.get(name), OBSERVATION_TOLERANCE), po.get(name), co.get(name))
    pv, cv = python["Hemoptysis Volumes"], cql["Hemoptysis Volumes"]
    for kind in sorted(set(pv) | set(cv)):
        check(f"hemoptysis volume {kind}", _numbers_equal(pv.get(kind), cv.get(kind), VOLUME_TOLERANCE), pv.get(kind), cv.get(kind))
    for name in ("Age In Years", "Condition Keys", "Agents In Use", "Current Finding Keys", "FRAME Verdict", *LOCALIZATION):
        if name in not_here:
            continue
        check(name, python[name] == cql[name], python[name], cql[name])
    check("Cause Groups", python["Cause Groups"] == cql["Cause Groups"], python["Cause Groups"], cql["Cause Groups"])
    if "Population Keys" not in not_here:
        check("Population Keys", python["Population Keys"] == cql["Population Keys"], python["Population Keys"],
              cql["Population Keys"])
    if "Rules" not in not_here:
        check("Rules", python["Rules"] == cql["Rules"], python["Rules"], cql["Rules"])
    for name in ("Severity Level", "Severity Triggers"):
        if name not in not_here:
            check(name, python[name] == cql[name], python[name], cql[name])
    for kind, result in (("phase", "Phase Statuses"), ("input", "Input Statuses"), ("entry", "Entry Points")):
        left, right = python[result], cql[result]
        for key in sorted(set(left) | set(right)):
            if f"{kind} {key}" not in not_here:
                check(f"{kind} {key}", left.get(key) == right.get(key), left.get(key), right.get(key))
    if "Reversal Plans" not in not_here:
        reversal_agreement.compare(python, cql, check, not_here)
    for define, tolerance in TOLERANCE.items():
        if define in not_here:
            continue
        p, c = python[define], cql[define]
        if p["parts"] or c["parts"]:
            check(f"{define} parts", p["parts"] == c["parts"], p["parts"], c["parts"])
        check(f"{define} value", _numbers_equal(p["value"], c["value"], tolerance), p["value"], c["value"])
    return compared, disagreements, skipped
