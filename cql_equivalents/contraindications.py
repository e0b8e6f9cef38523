"""Contraindication and caution rules that apply to this patient (mirrors Contraindications.cql).

Rules live in data/contraindications.toml; a rule applies when any of its conditions holds.
"""
from __future__ import annotations

from functools import cache
from typing import NamedTuple

from .model import EngineInputs
from .results import PopulationMatch, RuleApplied
from .tables import load


@cache
def _rule_table() -> list[dict]:
    return load("contraindications")["rule"]


class _Rule(NamedTuple):
    """A rule's members as the per-call test reads them: looked up and made into sets once per process."""

    row: dict
    populations: tuple[str, ...]
    condition_keys: frozenset[str]
    agent_classes: frozenset[str]
    agents: frozenset[str]
    levels: frozenset[str]
    unless_levels: frozenset[str]
    advises_against: tuple[str, ...]


@cache
def _prepared_rules() -> tuple[_Rule, ...]:
    return tuple(_Rule(row, tuple(row.get("populations", ())), frozenset(row.get("condition_keys", ())),
                       frozenset(row.get("agent_classes", ())), frozenset(row.get("agents", ())),
                       frozenset(row.get("levels", ())), frozenset(row.get("unless_levels", ())),
                       tuple(row.get("advises_against", ()))) for row in _rule_table())


def applicable_rules(inputs: EngineInputs, populations: list[PopulationMatch], level: str) -> list[RuleApplied]:
    population_keys = {match.key: match.label for match in populations}
    applied = []
    for rule in _prepared_rules():
        because = [population_keys[key] for key in rule.populations if key in population_keys]
        if rule.condition_keys:
            because += [f"{fact.concept.label} (`{fact.reference}`)" for fact in inputs.conditions
                        if fact.concept.key in rule.condition_keys]
        if rule.agent_classes or rule.agents:
            because += [f"{use.agent.name} (`{use.reference}`)" for use in inputs.medications
                        if use.agent.drug_class in rule.agent_classes or use.agent.name in rule.agents]
        if level in rule.levels:
            because.append(f"severity {level}")
        if not because or level in rule.unless_levels or _lab_overrides(rule.row, inputs):
            continue  # e.g. "no routine platelets" is not said when a procedure is expected, or the count is low
        row = rule.row
        applied.append(RuleApplied(row["key"], row["intervention"], row["kind"], row["text"],
                                   tuple(dict.fromkeys(because)), row["source"], rule.advises_against))
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
