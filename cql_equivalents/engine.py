"""One pure entry point over the engine: inputs in, every result the cards need out (mirrors
MassiveHemoptysisEngine.cql). `now` comes with the inputs, so the whole evaluation is a pure function."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .calculators import Calculation, all_calculations
from .causes import CauseGroup, underlying_causes
from .contraindications import RuleApplied, advised_against, applicable_rules
from .haemostasis import HaemostaticPlan, haemostatic_plan, platelet_target
from .inputs import EngineInputs
from .localization import Localization, localize
from .phases import PhaseReport, phase_report
from .populations import PopulationMatch, special_populations
from .patient_reversal import PatientReversal, patient_reversal
from .reversal import PlanContext, ReversalPlan, reversal_plans
from .severity import Level, Severity, classify


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
    # issue 14: the haemostatic plan, and the orders a rule advises against
    haemostasis: HaemostaticPlan | None = None
    advised_against: dict[str, RuleApplied] | None = None

    # Worked out when first asked, not on every call: the cards read neither (the service builds the reversal
    # plan from what the formulary stocks; the phase report is documentation and the CQL cross-check's).
    @cached_property
    def phases(self) -> PhaseReport:
        return phase_report(self.inputs, self.severity, self.localization, self.populations)

    @cached_property
    def patient_reversal(self) -> PatientReversal | None:
        """The patient's one reversal plan, from every plan (not cut to a formulary)."""
        return patient_reversal(self.inputs, self.reversal)


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
        advised_against=against,
    )
