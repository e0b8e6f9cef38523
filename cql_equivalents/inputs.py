"""Maps the FHIR resources of one hook call onto the engine's inputs (mirrors MassiveHemoptysisInputs.cql).

Rules: the newest valid value wins; entered-in-error / cancelled records never count; a value outside its
plausible range or in an unknown unit is rejected and named; every value keeps the id and time of the
resource it came from. Only resources that match a wanted code are validated with fhir.resources.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from .fhir_select import (
    ResourcePool, codings, concept_text, effective_time, first_valid, parse_instant, status_code, status_of,
)
from .tables import ATC_SYSTEMS, ICD10_SYSTEMS, LOINC, RXNORM, SNOMED, Agent, ConditionConcept, load, tables
from .recency import is_recent_episode
from .terminology import active as site_terminology

# Observation.status values whose result stands (FHIR R4 observation-status). entered-in-error, cancelled,
# registered (no result yet) and unknown never count.
OBSERVATION_STATUSES_THAT_COUNT = frozenset({"final", "amended", "corrected", "preliminary"})
# MedicationStatement / MedicationRequest status that mean "the patient is taking it now".
MEDICATION_STATUSES_ACTIVE = frozenset({"active"})
CONDITION_CLINICAL_ACTIVE = frozenset({"active", "recurrence", "relapse"})
CONDITION_VERIFICATION_EXCLUDED = frozenset({"entered-in-error", "refuted"})
# MedicationAdministration.status values meaning the dose was (or is being) given.
ADMINISTRATION_STATUSES_GIVEN = frozenset({"completed", "in-progress"})
# An administration this recent makes the patient "on" the agent even with no active statement or order:
# the longest-acting agents of the table (VKA) act for days. Engine rule; the sources are silent.
ADMINISTRATION_LOOKBACK = timedelta(hours=72)
# A time more than this in the future is a clock or entry error, not a measurement.
FUTURE_TOLERANCE = timedelta(minutes=10)


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
    # the worst valid value of an input within the episode window (support.toml [window]), by direction
    # ("low" | "high"): what the triggers judge, while `observations` keeps the newest for the calculators
    worst: dict[tuple[str, str], Observed] = field(default_factory=dict)
    support: list[Any] = field(default_factory=list)  # support.SupportInUse read from devices and drugs
    old_bleeding: list[str] = field(default_factory=list)  # hemoptysis Conditions outside the recency window

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
    return f"{resource.get('resourceType')}/{resource.get('id', '(no id)')}"


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"not valid FHIR R4 ({where}: {first.get('msg')})" if where else f"not valid FHIR R4 ({first.get('msg')})"


def map_inputs(pool: ResourcePool, now: datetime) -> EngineInputs:
    from .findings import map_findings  # findings reads EngineInputs; imported here to keep one entry point

    inputs = EngineInputs(now=now, problems=list(pool.problems))
    _map_patient(pool, inputs)
    _map_observations(pool, inputs)
    _map_conditions(pool, inputs)
    _map_medications(pool, inputs)
    _map_administrations(pool, inputs)
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

@dataclass(frozen=True)
class _Candidate:
    input: str
    at: datetime | None
    resource: dict
    component_code: str | None  # read the value from this component, not from Observation.value
    note: str = ""  # "mapped from local code X" when the site ConceptMap named it


def _components(resource: Mapping[str, Any]) -> list:
    components = resource.get("component")
    return components if type(components) is list else []  # malformed: no components, never a 500


def _observation_candidates(pool: ResourcePool) -> dict[str, list[_Candidate]]:
    table = tables()
    candidates: dict[str, list[_Candidate]] = {}
    wanted_codes = frozenset(table.loinc_to_input) | table.panel_loinc  # ~20 codes: a microsecond per call
    for resource, loinc_codes in pool.coded("Observation", LOINC, wanted_codes):
        wanted: list[tuple[str, str | None]] = []
        for code in loinc_codes:
            if code in table.loinc_to_input:
                wanted.append((table.loinc_to_input[code], None))
            if code in table.panel_loinc:
                for component in _components(resource):
                    for coding in codings(component.get("code") if isinstance(component, Mapping) else None):
                        name = table.component_loinc_to_input.get(coding.get("code"))
                        if coding.get("system") == LOINC and name:
                            wanted.append((name, coding["code"]))
        if not wanted:
            continue
        _add_candidates(candidates, resource, wanted)
    site = site_terminology()
    if site:
        def site_input(resource: dict):
            mapped = site.concept_of(resource.get("code"), "observation")
            return mapped if mapped and mapped.concept in table.observation_inputs else None

        for resource, mapped in pool.classified("Observation", site_input):
            if mapped:
                _add_candidates(candidates, resource, [(mapped.concept, None)], mapped.note)
    return candidates


def _add_candidates(candidates: dict[str, list[_Candidate]], resource: dict,
                    wanted: list[tuple[str, str | None]], note: str = "") -> None:
    at = effective_time(resource)
    seen = set()  # a BP panel names SBP once per component coding: one candidate per input
    for name, component_code in wanted:
        if name not in seen:
            seen.add(name)
            candidates.setdefault(name, []).append(_Candidate(name, at, resource, component_code, note))


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


def _raw_value(candidate: _Candidate) -> float | None:
    """The candidate's number in the engine's unit, read from the plain dict (no validation): the ranking key."""
    raw = candidate.resource
    quantity = raw.get("valueQuantity")
    if candidate.component_code:
        quantity = None
        for component in _components(raw):
            if isinstance(component, Mapping) and any(
                    c.get("code") == candidate.component_code for c in codings(component.get("code"))):
                quantity = component.get("valueQuantity")
                break
    if not isinstance(quantity, Mapping) or type(quantity.get("value")) not in (int, float):
        return None
    unit = quantity.get("code") or quantity.get("unit")
    factor, offset = tables().unit_factors.get((candidate.input, unit), (1.0, 0.0)) if isinstance(unit, str) else (1.0, 0.0)
    return quantity["value"] * factor + offset


def _map_worst(name: str, found: list[_Candidate], inputs: EngineInputs,
               validated: dict[int, Observation | ValidationError]) -> None:
    """The worst valid value of the episode window per direction, ranked on the raw value, validated lazily."""
    hours = load("support")["window"]["worst_hours"]
    start, end = inputs.now - timedelta(hours=hours), inputs.now + FUTURE_TOLERANCE
    in_window = [c for c in found if c.at is not None and start <= c.at <= end]
    if len(in_window) < 2:
        return  # the newest is the only value of the episode
    def read(candidate: _Candidate) -> Observed | None:
        # a record both passes reject is named once (map_inputs removes repeats)
        observed = _read_candidate(candidate, inputs, validated)
        return observed if isinstance(observed, Observed) else None

    for direction in worst_directions().get(name, ()):
        sign = 1 if direction == "low" else -1

        def rank(candidate: _Candidate, sign: int = sign) -> tuple:
            value = _raw_value(candidate)
            return (value is None, sign * value if value is not None else 0.0)

        worst = first_valid(in_window, rank, read)
        if worst is not None:
            inputs.worst[(name, direction)] = worst


def _map_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    oldest = datetime.min.replace(tzinfo=inputs.now.tzinfo)
    specs = tables().observation_inputs
    validated: dict[int, Observation | ValidationError] = {}  # a BP panel feeds two inputs: validated once
    judged_by_worst = worst_directions()
    for name, found in _observation_candidates(pool).items():
        if name in judged_by_worst:
            _map_worst(name, found, inputs, validated)
        found.sort(key=lambda candidate: candidate.at or oldest, reverse=True)
        for candidate in found:
            if too_far_in_future(candidate.at, inputs.now):
                inputs.rejected.append(Rejected(reference_of(candidate.resource),
                                                f"{specs[name].label} is dated in the future ({candidate.at:%Y-%m-%d %H:%M} UTC)"))
                continue
            observed = _read_candidate(candidate, inputs, validated)
            if observed is _SUPERSEDED:
                break
            if observed:
                if is_stale(observed.at, inputs.now, specs[name].fresh_hours):
                    inputs.stale[name] = observed  # the newest valid value is stale: older ones are staler
                else:
                    inputs.observations[name] = observed
                break


# A newest result that is a bound ("> 8") supersedes older values: none of them is current any more.
_SUPERSEDED = object()


def _validate_once(raw: dict, validated: dict[int, Observation | ValidationError]) -> Observation:
    found = validated.get(id(raw))  # id() is stable: the pool holds every resource for the whole call
    if found is None:
        try:
            found = Observation.model_validate(raw)
        except ValidationError as error:
            found = error
        validated[id(raw)] = found
    if isinstance(found, ValidationError):
        raise found
    return found


def _read_candidate(candidate: _Candidate, inputs: EngineInputs,
                    validated: dict[int, Observation | ValidationError]) -> Observed | None | object:
    raw = candidate.resource
    reference = reference_of(raw)
    status = status_of(raw)
    if status not in OBSERVATION_STATUSES_THAT_COUNT:
        if status in ("entered-in-error", "cancelled"):
            return None  # never counts, and is not worth a line in the card
        inputs.rejected.append(Rejected(reference, f"status '{status}' is not a result"))
        return None
    try:
        observation = _validate_once(raw, validated)
    except ValidationError as error:
        inputs.rejected.append(Rejected(reference, _first_error(error)))
        return None
    quantity = observation.valueQuantity
    absent = observation.dataAbsentReason
    if candidate.component_code:
        quantity, absent = None, None
        for component in observation.component or ():
            if any(c.system == LOINC and c.code == candidate.component_code for c in component.code.coding or ()):
                quantity, absent = component.valueQuantity, component.dataAbsentReason
                break
    spec = tables().observation_inputs[candidate.input]
    if quantity is not None and quantity.comparator:
        # "< 10" or "> 8" is a bound, not a value: using the number would be a silent guess
        inputs.rejected.append(Rejected(reference, f"{spec.label} is reported as '{quantity.comparator} "
                                                   f"{quantity.value}': a bound, not a value the engine can use"))
        return _SUPERSEDED
    if quantity is None or quantity.value is None:
        why = f"data absent ({concept_text(absent.model_dump()) or 'no reason'})" if absent else "no numeric value"
        inputs.rejected.append(Rejected(reference, f"{spec.label}: {why}"))
        return None
    observed = _convert(spec, float(quantity.value), quantity.code or quantity.unit, candidate.at, reference, inputs)
    if observed is not None and candidate.note:
        observed = Observed(observed.input, observed.label, observed.value, observed.unit, observed.at,
                            observed.reference, "; ".join(part for part in (candidate.note, observed.note) if part))
    return observed


def _convert(spec, value: float, unit: str | None, at, reference: str, inputs: EngineInputs) -> Observed | None:
    note = ""
    if unit is None or unit == "":
        if not spec.unitless_ok:
            inputs.rejected.append(Rejected(reference, f"{spec.label} {value:g} has no unit; cannot tell its scale"))
            return None
        factor, offset = 1.0, 0.0
        note = f"no unit sent; read as {spec.unit}"
    else:
        conversion = tables().unit_factors.get((spec.name, unit))
        if conversion is None:
            inputs.rejected.append(Rejected(reference, f"{spec.label} unit '{unit}' is not recognised"))
            return None
        factor, offset = conversion
        if (factor, offset) != (1.0, 0.0):
            note = f"sent as {value:g} {unit}"
    # a converted value keeps 2 decimals (86.26 mmHg from kPa, not 86.2571); a value sent in the engine's unit is kept
    converted = round(value * factor + offset, 2 if (factor, offset) != (1.0, 0.0) else 4)
    low, high = spec.plausible
    if not low <= converted <= high:
        inputs.rejected.append(Rejected(
            reference, f"{spec.label} {converted:g} {spec.unit} is outside the plausible range {low:g}-{high:g}"))
        return None
    return Observed(spec.name, spec.label, converted, spec.unit, at, reference, note)


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
        try:
            Condition.model_validate(raw)
        except ValidationError as error:
            inputs.rejected.append(Rejected(reference, _first_error(error)))
            continue
        inputs.conditions.append(ConditionFact(concept, reference, effective_time(raw), concept_text(raw.get("code")),
                                               matched_by))


# ---------------------------------------------------------------------------------------------- medications

def _agent_of(concept: Any) -> tuple[Agent, str] | None:
    table = tables()
    for coding in codings(concept):
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(code, str):
            continue
        if system == RXNORM and code in table.rxnorm_to_agent:
            return table.rxnorm_to_agent[code], f"RxNorm {code}"
        if system in ATC_SYSTEMS:
            if code in table.atc_to_agent:
                return table.atc_to_agent[code], f"ATC {code}"
            for prefix, group in table.atc_groups:
                if code.startswith(prefix):
                    return group, f"ATC {code}"
    text = " ".join(
        part for part in [concept_text(concept), *(str(c.get("display", "")) for c in codings(concept))] if part
    ).lower()
    if text:
        for word, agent in table.name_to_agent:
            if word in text:
                return agent, f"name '{word}' in the drug's text (no recognised code)"
    return None


def _medication_concept(raw: Mapping[str, Any], pool: ResourcePool) -> Any:
    if "medicationCodeableConcept" in raw:
        return raw["medicationCodeableConcept"]
    reference = (raw.get("medicationReference") or {}).get("reference")
    if not isinstance(reference, str):
        return None
    if reference.startswith("#"):
        for contained in raw.get("contained") or ():
            if isinstance(contained, Mapping) and contained.get("id") == reference[1:]:
                return contained.get("code")
        return None
    medication = pool.by_reference.get(reference)
    return medication.get("code") if medication else None


def _map_medications(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type, model in (("MedicationStatement", MedicationStatement), ("MedicationRequest", MedicationRequest)):
        for raw in pool.of(resource_type):
            status = status_of(raw)
            if status not in MEDICATION_STATUSES_ACTIVE or raw.get("doNotPerform") is True:
                continue
            concept = _medication_concept(raw, pool)
            match = _agent_of(concept)
            if match is None:
                continue
            reference = reference_of(raw)
            try:
                model.model_validate(raw)
            except ValidationError as error:
                inputs.rejected.append(Rejected(reference, _first_error(error)))
                continue
            agent, matched_by = match
            inputs.medications.append(MedicationUse(
                agent, reference, status, effective_time(raw), matched_by, concept_text(concept) or agent.name))


def _quantity(value: Any) -> tuple[float | None, str]:
    if isinstance(value, Mapping) and isinstance(value.get("value"), (int, float)):
        return float(value["value"]), str(value.get("code") or value.get("unit") or "")
    return None, ""


def _map_administrations(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Doses actually given: the last-dose time and strength that andexanet and protamine dosing need."""
    for raw in pool.of("MedicationAdministration"):
        if status_of(raw) not in ADMINISTRATION_STATUSES_GIVEN:
            continue
        match = _agent_of(_medication_concept(raw, pool))
        if match is None:
            continue
        reference = reference_of(raw)
        at = effective_time(raw)
        if too_far_in_future(at, inputs.now):
            inputs.rejected.append(Rejected(reference, "administration dated in the future"))
            continue
        try:
            MedicationAdministration.model_validate(raw)
        except ValidationError as error:
            inputs.rejected.append(Rejected(reference, _first_error(error)))
            continue
        agent, matched_by = match
        dosage = raw.get("dosage") if isinstance(raw.get("dosage"), Mapping) else {}
        dose, dose_unit = _quantity(dosage.get("dose"))
        rate, rate_unit = _quantity(dosage.get("rateQuantity"))
        inputs.administrations.append(DoseGiven(agent, reference, at, dose, dose_unit, rate, rate_unit))
        recent = at is not None and inputs.now - at <= ADMINISTRATION_LOOKBACK
        if recent and not any(use.agent.name == agent.name for use in inputs.medications):
            inputs.medications.append(MedicationUse(agent, reference, "administered", at, matched_by,
                                                    concept_text(_medication_concept(raw, pool)) or agent.name))


__all__ = ["DoseGiven", "EngineInputs", "Observed", "Rejected", "ConditionFact", "MedicationUse", "map_inputs", "parse_instant"]
