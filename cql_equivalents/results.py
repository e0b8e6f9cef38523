"""What the rules conclude, in one place: severity and the FRAME gate, localisation, populations and rules,
causes, calculations, phases, the haemostatic and reversal plans, and the Assessment that holds them all.

The records the readers take from FHIR are in model.py; each rule module (severity.py, reversal.py, ...) builds
the records below from them. Plain dataclasses and enums; their properties only read their own fields.
Over 300 lines on purpose: a catalogue of record types with no logic, read as one list of what the engine answers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property

from .model import ConditionFact, EngineInputs, Finding, MedicationUse, Observed, SourceEvidence, SupportInUse
from .tables import bleeding_beds, frame_routes
from .quick_frozen import quick_frozen

# What a phase input is (InputStatus.status) and whether a phase's advance condition holds (PhaseStatus.advance).
PRESENT, STALE, MISSING = "present", "stale", "missing"
MET, NOT_MET, NOT_READABLE = "met", "not met", "not readable from FHIR data"


@dataclass
class Calculation:
    name: str
    value: float | None  # None when nothing could be computed
    parts: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # inputs the record lacks (value is then a minimum or None)
    interpretation: str = ""
    source: str = ""


@dataclass(frozen=True)
class EffectWindow:
    drug_class: str
    hours: float
    lab: str
    lab_threshold: float | None
    source: str
    note: str  # the window's basis in a few words, for the card


@dataclass(frozen=True)
class Exposure:
    present: bool
    basis: str  # plain words for the card: what the decision rests on


@dataclass(frozen=True)
class Segment:
    reference: str
    rate_per_hour: float  # U/h (a U/kg/h rate is multiplied by the weight on record)
    start: datetime
    end: datetime
    ends_by: str  # what ended it, in plain words
    units_in_window: float


@dataclass
class HeparinExposure:
    window_hours: float
    units: float = 0.0
    boluses: list[tuple[str, float]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    needs: set[str] = field(default_factory=set)

    @property
    def references(self) -> list[str]:
        return list(dict.fromkeys([ref for ref, _ in self.boluses] + [s.reference for s in self.segments]))

    def text(self) -> str:
        parts = [f"bolus {units:g} U (`{ref}`)" for ref, units in self.boluses]
        parts += [f"{s.rate_per_hour:g} U/h from {s.start:%H:%M} to {s.end:%H:%M} UTC ({s.ends_by}): "
                  f"{s.units_in_window:g} U in the window (`{s.reference}`)" for s in self.segments]
        return "; ".join(parts + self.notes)


@dataclass(frozen=True)
class ContextFact:
    key: str  # pregnancy | do_not_resuscitate | palliative_care
    label: str
    reference: str
    at: datetime | None


@quick_frozen
@dataclass(frozen=True)
class CareContext:
    facts: tuple[ContextFact, ...]
    effects: tuple[dict, ...]  # care_context.toml [[effect]] rows of the contexts present

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(fact.key for fact in self.facts))

    @property
    def limits_escalation(self) -> bool:
        return any(effect["unrecommend"] for effect in self.effects)


@dataclass(frozen=True)
class PaediatricEmergency:
    reasons: tuple[str, ...]  # plain lines naming each value and record
    source: str


class Verdict(str, Enum):
    NONE = "none"  # no expectorated blood on record at all
    HEMOPTYSIS = "hemoptysis"  # FRAME passed: true hemoptysis
    ROUTE_AWAY = "route-away"  # hematemesis / pseudohemoptysis only
    UNCLEAR = "unclear"  # evidence both ways: confirm the source at the bedside


@dataclass
class FrameResult:
    verdict: Verdict
    hemoptysis: list[SourceEvidence] = field(default_factory=list)
    alternatives: list[SourceEvidence] = field(default_factory=list)
    decided_by_answer: bool = False

    @property
    def routes(self) -> list[str]:
        routes = frame_routes()
        return [routes[kind] for kind in dict.fromkeys(e.points_to for e in self.alternatives) if kind in routes]


class Level(str, Enum):
    NO_HEMOPTYSIS = "no-hemoptysis"
    NOT_ADULT = "not-adult"  # the engine's thresholds and doses are adult ones
    ROUTED_AWAY = "routed-away"  # FRAME gate: hematemesis / pseudohemoptysis
    SOURCE_UNCLEAR = "source-unclear"  # FRAME gate: evidence both ways
    MASSIVE = "massive"
    SEVERE_BY_MODIFIER = "severe-by-modifier"  # non-massive, raised by terrain or cause (seed 000)
    NON_MASSIVE = "non-massive"
    UNDETERMINED = "undetermined"  # hemoptysis with no physiology on record: massive not excluded


@quick_frozen
@dataclass(frozen=True)
class TriggerFired:
    key: str
    kind: str  # physiology | support | volume
    label: str
    value: float
    evidence: tuple[Observed, ...]
    source: str


@dataclass(frozen=True)
class ModifierFired:
    key: str
    kind: str  # terrain | cause
    label: str
    references: tuple[str, ...]
    source: str


@dataclass
class Severity:
    level: Level
    bleeding: list[ConditionFact] = field(default_factory=list)
    triggers: list[TriggerFired] = field(default_factory=list)
    missing_physiology: list[str] = field(default_factory=list)
    frame: FrameResult | None = None
    modifiers: list[ModifierFired] = field(default_factory=list)
    volume_triggers_below: list[str] = field(default_factory=list)  # volume readings present, no surrogate met
    # what drove the decision, as data: each fired trigger's value with its time, record and the support it was
    # taken on; all support in use (incl. baseline home oxygen); the terrain-adjusted cut-offs that were applied
    drivers: list[Observed] = field(default_factory=list)
    support: list[SupportInUse] = field(default_factory=list)
    thresholds_adjusted: list[str] = field(default_factory=list)

    @property
    def fired_by(self) -> str:
        """Which kind of trigger made the bleed massive: physiology, support, volume, or '' (not massive)."""
        return self.triggers[0].kind if self.level is Level.MASSIVE and self.triggers else ""


@dataclass
class Localization:
    studies: list[Finding] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)  # right / left, from report text cues
    beds: list[str] = field(default_factory=list)  # bleeding bed named by a report
    active_bleeding_seen: list[Finding] = field(default_factory=list)
    quiescent_negatives: list[Finding] = field(default_factory=list)

    @property
    def side(self) -> str:
        return self.sides[0] if len(self.sides) == 1 else ("bilateral / conflicting" if self.sides else "")

    @property
    def localized(self) -> bool:
        """Side localised by CTA or bronchoscopy (a CXR is a clue, never the endpoint; seed 004 phase 5)."""
        return any(("lateral_right" in s.cues or "lateral_left" in s.cues) and s.key != "cxr" for s in self.studies)

    @property
    def repeat_during_active_bleeding(self) -> bool:
        # a diffuse (DAH) pattern explains a negative search for a bleeding vessel: no repeat is asked for
        return bool(self.quiescent_negatives) and not self.localized and bleeding_beds()["diffuse_alveolar"] not in self.beds


@quick_frozen
@dataclass(frozen=True)
class PopulationMatch:
    key: str
    label: str
    summary: str
    bae: str  # target | not-target | pa-targeted
    sibling: str
    steps: tuple[str, ...]
    evidence: tuple[str, ...]  # human lines naming each record that matched
    source: str
    advises_against: tuple[str, ...] = ()  # orders (orders.toml keys) this population's path rules out


@quick_frozen
@dataclass(frozen=True)
class RuleApplied:
    key: str
    intervention: str
    kind: str
    text: str
    because: tuple[str, ...]
    source: str
    advises_against: tuple[str, ...] = ()  # orders (orders.toml keys) a card showing this rule rules out


@dataclass
class CauseGroup:
    engine_id: str  # "" when the dossier names no sibling engine
    engine: dict | None
    facts: list[ConditionFact] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return sorted({fact.concept.label for fact in self.facts})


@dataclass(frozen=True)
class ImagingCause:
    cue: str
    label: str
    engines: tuple[str, ...]
    study: str  # the finding's label (CT of the chest, CT angiography...)
    reference: str
    at: datetime | None
    source: str


@dataclass
class InputStatus:
    name: str
    required: bool
    status: str  # present | stale | missing
    evidence: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # parts missing from a present composite input


@dataclass
class PhaseStatus:
    order: int
    key: str
    present: list[str]
    missing: list[str]
    stale: list[str]
    advance: str  # met | not met | not readable from FHIR data
    why: str


@dataclass
class EntryPoint:
    key: str
    label: str
    met: bool
    evidence: list[str]


@dataclass
class PhaseReport:
    inputs: dict[str, InputStatus]
    entry_points: list[EntryPoint]
    phases: list[PhaseStatus]

    @property
    def current_phase(self) -> PhaseStatus | None:
        """The first phase whose advance condition is not met (phases FHIR cannot show are skipped)."""
        return next((phase for phase in self.phases if phase.advance == NOT_MET), None)


@dataclass(frozen=True)
class OffTarget:
    key: str
    observed: Observed
    row: dict
    quantity_text: str = ""  # a weight-based amount computed from the record, or what is missing for it
    needs: tuple[str, ...] = ()


@dataclass
class HaemostaticPlan:
    off_target: list[OffTarget] = field(default_factory=list)
    conditions: list[tuple[dict, list[str]]] = field(default_factory=list)  # (haemostasis.toml row, references)
    skipped: list[str] = field(default_factory=list)  # targets not applied, and why
    advised_against: dict[str, RuleApplied] = field(default_factory=dict)

    @property
    def orders(self) -> list[str]:
        """The first-choice product of each off-target value (recommended when bleeding is massive)."""
        keys = [item.row["order"] for item in self.off_target]
        return [key for key in dict.fromkeys(keys) if key not in self.advised_against]

    @property
    def not_recommended(self) -> set[str]:
        """Orders a condition on record leaves to a specialist (HIT: platelets with haematology)."""
        return {key for row, _ in self.conditions for key in row.get("not_recommended", ())}

    @property
    def alternatives(self) -> list[str]:
        """Alternatives to a first choice (cryoprecipitate for fibrinogen concentrate): offered, never recommended."""
        keys = [item.row["also_order"] for item in self.off_target if item.row.get("also_order")]
        return [key for key in dict.fromkeys(keys) if key not in self.advised_against and key not in self.orders]


@quick_frozen
@dataclass(frozen=True)
class DoseLine:
    agent: str
    dose: str
    note: str
    source: str
    needs: tuple[str, ...] = ()  # inputs the record lacks for this dose
    # For an order (hooks/suggestions.py): the orders.toml key and the computed amount in that row's unit;
    # quantity stays None when the dose cannot be computed from the record.
    order: str = ""
    quantity: float | None = None
    product: str = ""  # orders.toml key of what the step gives (offered as an order or not)
    none_due: bool = False  # the record shows the drug given, but none inside the dose window (no dose is due)


@dataclass
class ReversalPlan:
    agent: str
    drug_class: str
    class_label: str
    uses: list[MedicationUse]
    lab_label: str
    lab: Observed | None
    lab_note: str
    steps: list[DoseLine] = field(default_factory=list)
    source: str = ""
    urgency: int = 99  # reversal.toml `urgency`: lower comes first on the patient's one reversal card


@quick_frozen
@dataclass(frozen=True)
class PlanContext:
    """What the plan needs besides the record: whether a procedure is expected (massive hemoptysis: bronchoscopy,
    embolisation), the platelet target of the haemostatic plan, and the products a rule advises against."""

    procedure_expected: bool = False
    platelet_target: float | None = None
    advised_against: dict = field(default_factory=dict)  # orders.toml key -> RuleApplied


@quick_frozen
@dataclass(frozen=True)
class OrderLine:
    """One order of the patient's plan: the dose line it comes from and every agent it serves."""

    line: DoseLine
    agents: tuple[str, ...]


@dataclass(frozen=True)
class RecentStent:
    reference: str
    label: str
    days_ago: int | None
    rule: dict


@dataclass
class PatientReversal:
    plans: list[ReversalPlan]
    orders: list[OrderLine] = field(default_factory=list)
    stent: RecentStent | None = None

    @property
    def agents(self) -> list[str]:
        return [plan.agent for plan in self.plans]

    def first_for(self, key: str) -> str:
        """The agent under which a shared order is written out on the card."""
        return next(order.agents[0] for order in self.orders if order.line.order == key)


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

    # Worked out when asked: no card shows them (the CQL agreement, the documentation and the tests read them),
    # and together they were ~4 % of a call. engine.assess says how (this module imports no rule module).
    make_phases: Callable[[], PhaseReport] | None = field(default=None, repr=False, compare=False)
    make_patient_reversal: Callable[[], PatientReversal | None] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def phases(self) -> PhaseReport:
        """The entry points and the 12 phases (mirrors the phase report of MassiveHemoptysisEngine.cql)."""
        if self.make_phases is None:
            raise ValueError("this assessment was not made by engine.assess: no phase report")
        return self.make_phases()

    @cached_property
    def patient_reversal(self) -> PatientReversal | None:
        """The patient's one reversal plan before the site's formulary (the cards use the stocked one)."""
        return self.make_patient_reversal() if self.make_patient_reversal is not None else None
