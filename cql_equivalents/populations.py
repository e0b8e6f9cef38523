"""Special populations, each with its own path (mirrors SpecialPopulations.cql).

Seed 004 special-population branches: anticoagulated/coagulopathic, DAH/vasculitis (not a BAE target),
CF/bronchiectasis, post-TB/mycetoma, malignancy, iatrogenic PA rupture; plus a pulmonary-artery source
(AVM / Rasmussen, seed 004 pivot 3). Matching rules and paths live in data/populations.toml.
"""
from __future__ import annotations

import operator
import re
from functools import cache

from .model import ConditionFact, EngineInputs
from .tables import load, tables
from .results import PopulationMatch

_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@cache
def _population_table() -> dict[str, dict]:
    return {row["key"]: row for row in load("populations")["population"]}


@cache
def _cue_pattern(cue: str) -> re.Pattern[str]:
    """Any of a cue's words as a substring (the words escaped: a literal match, as `word in text`), made once per
    process per cue; one C-level search per condition instead of a generator over the words."""
    words = tables().cues[cue]["words"]
    return re.compile("|".join(re.escape(word) for word in words) if words else "(?!)")  # no word: never matches


def _evidence(row: dict, inputs: EngineInputs, lowered: list[tuple[ConditionFact, str]],
              by_population: dict[str, list[str]]) -> list[str]:
    """`lowered`: each condition with its text in lower case; `by_population`: each population's conditions as
    lines, in chart order (both made once per call, not once per row)."""
    lines = list(by_population.get(row["key"], ()))
    for cue in row.get("cues", ()):  # the same report cues, read in a condition's own words (e.g. R04.89 "diffuse alveolar haemorrhage")
        search = _cue_pattern(cue).search
        lines += [f"{fact.concept.label}: the record says {cue.replace('_', ' ')} (`{fact.reference}`)"
                  for fact, text in lowered if search(text) is not None]
    for finding in inputs.findings:
        if finding.stale:
            continue
        if finding.key in row.get("findings_positive", ()) and finding.result == "positive":
            lines.append(f"{finding.label} positive (`{finding.reference}`)")
        if finding.key in row.get("findings_present", ()):
            lines.append(f"{finding.label} (`{finding.reference}`)")
        for cue in row.get("cues", ()):
            if cue in finding.cues:
                lines.append(f"{finding.label} report mentions {cue.replace('_', ' ')} (`{finding.reference}`)")
    if row.get("any_antithrombotic"):
        lines += [f"{use.agent.name} (`{use.reference}`)" for use in inputs.medications]
    for rule in row.get("lab", ()):
        observed = inputs.observations.get(rule["input"])
        if observed and _OPERATORS[rule["op"]](observed.value, rule["value"]):
            lines.append(f"{observed.label} {observed.value:g} {rule['op']} {rule['value']:g} (`{observed.reference}`)")
    return list(dict.fromkeys(lines))


def special_populations(inputs: EngineInputs) -> list[PopulationMatch]:
    matches = []
    lowered = [(fact, fact.text.lower()) for fact in inputs.conditions]
    by_population: dict[str, list[str]] = {}
    for fact in inputs.conditions:
        by_population.setdefault(fact.concept.population, []).append(f"{fact.concept.label} (`{fact.reference}`)")
    for key, row in _population_table().items():
        evidence = _evidence(row, inputs, lowered, by_population)
        if evidence:
            matches.append(PopulationMatch(key, row["label"], row["summary"], row["bae"], row["sibling"], tuple(row["steps"]),
                                           tuple(evidence), row["source"], tuple(row.get("advises_against", ()))))
    return matches
