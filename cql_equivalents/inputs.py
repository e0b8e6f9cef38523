"""Maps the FHIR resources of one hook call onto the engine's inputs (mirrors MassiveHemoptysisInputs.cql).

Rules: the newest valid value wins; entered-in-error / cancelled records never count; a value outside its
plausible range or in an unknown unit is rejected and named; every value keeps the id and time of the
resource it came from. Only resources that match a wanted code are validated with fhir.resources.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation

from . import fhir_valid
from .code_memo import CodeMemo
from .fhir_select import (
    ResourcePool, codings, concept_text, effective_time, parse_instant, status_code,
)
from . import drug_exposure as exposure
from .drug_terms import agent_of, concept_words
from .observation_reading import (
    FUTURE_TOLERANCE, STATUSES_THAT_COUNT, Candidate, Ranking, choose, newest_first, read_raw,
)
from .recency import is_recent_episode
from .tables import ICD10_SYSTEMS, LOINC, SNOMED, Agent, ConditionConcept, load, tables
from .terminology import active as site_terminology

# Observation.status values whose result stands (FHIR R4 observation-status). entered-in-error, cancelled,
# registered (no result yet) and unknown never count.
OBSERVATION_STATUSES_THAT_COUNT = STATUSES_THAT_COUNT
# MedicationStatement / MedicationRequest status that mean "the patient is taking it now".
MEDICATION_STATUSES_ACTIVE = frozenset({"active"})
CONDITION_CLINICAL_ACTIVE = frozenset({"active", "recurrence", "relapse"})
CONDITION_VERIFICATION_EXCLUDED = frozenset({"entered-in-error", "refuted"})
# MedicationAdministration.status values meaning the dose was (or is being) given.
ADMINISTRATION_STATUSES_GIVEN = frozenset({"completed", "in-progress"})
# An infusion "stopped" or "on-hold" ends (or pauses) the heparin running before it: read for the
# protamine interval arithmetic only (cql_equivalents/heparin_infusion.py), never as a dose given.
ADMINISTRATION_STATUSES_ENDING = frozenset({"stopped", "on-hold"})
# An administration this recent makes the patient "on" the agent even with no active statement or order:
# the longest-acting agents of the table (VKA) act for days. Engine rule; the sources are silent.
ADMINISTRATION_LOOKBACK = timedelta(hours=72)


@dataclass(frozen=True)
class Observed:
    input: str
    label: str
    value: float
    unit: str
    at: datetime | None
    reference: str
    note: str = ""


@dataclass(frozen=True)
class Rejected:
    reference: str
    reason: str
    input: str = ""  # the engine input it was a candidate for, when it was one


# Rejected records kept per (input, kind) for the card; the rest are counted ("412 more SpO2 records in an
# unknown unit"), so a chart of 50,000 unusable values costs counters, not 50,000 lines.
REJECTED_SHOWN_PER_KIND = 3


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


@dataclass(frozen=True)
class ConditionFact:
    concept: ConditionConcept
    reference: str
    at: datetime | None
    text: str
    matched_by: str = "code"


@dataclass(frozen=True)
class MedicationUse:
    agent: Agent
    reference: str
    status: str
    at: datetime | None
    matched_by: str
    text: str
    basis: str = ""  # why a record that is not active still counts (drug_exposure), in plain words


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
    findings: list[Any] = field(default_factory=list)  # findings.Finding
    volumes: dict[str, Any] = field(default_factory=dict)  # findings.VolumeReading by kind
    blood_source: list[Any] = field(default_factory=list)  # findings.SourceEvidence
    vasopressors: list[Any] = field(default_factory=list)  # findings.VasopressorUse
    age_years: int | None = None
    # beyond REJECTED_SHOWN_PER_KIND: how many more were rejected, by (input label, kind)
    rejected_more: dict[tuple[str, str], int] = field(default_factory=dict)
    unusable_inputs: set[str] = field(default_factory=set)  # inputs with a candidate that was sent but rejected
    unreadable_keys: dict[str, str] = field(default_factory=dict)  # prefetch keys not read at all (key: why)
    truncated_keys: dict[str, str] = field(default_factory=dict)  # searches cut short by paging (key: what was read)
    # the worst valid value of an input within the episode window (support.toml [window]), by direction
    # ("low" | "high"): what the triggers judge, while `observations` keeps the newest for the calculators
    worst: dict[tuple[str, str], Observed] = field(default_factory=dict)
    support: list[Any] = field(default_factory=list)  # support.SupportInUse read from devices and drugs
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

    def findings_for(self, input_name: str) -> list[Any]:
        return [finding for finding in self.findings if finding.input == input_name]

    def finding(self, key: str) -> Any:
        return next((finding for finding in self.findings if finding.key == key and not finding.stale), None)

    def conditions_with_key(self, *keys: str) -> list[ConditionFact]:
        return [fact for fact in self.conditions if fact.concept.key in keys]

    def value(self, name: str) -> float | None:
        observed = self.observations.get(name)
        return observed.value if observed else None

    def conditions_with_role(self, role: str) -> list[ConditionFact]:
        return [fact for fact in self.conditions if fact.concept.role == role]


def reference_of(resource: Mapping[str, Any]) -> str:
    found = resource.get("id", "(no id)")
    shown = found if type(found) is str and len(found) <= 64 else "(id not valid)"
    return f"{resource.get('resourceType')}/{shown}"


# What reading a malformed value raises (a list where a code belongs, an int where a list belongs, nesting too
# deep). The record is skipped and named; the other records, and the other cards, are read as usual.
MALFORMED = (TypeError, AttributeError, ValueError, KeyError, IndexError, RecursionError)


@contextmanager
def skipped_if_malformed(inputs: EngineInputs, raw: Mapping[str, Any]) -> Iterator[None]:
    try:
        yield
    except MALFORMED as error:
        inputs.reject(reference_of(raw), f"malformed FHIR ({type(error).__name__} while reading it): skipped",
                      kind="malformed")


def _phase(inputs: EngineInputs, what: str, read: Callable[[], None]) -> None:
    """Last line of defence: a phase that trips on malformed content loses its own data, not the call."""
    try:
        read()
    except MALFORMED as error:
        inputs.problems.append(f"some {what} could not be read: malformed FHIR ({type(error).__name__}); skipped")


_first_error = fhir_valid._first_error  # kept: other modules import it from here


def map_inputs(pool: ResourcePool, now: datetime) -> EngineInputs:
    from .findings import map_findings  # findings reads EngineInputs; imported here to keep one entry point

    inputs = EngineInputs(now=now, problems=list(pool.problems), unreadable_keys=dict(pool.unusable_keys),
                          truncated_keys=dict(pool.truncated))
    for reference, why in pool.unreadable:
        inputs.reject(reference, why, kind="unreadable")
    _phase(inputs, "Patient data", lambda: _map_patient(pool, inputs))
    _phase(inputs, "Observations", lambda: _map_observations(pool, inputs))
    _phase(inputs, "Conditions", lambda: _map_conditions(pool, inputs))
    _phase(inputs, "medications", lambda: _map_medications(pool, inputs))
    _phase(inputs, "administrations", lambda: _map_administrations(pool, inputs))
    _phase(inputs, "exposures", lambda: _map_exposures(pool, inputs))
    map_findings(pool, inputs)
    from .support import map_support  # support reads findings (mechanical ventilation) and vasopressors
    map_support(pool, inputs)
    inputs.rejected = list(dict.fromkeys(inputs.rejected))  # a record read by two selections is named once
    return inputs


def _map_patient(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Age in whole years at `now`, from Patient.birthDate (HAS-BLED 'elderly')."""
    for raw in pool.of("Patient"):
        born = parse_instant(raw.get("birthDate"))
        if born is None:
            continue
        years = inputs.now.year - born.year - ((inputs.now.month, inputs.now.day) < (born.month, born.day))
        if 0 <= years <= 130:
            inputs.age_years = years
        return


def too_far_in_future(at: datetime | None, now: datetime) -> bool:
    return at is not None and at > now + FUTURE_TOLERANCE


def is_stale(at: datetime | None, now: datetime, fresh_hours: float) -> bool:
    """Older than its window, or with no time at all (a value with no time cannot be shown to be current)."""
    return at is None or now - at > timedelta(hours=fresh_hours)


# ---------------------------------------------------------------------------------------------- observations

def _observation_candidates(pool: ResourcePool) -> dict[str, list[Candidate]]:
    table = tables()
    candidates: dict[str, list[Candidate]] = {}
    wanted_codes = frozenset(table.loinc_to_input) | table.panel_loinc  # ~20 codes: a microsecond per call
    # pool.coded hands the same list for every resource of one distinct code: what it means is worked out once
    direct_inputs: dict[int, tuple[tuple[str, ...], bool]] = {}
    alive: list = []  # every list keyed by id() stays alive for the loop, so no id is reused
    for resource, loinc_codes in pool.coded("Observation", LOINC, wanted_codes):
        known = direct_inputs.get(id(loinc_codes))
        if known is None:
            names = tuple(dict.fromkeys(table.loinc_to_input[code] for code in loinc_codes if code in table.loinc_to_input))
            known = direct_inputs[id(loinc_codes)] = (names, any(code in table.panel_loinc for code in loinc_codes))
            alive.append(loinc_codes)
        names, panel = known
        at = effective_time(resource)
        for name in names:
            found = candidates.get(name)
            if found is None:
                candidates[name] = [Candidate(name, at, resource, None)]
            else:
                found.append(Candidate(name, at, resource, None))
        if panel:
            seen = set(names)
            components = resource.get("component")
            for component in components if type(components) is list else ():
                for coding in codings(component.get("code") if type(component) is dict else None):
                    code = coding.get("code")
                    name = table.component_loinc_to_input.get(code) if type(code) is str else None
                    if coding.get("system") == LOINC and name and name not in seen:
                        seen.add(name)
                        candidates.setdefault(name, []).append(Candidate(name, at, resource, code, "", component))
    if site_terminology():  # a site's own codes (ConceptMap): the card says "mapped from local code X"
        for resource, mapped in pool.matching("Observation", _site_input, memo=_SITE_INPUTS):
            candidates.setdefault(mapped.concept, []).append(
                Candidate(mapped.concept, effective_time(resource), resource, None, mapped.note))
    return candidates


_SITE_INPUTS = CodeMemo("site ConceptMap -> observation input")


def _site_input(resource: dict):
    mapped = site_terminology().concept_of(resource.get("code"), "observation")
    return mapped if mapped and mapped.concept in tables().observation_inputs else None


# How each input's candidates are ranked (the first valid one is used). Newest first unless a row says otherwise.
OBSERVATION_RANKINGS: dict[str, Ranking] = {}


def worst_directions() -> dict[str, tuple[str, ...]]:
    """Which inputs are judged by their worst value in the episode, and in which direction: every input a
    physiologic trigger (triggers.toml) or a support setting (support.toml) compares."""
    directions: dict[str, list[str]] = {}
    rows = [row for row in load("triggers")["trigger"] if row["kind"] == "physiology"]
    for row in (*rows, *load("support")["setting"]):
        direction = "low" if row["op"] in ("<=", "<") else "high"
        directions.setdefault(row["input"], [])
        if direction not in directions[row["input"]]:
            directions[row["input"]].append(direction)
    return {name: tuple(found) for name, found in directions.items()}


def _observed(spec, reading) -> Observed:
    candidate = reading.candidate
    note = "; ".join(part for part in (candidate.note, reading.note) if part)
    return Observed(spec.name, spec.label, reading.value, spec.unit, candidate.at, reference_of(candidate.resource), note)


def _report_passed_over(inputs: EngineInputs, name: str, passed_over) -> None:
    for reading in passed_over:
        if reading.kind and not inputs.counted_only(name, reading.kind):
            inputs.reject(reference_of(reading.candidate.resource), str(reading.rejection), input=name, kind=reading.kind)


def _map_worst(name: str, spec, found: list[Candidate], inputs: EngineInputs, validate, named: set[int]) -> None:
    """The worst valid value of the episode window per direction (support.toml [window], an engine choice):
    ranked on the raw value (cheap), then the first valid one is validated, as for the newest."""
    hours = load("support")["window"]["worst_hours"]
    start, end = inputs.now - timedelta(hours=hours), inputs.now + FUTURE_TOLERANCE
    in_window = [c for c in found if c.at is not None and start <= c.at <= end]
    if len(in_window) < 2:
        return  # the newest is the only value of the episode
    readings = [read_raw(candidate, spec, inputs.now) for candidate in in_window]
    usable = [reading for reading in readings if not reading.rejection and not reading.bound]
    # a value of the episode that cannot be used (implausible, unknown unit...) could have been the worst: named
    unused = [reading for reading in readings if reading.rejection and id(reading.candidate.resource) not in named]
    named.update(id(reading.candidate.resource) for reading in unused)
    _report_passed_over(inputs, name, unused)
    for direction in worst_directions().get(name, ()):
        sign = 1 if direction == "low" else -1
        choice = choose(sorted(usable, key=lambda reading: sign * reading.value), validate)
        # an invalid worst value is named, not dropped; a record the newest pass named already is not counted twice
        fresh = [reading for reading in choice.passed_over if id(reading.candidate.resource) not in named]
        named.update(id(reading.candidate.resource) for reading in fresh)
        _report_passed_over(inputs, name, fresh)
        if choice.chosen is not None:
            inputs.worst[(name, direction)] = _observed(spec, choice.chosen)


def _map_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    specs = tables().observation_inputs
    validated: dict[int, tuple[Any, str]] = {}  # a BP panel feeds two inputs: validated once

    def validate(raw: dict) -> tuple[Any, str]:
        found = validated.get(id(raw))  # id() is stable: the pool holds every resource for the whole call
        if found is None:
            found = validated[id(raw)] = fhir_valid.validate(Observation, raw)
        return found

    judged_by_worst = worst_directions()
    for name, found in _observation_candidates(pool).items():
        spec = specs[name]
        rank = OBSERVATION_RANKINGS.get(name, newest_first)
        choice = choose(rank(found, lambda candidate: read_raw(candidate, spec, inputs.now)), validate)
        _report_passed_over(inputs, name, choice.passed_over)
        if name in judged_by_worst:
            _map_worst(name, spec, found, inputs, validate, {id(r.candidate.resource) for r in choice.passed_over})
        reading = choice.chosen
        if reading is None:
            continue
        reference = reference_of(reading.candidate.resource)
        if reading.bound:
            # the newest valid result is a bound ("> 8"): older values are not current any more
            inputs.reject(reference, f"{spec.label} is reported as '{reading.bound}': a bound, not a value the engine "
                                     "can use", input=name, kind="bound")
            continue
        observed = _observed(spec, reading)
        if is_stale(observed.at, inputs.now, spec.fresh_hours):
            inputs.stale[name] = observed  # the newest valid value is stale: older ones are staler
        else:
            inputs.observations[name] = observed


# ---------------------------------------------------------------------------------------------- conditions

def _condition_concept(concept: Any) -> tuple[ConditionConcept, str] | None:
    table = tables()
    mapped = site_terminology().concept_of(concept, "condition")
    if mapped:
        return table.conditions_by_key[mapped.concept], mapped.note
    for coding in codings(concept):
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(code, str):
            continue
        if system == SNOMED and code in table.snomed_to_condition:
            return table.snomed_to_condition[code], "code"
        if system in ICD10_SYSTEMS:
            if code in table.icd10_to_condition:
                return table.icd10_to_condition[code], "code"
            for prefix, found in table.icd10_prefix_to_condition:
                if code.startswith(prefix):
                    return found, "code"
    text = " ".join([concept_text(concept), *(str(c.get("display", "")) for c in codings(concept))]).lower()
    if text.strip():
        for word, found in table.words_to_condition:
            if word in text:
                return found, f"text '{word}' (no recognised code)"
    return None


def _map_conditions(pool: ResourcePool, inputs: EngineInputs) -> None:
    for raw in pool.of("Condition"):
        with skipped_if_malformed(inputs, raw):
            match = _condition_concept(raw.get("code"))
            if match is None:
                continue
            concept, matched_by = match
            reference = reference_of(raw)
            verification = status_code(raw.get("verificationStatus"))
            if verification in CONDITION_VERIFICATION_EXCLUDED:
                continue
            clinical = status_code(raw.get("clinicalStatus"))
            if clinical is not None and clinical not in CONDITION_CLINICAL_ACTIVE:
                continue  # resolved / inactive / remission
            if concept.role == "bleeding" and not is_recent_episode(raw, pool, inputs.now):
                inputs.old_bleeding.append(reference)  # an old problem-list entry: history, not this episode
                continue
            model, why = fhir_valid.validate(Condition, raw)
            if model is None:
                inputs.reject(reference, why, input=concept.key)
                continue
            inputs.conditions.append(ConditionFact(concept, reference, effective_time(raw), concept_text(raw.get("code")),
                                                   matched_by))


# ---------------------------------------------------------------------------------------------- medications

def _agent_of(concept: Any) -> tuple[Agent, str] | None:
    return agent_of(concept)  # drug_terms: the one matcher for drug codes and text


def _medication_concept(raw: Mapping[str, Any], pool: ResourcePool) -> Any:
    if "medicationCodeableConcept" in raw:
        return raw["medicationCodeableConcept"]
    pointer = raw.get("medicationReference")
    reference = pointer.get("reference") if type(pointer) is dict else None
    if not isinstance(reference, str):
        return None
    if reference.startswith("#"):
        contained_resources = raw.get("contained")
        for contained in contained_resources if type(contained_resources) is list else ():
            if isinstance(contained, Mapping) and contained.get("id") == reference[1:]:
                return contained.get("code")
        return None
    medication = pool.by_reference.get(reference)
    return medication.get("code") if medication else None


def _text(value: Any) -> str:
    """A member that must be a string, or "" (a list or number where a code belongs is not a match, nor a 500)."""
    return value if type(value) is str else ""


def _map_medications(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type, model in (("MedicationStatement", MedicationStatement), ("MedicationRequest", MedicationRequest)):
        for raw in pool.of(resource_type):
            with skipped_if_malformed(inputs, raw):
                status = raw.get("status")
                if type(status) is not str or status not in MEDICATION_STATUSES_ACTIVE or raw.get("doNotPerform") is True:
                    continue  # a record that is not active may still count by its effect: _map_exposures
                concept = _medication_concept(raw, pool)
                match = _agent_of(concept)
                if match is None:
                    continue
                reference = reference_of(raw)
                valid, why = fhir_valid.validate(model, raw)
                if valid is None:
                    inputs.reject(reference, why, input=f"agent:{match[0].name}")
                    continue
                agent, matched_by = match
                flush = exposure.flush_reason(raw, agent, concept_words(concept))
                if flush:
                    inputs.rejected.append(Rejected(reference, flush))
                    continue
                inputs.medications.append(MedicationUse(
                    agent, reference, status, effective_time(raw), matched_by, concept_text(concept) or agent.name))


def _map_exposures(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Statements and orders that are not active (on hold, stopped, completed) but whose effect may be present:
    the lab that measures it and the time since the last dose decide (drug_exposure, exposure.toml)."""
    for resource_type, model in (("MedicationStatement", MedicationStatement), ("MedicationRequest", MedicationRequest)):
        for raw in pool.of(resource_type):
            with skipped_if_malformed(inputs, raw):
                if not exposure.paused_or_ended(raw) or raw.get("doNotPerform") is True:
                    continue
                concept = _medication_concept(raw, pool)
                match = _agent_of(concept)
                if match is None:
                    continue
                agent, matched_by = match
                reference = reference_of(raw)
                if any(use.reference == reference for use in inputs.medications):
                    continue
                valid, why = fhir_valid.validate(model, raw)
                if valid is None:
                    inputs.reject(reference, why, input=f"agent:{agent.name}")
                    continue
                if exposure.flush_reason(raw, agent, concept_words(concept)):
                    continue  # a flush that is not even active: nothing to say
                given = exposure.newest_administration(inputs.administrations, agent)
                judged = exposure.judge(raw, agent, raw["status"], inputs.observations, inputs.now, given)
                if judged.present:
                    inputs.medications.append(MedicationUse(
                        agent, reference, raw["status"], effective_time(raw), matched_by,
                        concept_text(concept) or agent.name, judged.basis))


def _quantity(value: Any) -> tuple[float | None, str]:
    if isinstance(value, Mapping) and isinstance(value.get("value"), (int, float)):
        return float(value["value"]), str(value.get("code") or value.get("unit") or "")
    return None, ""


def _map_administrations(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Doses actually given: the last-dose time and strength that andexanet and protamine dosing need."""
    for raw in pool.of("MedicationAdministration"):
        with skipped_if_malformed(inputs, raw):
            status = raw.get("status")
            if type(status) is not str or status not in ADMINISTRATION_STATUSES_GIVEN | ADMINISTRATION_STATUSES_ENDING:
                continue
            match = _agent_of(_medication_concept(raw, pool))
            if match is None:
                continue
            reference = reference_of(raw)
            at = effective_time(raw)
            if too_far_in_future(at, inputs.now):
                inputs.rejected.append(Rejected(reference, "administration dated in the future"))
                continue
            valid, why = fhir_valid.validate(MedicationAdministration, raw)
            if valid is None:
                inputs.reject(reference, why, input=f"agent:{match[0].name}")
                continue
            agent, matched_by = match
            flush = exposure.flush_reason(raw, agent, concept_words(_medication_concept(raw, pool)))
            if flush:
                inputs.rejected.append(Rejected(reference, flush))
                continue
            dosage = raw.get("dosage") if type(raw.get("dosage")) is dict else {}
            dose, dose_unit = _quantity(dosage.get("dose"))
            rate, rate_unit = _quantity(dosage.get("rateQuantity"))
            period = raw.get("effectivePeriod") if type(raw.get("effectivePeriod")) is dict else {}
            started = parse_instant(period.get("start")) or parse_instant(raw.get("effectiveDateTime"))
            request = (raw.get("request") or {}).get("reference") if type(raw.get("request")) is dict else None
            inputs.administrations.append(DoseGiven(agent, reference, at, dose, dose_unit, rate, rate_unit, started,
                                                    parse_instant(period.get("end")), status,
                                                    request if isinstance(request, str) else ""))
            if status not in ADMINISTRATION_STATUSES_GIVEN:
                continue  # a stop / hold record ends an infusion (heparin_infusion.py); it is not a dose given
            lookback = max(ADMINISTRATION_LOOKBACK, exposure.administration_lookback(agent))
            recent = at is not None and inputs.now - at <= lookback
            if recent and not exposure.lab_says_no_effect(agent, inputs.observations) \
                    and not any(use.agent.name == agent.name for use in inputs.medications):
                hours = round((inputs.now - at) / timedelta(hours=1), 1)
                inputs.medications.append(MedicationUse(
                    agent, reference, "administered", at, matched_by,
                    concept_text(_medication_concept(raw, pool)) or agent.name,
                    f"given {hours:g} h ago (within the {lookback / timedelta(hours=1):g} h look-back)"))


__all__ = ["DoseGiven", "EngineInputs", "Observed", "Rejected", "ConditionFact", "MedicationUse", "map_inputs", "parse_instant"]
