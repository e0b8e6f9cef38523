"""Context that changes how the escalation is carried out (issue 13 item 7): pregnancy, a documented
do-not-resuscitate / palliative status, and an airway emergency in a patient under 18.

Conditions come through the engine's condition mapping (conditions.toml role "context"); pregnancy status and
DNR-order Observations are read here (data/care_context.toml). Pure: the pool and `now` in, facts out.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from .code_memo import CodeMemo
from .fhir_select import ResourcePool
from .fhir_values import codings, effective_time
from .model import EngineInputs
from .readers.record import reference_of
from .tables import LOINC, load
from .results import CareContext, ContextFact, PaediatricEmergency

_COUNTS = frozenset({"final", "amended", "corrected", "preliminary"})


@cache
def _table() -> dict:
    return load("care_context")


def context_observation_codes() -> list[str]:
    """The LOINC codes the `careContext` prefetch asks for."""
    return [row["loinc"] for row in _table()["observation"]]


def _positive(row: Mapping[str, Any], raw: Mapping[str, Any]) -> bool:
    if "positive_boolean" in row:
        return raw.get("valueBoolean") is row["positive_boolean"]
    wanted = {tuple(item.split("|", 1)) for item in row["positive"]}
    return any(isinstance(c.get("code"), str) and isinstance(c.get("system"), str) and (c["system"], c["code"]) in wanted
               for c in codings(raw.get("valueCodeableConcept")))  # a malformed coding is passed over, never a 500


_CONTEXT_ROWS = CodeMemo("care context observation rows")


def _context_rows(raw: Mapping[str, Any]) -> tuple[int, ...]:
    """Which rows of care_context.toml [observation] this code is (their LOINC among its codings)."""
    codes = {c.get("code") for c in codings(raw.get("code")) if c.get("system") == LOINC and isinstance(c.get("code"), str)}
    return tuple(number for number, row in enumerate(_table()["observation"]) if row["loinc"] in codes)


def _observation_facts(pool: ResourcePool, now: datetime) -> list[ContextFact]:
    rows = _table()["observation"]
    newest: dict[int, tuple[datetime, dict]] = {}
    # only the Observations of a context code are visited (matching), in chart order
    for raw, numbers in pool.matching("Observation", _context_rows, memo=_CONTEXT_ROWS):
        if not isinstance(raw.get("status"), str) or raw["status"] not in _COUNTS:
            continue
        at = effective_time(raw)
        if at is None or at > now:
            continue
        for number in numbers:
            if now - at > timedelta(days=rows[number]["fresh_days"]):
                continue
            if number not in newest or at > newest[number][0]:
                newest[number] = (at, raw)
    facts = []
    for number, row in enumerate(rows):
        # the newest record decides: a later "not pregnant" or a revoked DNR (false) outweighs an older one
        found = newest.get(number)
        if found and _positive(row, found[1]):
            facts.append(ContextFact(row["context"], row["label"], reference_of(found[1]), found[0]))
    return facts


def care_context(inputs: EngineInputs, pool: ResourcePool) -> CareContext:
    facts = [ContextFact(fact.concept.key, fact.concept.label, fact.reference, fact.at)
             for fact in inputs.conditions_with_role("context")]
    facts += _observation_facts(pool, inputs.now)
    keys = set(fact.key for fact in facts)
    effects = tuple(row for row in _table()["effect"] if row["context"] in keys)
    return CareContext(tuple(facts), effects)


def paediatric_airway_emergency(inputs: EngineInputs) -> PaediatricEmergency | None:
    """Under 18 with hypoxaemia below the WHO oxygen threshold or a recent intubation: an airway emergency,
    judged without the adult early-warning cut-offs."""
    rule = _table()["paediatric"]
    reasons = []
    spo2 = inputs.observations.get("spo2")
    if spo2 is not None and spo2.value < rule["spo2_below"]:
        reasons.append(f"SpO2 {spo2.value:g} % (below {rule['spo2_below']} %), {spo2.reference}")
    for finding in inputs.findings:
        if finding.key in rule["findings"] and not finding.stale:
            reasons.append(f"{finding.label}, {finding.reference}")
    return PaediatricEmergency(tuple(reasons), rule["source"]) if reasons else None
