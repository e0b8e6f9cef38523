"""One pure entry point over the engine: inputs in, every result the cards need out (mirrors
MassiveHemoptysisEngine.cql). `now` comes with the inputs, so the whole evaluation is a pure function."""
from __future__ import annotations

from dataclasses import dataclass

from .calculators import Calculation, all_calculations
from .causes import CauseGroup, underlying_causes
from .contraindications import RuleApplied, applicable_rules
from .inputs import EngineInputs
from .localization import Localization, localize
from .phases import PhaseReport, phase_report
from .populations import PopulationMatch, special_populations
from .reversal import ReversalPlan, reversal_plans
from .severity import Severity, classify


@dataclass
class Assessment:
    inputs: EngineInputs
    severity: Severity
    localization: Localization
    populations: list[PopulationMatch]
    rules: list[RuleApplied]
    reversal: list[ReversalPlan]
    causes: list[CauseGroup]
    calculations: list[Calculation]
    phases: PhaseReport


def assess(inputs: EngineInputs) -> Assessment:
    severity = classify(inputs)
    localization = localize(inputs)
    populations = special_populations(inputs)
    return Assessment(
        inputs=inputs, severity=severity, localization=localization, populations=populations,
        rules=applicable_rules(inputs, populations, severity.level.value), reversal=reversal_plans(inputs),
        causes=underlying_causes(inputs), calculations=all_calculations(inputs),
        phases=phase_report(inputs, severity, localization, populations),
    )
