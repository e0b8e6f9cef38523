"""Underlying causes on record and the sibling engines that manage them (mirrors UnderlyingCause.cql).

Seed 004 phases 6 and 12: cause cascade, then route BACK to the underlying-disease engine once the airway
is secured. Causes with no sibling engine in the dossier (vasculitis, HHT/AVM, mitral stenosis) are named
with no link.
"""
from __future__ import annotations

from .model import EngineInputs
from .tables import tables
from .results import CauseGroup


def underlying_causes(inputs: EngineInputs) -> list[CauseGroup]:
    groups: dict[str, CauseGroup] = {}
    for fact in inputs.conditions_with_role("cause"):
        engine_id = fact.concept.sibling
        key = engine_id or f"none:{fact.concept.key}"
        group = groups.setdefault(key, CauseGroup(engine_id, tables().sibling_engines.get(engine_id)))
        group.facts.append(fact)
    return sorted(groups.values(), key=lambda group: (group.engine_id == "", group.engine_id, group.labels))
