"""One pure entry point over the engine: inputs in, every result the cards need out (mirrors
MassiveHemoptysisEngine.cql). `now` comes with the inputs, so the whole evaluation is a pure function."""
from __future__ import annotations

from .calculators import all_calculations
from .causes import underlying_causes
from .contraindications import advised_against, applicable_rules
from .haemostasis import haemostatic_plan, platelet_target
from .model import EngineInputs
from .localization import localize
from .patient_reversal import patient_reversal
from .phases import phase_report
from .populations import special_populations
from .reversal import reversal_plans
from .results import Assessment, Level, PlanContext
from .severity import classify


def assess(inputs: EngineInputs) -> Assessment:
    severity = classify(inputs)
    localization = localize(inputs)
    populations = special_populations(inputs)
    rules = applicable_rules(inputs, populations, severity.level.value)
    against = advised_against(rules)
    # massive hemoptysis: bronchoscopy / embolisation are expected (the escalation card proposes them)
    context = PlanContext(procedure_expected=severity.level is Level.MASSIVE, platelet_target=platelet_target(),
                          advised_against=against)
    plans = reversal_plans(inputs, context)
    return Assessment(
        inputs=inputs, severity=severity, localization=localization, populations=populations,
        rules=rules, reversal=plans,
        causes=underlying_causes(inputs), calculations=all_calculations(inputs),
        haemostasis=haemostatic_plan(inputs, against),
        make_phases=lambda: phase_report(inputs, severity, localization, populations),
        make_patient_reversal=lambda: patient_reversal(inputs, plans),
        advised_against=against,
    )
