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

from .calculators import all_calculations
from .causes import underlying_causes
from .contraindications import applicable_rules
from .frame import frame_gate
from .localization import localize
from .populations import special_populations
from .fhir_select import pool_from_values
from .fhir_values import parse_instant
from .readers import map_inputs

# result -> its tolerance: the unit of the last decimal a rounded result keeps; 0 for the integer scores
# (sums of points are exact). The names are the CQL defines of MassiveHemoptysisEngine.
TOLERANCE = {"NEWS2": 0, "MAP": 0.1, "Shock Index": 0.01, "A-a Gradient": 0.1, "SOFA": 0, "HAS-BLED": 0}
OBSERVATION_TOLERANCE = 0.01  # converted values keep 2 decimals (inputs.py): one unit of the last one
_PYTHON_CALCULATOR = {"NEWS2": "NEWS2", "MAP": "MAP", "Shock Index": "shock index", "A-a Gradient": "A-a gradient",
                      "SOFA": "SOFA (partial)", "HAS-BLED": "HAS-BLED"}

# Every public result of engine.Assessment that is NOT compared yet, and why (docs/engine.md lists the same).
NOT_COMPARED = {
    "FRAME evidence lists (labels, references)": "the verdict is compared; the evidence lines are wording",
    "severity level and triggers": "the Python severity (respiratory support, worst value in the window) is being "
                                   "changed in this session; MassiveHemoptysisSeverity.cql follows once it settles",
    "special population evidence lines and paths": "which populations open is compared; the lines naming each "
                                                    "record and the steps are wording from the same table",
    "contraindication rules with severity levels": "they depend on the severity level (not compared yet); the "
                                                   "rules decided by the record are compared",
    "findings from MedicationRequest / MedicationAdministration (immunosuppression)": "not read by "
        "MassiveHemoptysisFindings.cql yet; no population or compared rule depends on them",
    "reversal plans (agents, doses)": "the Python reversal (drug exposure, doses, haemostasis) is being changed in "
                                      "this session",
    "localization studies listed": "side, beds, localized, active bleeding and the repeat advice are compared; "
                                   "the list of studies behind them is wording",
    "phase statuses": "depend on every result above",
    "agents (and HAS-BLED, populations, rules) when the drug is a contained Medication": "cql-exec-fhir 2.2.0 types a contained "
        "resource as its declared element type (Resource), so `as FHIR.Medication` is null and the CQL cannot read "
        "its code; such fixtures are counted as skipped for these results",
    "a patient whose prefetch holds no Patient resource": "the libraries run in Patient context and cql-exec-fhir "
        "needs the Patient to build one (a host must send it); the run reports the patient as skipped",
    "agents (and HAS-BLED, populations, rules) when a drug counts by its effect": "the Python reads drug exposure "
        "by effect (issue 14: an on-hold or stopped record counted by its lab and last dose, a heparin lock flush "
        "not counted, an administration inside the agent's own look-back or ruled out by its lab, "
        "drug_exposure.py); MassiveHemoptysisInputs.cql reads active records only. Such patients are counted as "
        "skipped for these results until the CQL follows",
    "conditions, FRAME verdict and HAS-BLED when a hemoptysis record lies outside the recency window": "the Python "
        "reads a hemoptysis Condition only within the episode window (issue 13 item 8, recency.py: onset, recorded "
        "date or encounter); MassiveHemoptysisInputs.cql reads every active one. Such patients are counted as "
        "skipped for these results until the CQL follows",
    "special populations opened by evidence outside coded conditions": "the Python opens the DAH, anti-GBM, "
        "pulmonary-artery-source and iatrogenic PA rupture populations from reports, procedures and results too "
        "(issue 13 items 4-5, one evidence model for the cards and the orders); MassiveHemoptysisPopulations.cql "
        "reads the earlier rows only. Populations and rules are not compared for a patient in one of them",
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
    results: dict[str, Any] = {
        "Current Observations": {name: o.value for name, o in inputs.observations.items()},
        "Age In Years": inputs.age_years,
        "Condition Keys": sorted({fact.concept.key for fact in inputs.conditions}),
        "Agents In Use": sorted({use.agent.name for use in inputs.medications}),
        "Population Keys": sorted(match.key for match in populations),
        # rules compared do not depend on the severity level: no level is given
        "Rules": sorted(rule.key for rule in applicable_rules(inputs, populations, "")),
        "Cause Groups": sorted((group.engine_id, tuple(group.labels)) for group in underlying_causes(inputs)),
        "FRAME Verdict": frame_gate(inputs).verdict.value,
        **_localization(inputs),
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


LOCALIZATION = ("Side", "Beds", "Localized", "Active Bleeding Seen", "Repeat During Active Bleeding")


def cql_results(raw: dict[str, Any]) -> dict[str, Any]:
    """The CQL defines of MassiveHemoptysisEngine in the same shape."""
    results: dict[str, Any] = {
        "Current Observations": {row["input"]: row["value"] for row in raw["Current Observations"]},
        "Age In Years": raw["Age In Years"],
        "Condition Keys": sorted(set(raw["Condition Keys"] or ())),
        "Agents In Use": sorted(set(raw["Agents In Use"] or ())),
        "Population Keys": sorted(set(raw["Population Keys"] or ())),
        "Rules": sorted(set(raw["Rules From The Record"] or ())),
        "Cause Groups": sorted((g["engine"], tuple(g["labels"] or ())) for g in raw["Cause Groups"] or ()),
        "FRAME Verdict": raw["FRAME Verdict"],
        **{name: sorted(raw[name] or ()) if name == "Beds" else raw[name] for name in LOCALIZATION},
        "Rules Read In Full": set(raw["Rules Read In Full"] or ()),
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


def _numbers_equal(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tolerance + 1e-9


def uses_contained_medication(request: dict) -> bool:
    """A MedicationStatement / Request / Administration whose drug is a contained Medication ('#id')."""
    from .fhir_select import pool_from_values
    pool = pool_from_values(request.get("prefetch") or {})
    return any(str((raw.get("medicationReference") or {}).get("reference", "")).startswith("#")
               for kind in ("MedicationStatement", "MedicationRequest", "MedicationAdministration") for raw in pool.of(kind))


# The populations whose evidence the Python reads beyond coded conditions (issue 13 items 4-5)
EVIDENCE_MODEL_POPULATIONS = frozenset({"dah_vasculitis", "anti_gbm_disease", "pulmonary_artery_source",
                                        "iatrogenic_pa_rupture"})


def python_only_rules_apply(request: dict) -> set[str]:
    """The results a rule the CQL does not have yet decides for this patient (NOT_COMPARED): not compared here."""
    inputs = map_inputs(pool_from_values(request.get("prefetch") or {}), reference_instant(request))
    skip: set[str] = set()
    if inputs.old_bleeding:  # recency window (issue 13 item 8)
        skip |= {"Condition Keys", "FRAME Verdict", "HAS-BLED"}
    if any(match.key in EVIDENCE_MODEL_POPULATIONS for match in special_populations(inputs)):
        skip |= {"Population Keys", "Rules"}  # opened by reports, procedures, results (issue 13 items 4-5)
    return skip


def drug_counts_by_effect(request: dict) -> bool:
    """Whether the Python's exposure-by-effect rules (drug_exposure.py) decide an agent for this patient: a use
    counted by effect, a flush set aside, or an administration the agent's lab rules out."""
    from . import drug_exposure
    inputs = map_inputs(pool_from_values(request.get("prefetch") or {}), reference_instant(request))
    if any(use.basis for use in inputs.medications):
        return True
    if any("flush" in item.reason.lower() for item in inputs.rejected):
        return True
    return any(drug_exposure.lab_says_no_effect(dose.agent, inputs.observations) for dose in inputs.administrations)


def compare(python: dict[str, Any], cql: dict[str, Any], contained_medication: bool = False,
            drug_by_effect: bool = False, python_only: set[str] = frozenset()) -> tuple[list[str], list[str], list[str]]:
    """-> (results compared, disagreements as lines, results skipped here by a NOT_COMPARED rule)."""
    compared, disagreements, skipped = [], [], []
    not_here = ({"Agents In Use", "HAS-BLED", "Rules", "Population Keys"}
                if contained_medication or drug_by_effect else set()) | set(python_only)
    skipped += sorted(not_here)

    def check(name: str, equal: bool, left: Any, right: Any) -> None:
        compared.append(name)
        if not equal:
            disagreements.append(f"{name}: Python {left!r} != CQL {right!r}")

    po, co = python["Current Observations"], cql["Current Observations"]
    for name in sorted(set(po) | set(co)):
        check(f"observation {name}", _numbers_equal(po.get(name), co.get(name), OBSERVATION_TOLERANCE), po.get(name), co.get(name))
    for name in ("Age In Years", "Condition Keys", "Agents In Use", "FRAME Verdict", *LOCALIZATION):
        if name in not_here:
            continue
        check(name, python[name] == cql[name], python[name], cql[name])
    check("Cause Groups", python["Cause Groups"] == cql["Cause Groups"], python["Cause Groups"], cql["Cause Groups"])
    if "Population Keys" not in not_here:
        check("Population Keys", python["Population Keys"] == cql["Population Keys"], python["Population Keys"],
              cql["Population Keys"])
    if "Rules" not in not_here:
        left = [key for key in python["Rules"] if key in cql["Rules Read In Full"]]
        right = [key for key in cql["Rules"] if key in cql["Rules Read In Full"]]
        check("Rules", left == right, left, right)
    for define, tolerance in TOLERANCE.items():
        if define in not_here:
            continue
        p, c = python[define], cql[define]
        if p["parts"] or c["parts"]:
            check(f"{define} parts", p["parts"] == c["parts"], p["parts"], c["parts"])
        check(f"{define} value", _numbers_equal(p["value"], c["value"], tolerance), p["value"], c["value"])
    return compared, disagreements, skipped
