"""The records the engine reads, in one place: what the readers take from the FHIR resources of one hook call
(EngineInputs and the values, conditions, drugs, findings and support it holds). What the rules conclude from
them is in results.py.

Every reader (cql_equivalents/readers/) fills these; every rule module reads them. Frozen dataclasses except
EngineInputs, which the readers fill in turn (a later reader reads what an earlier one found: exposures read the
administrations and labs, support reads the findings) and which counts rejected records per kind as it goes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .tables import Agent, ConditionConcept
from .quick_frozen import quick_frozen

# Rejected records kept per (input, kind) for the card; the rest are counted ("412 more SpO2 records in an
# unknown unit"), so a chart of 50,000 unusable values costs counters, not 50,000 lines.
REJECTED_SHOWN_PER_KIND = 3


@quick_frozen
@dataclass(frozen=True)
class Observed:
    """A value read from one record: which input, when, from which record. As a value that drove the decision
    (Severity.drivers) it also carries the support it was taken on and the newest value of the same input when
    the worst one decided."""

    input: str
    label: str
    value: float
    unit: str
    at: datetime | None
    reference: str
    note: str = ""
    on_support: tuple[str, ...] = ()
    newest: Observed | None = None


@dataclass(frozen=True)
class Rejected:
    reference: str
    reason: str
    input: str = ""  # the engine input it was a candidate for, when it was one


@dataclass(frozen=True)
class DoseGiven:
    """One administration of an antithrombotic: when, and how much (dose and/or infusion rate) if recorded."""

    agent: Agent
    reference: str
    at: datetime | None
    dose: float | None
    dose_unit: str
    rate: float | None
    rate_unit: str
    # an infusion segment: effectivePeriod start / end as sent (protamine counts rate x time inside its window),
    # the administration status, and the order it belongs to (rate changes of one infusion share it)
    started: datetime | None = None
    ended: datetime | None = None
    status: str = ""
    request: str = ""


@quick_frozen
@dataclass(frozen=True)
class ConditionFact:
    concept: ConditionConcept
    reference: str
    at: datetime | None
    text: str
    matched_by: str = "code"


@quick_frozen
@dataclass(frozen=True)
class MedicationUse:
    agent: Agent
    reference: str
    status: str
    at: datetime | None
    matched_by: str
    text: str
    basis: str = ""  # why a record that is not active still counts (drug_exposure), in plain words


@dataclass(frozen=True)
class Finding:
    key: str
    input: str  # the dossier input it feeds ("" when it only feeds an entry point / population)
    label: str
    reference: str
    at: datetime | None
    result: str  # positive | negative | done | unknown
    cues: tuple[str, ...]
    matched_by: str
    stale: bool
    source: str


@dataclass(frozen=True)
class VolumeReading:
    kind: str  # single | hourly | daily
    ml: float
    at: datetime | None
    reference: str
    note: str


@quick_frozen
@dataclass(frozen=True)
class SourceEvidence:
    points_to: str  # hemoptysis | hematemesis | pseudohemoptysis
    label: str
    reference: str
    explicit: bool  # an answer naming the source, not a feature


@dataclass(frozen=True)
class VasopressorUse:
    name: str
    reference: str
    rate: float | None  # ug/kg/min when recorded in that unit
    matched_by: str
    at: datetime | None = None
    running: bool = True  # an in-progress administration or an active order; False: completed, given at `at`


@dataclass(frozen=True)
class SupportInUse:
    key: str
    kind: str  # respiratory | haemodynamic | baseline
    label: str
    detail: str  # what the record says ("FiO2 60 %", "norepinephrine infusion")
    reference: str
    at: datetime | None
    compromise: bool  # counts as life-threatening compromise (home oxygen and terlipressin do not)
    matched_by: str
    source: str

    def as_observed(self) -> Observed:
        """The support as trigger evidence, in the shape the cards already list (value 1 = present)."""
        return Observed(f"support:{self.key}", self.detail, 1.0, "", self.at, self.reference, self.matched_by)


@dataclass
class EngineInputs:
    now: datetime
    observations: dict[str, Observed] = field(default_factory=dict)
    conditions: list[ConditionFact] = field(default_factory=list)
    medications: list[MedicationUse] = field(default_factory=list)
    administrations: list[DoseGiven] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # newest valid value of an input, when it is older than the input's freshness window (not used as current)
    stale: dict[str, Observed] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    volumes: dict[str, VolumeReading] = field(default_factory=dict)  # by kind
    blood_source: list[SourceEvidence] = field(default_factory=list)
    vasopressors: list[VasopressorUse] = field(default_factory=list)
    age_years: int | None = None
    # beyond REJECTED_SHOWN_PER_KIND: how many more were rejected, by (input label, kind)
    rejected_more: dict[tuple[str, str], int] = field(default_factory=dict)
    unusable_inputs: set[str] = field(default_factory=set)  # inputs with a candidate that was sent but rejected
    unreadable_keys: dict[str, str] = field(default_factory=dict)  # prefetch keys not read at all (key: why)
    truncated_keys: dict[str, str] = field(default_factory=dict)  # searches cut short by paging (key: what was read)
    # the worst valid value of an input within the episode window (support.toml [window]), by direction
    # ("low" | "high"): what the triggers judge, while `observations` keeps the newest for the calculators
    worst: dict[tuple[str, str], Observed] = field(default_factory=dict)
    support: list[SupportInUse] = field(default_factory=list)  # read from devices and drugs
    old_bleeding: list[str] = field(default_factory=list)  # hemoptysis Conditions outside the recency window
    _shown: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def counted_only(self, input: str, kind: str) -> bool:
        """True when this rejection is past the cap: counted here, not listed (the caller need not name it)."""
        key = (input, kind)
        if self._shown.get(key, 0) < REJECTED_SHOWN_PER_KIND:
            return False
        self.unusable_inputs.add(input)
        self.rejected_more[key] = self.rejected_more.get(key, 0) + 1
        return True

    def count_more(self, input: str, kind: str, more: int) -> None:
        """`more` rejections of a kind already past its cap (counted_only said so for one of them)."""
        if more:
            self.rejected_more[(input, kind)] = self.rejected_more.get((input, kind), 0) + more

    def reject(self, reference: str, reason: str, *, input: str = "", kind: str = "") -> None:
        """Name a record not used; for a candidate of an input, kept per kind up to REJECTED_SHOWN_PER_KIND."""
        if input:
            self.unusable_inputs.add(input)
        if kind:
            key = (input, kind)
            shown = self._shown.get(key, 0)
            if shown >= REJECTED_SHOWN_PER_KIND:
                self.rejected_more[key] = self.rejected_more.get(key, 0) + 1
                return
            self._shown[key] = shown + 1
        self.rejected.append(Rejected(reference, reason, input))

    def extreme(self, name: str, direction: str) -> Observed | None:
        """The worst value of the episode in this direction, else the newest."""
        return self.worst.get((name, direction)) or self.observations.get(name)

    def finding(self, key: str) -> Finding | None:
        return next((finding for finding in self.findings if finding.key == key and not finding.stale), None)

    def conditions_with_key(self, *keys: str) -> list[ConditionFact]:
        return [fact for fact in self.conditions if fact.concept.key in keys]

    def value(self, name: str) -> float | None:
        observed = self.observations.get(name)
        return observed.value if observed else None

    def conditions_with_role(self, role: str) -> list[ConditionFact]:
        return [fact for fact in self.conditions if fact.concept.role == role]
