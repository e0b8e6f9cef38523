"""Contraindication and caution rules that apply to this patient (mirrors Contraindications.cql).

Rules live in data/contraindications.toml; a rule applies when any of its conditions holds.
"""
from __future__ import annotations

from functools import cache

from .model import EngineInputs
from .results import PopulationMatch, RuleApplied
from .tables import load


@cache
def _rule_table() -> list[dict]:
    return load("contraindications")["rule"]


def applicable_rules(inputs: EngineInputs, populations: list[PopulationMatch], level: str) -> list[RuleApplied]:
    population_keys = {match.key: match.label for match in populations}
    applied = []
    for rule in _rule_table():
        because = [population_keys[key] for key in rule.get("populations", ()) if key in population_keys]
        because += [f"{fact.concept.label} (`{fact.reference}`)" for fact in inputs.conditions_with_key(
            *rule.get("condition_keys", ()))]
        because += [f"{use.agent.name} (`{use.reference}`)" for use in inputs.medications
                    if use.agent.drug_class in rule.get("agent_classes", ()) or use.agent.name in rule.get("agents", ())]
        if level in rule.get("levels", ()):
            because.append(f"severity {level}")
        if level in rule.get("unless_levels", ()) or _lab_overrides(rule, inputs):
            continue  # e.g. "no routine platelets" is not said when a procedure is expected, or the count is low
        if because:
            applied.append(RuleApplied(rule["key"], rule["intervention"], rule["kind"], rule["text"],
                                       tuple(dict.fromkeys(because)), rule["source"], tuple(rule.get("advises_against", ()))))
    return applied


_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


def _lab_overrides(rule: dict, inputs: EngineInputs) -> bool:
    """`unless_lab`: a lab value that makes the rule not apply (a platelet count below the bleeding target)."""
    for condition in rule.get("unless_lab", ()):
        observed = inputs.observations.get(condition["input"])
        if observed is not None and _OPS[condition["op"]](float(observed.value), float(condition["value"])):
            return True
    return False


def advised_against(rules: list[RuleApplied]) -> dict[str, RuleApplied]:
    """orders.toml key -> the rule that advises against it, for the rules that apply to this patient."""
    found: dict[str, RuleApplied] = {}
    for rule in rules:
        for key in rule.advises_against:
            found.setdefault(key, rule)
    return found
