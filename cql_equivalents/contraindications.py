"""Contraindication and caution rules that apply to this patient (mirrors Contraindications.cql).

Rules live in data/contraindications.toml; a rule applies when any of its conditions holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .inputs import EngineInputs
from .populations import PopulationMatch
from .tables import load


@dataclass(frozen=True)
class RuleApplied:
    key: str
    intervention: str
    kind: str
    text: str
    because: tuple[str, ...]
    source: str
    advises_against: tuple[str, ...] = ()  # orders (orders.toml keys) a card showing this rule rules out


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
        if because:
            applied.append(RuleApplied(rule["key"], rule["intervention"], rule["kind"], rule["text"],
                                       tuple(dict.fromkeys(because)), rule["source"], tuple(rule.get("advises_against", ()))))
    return applied
