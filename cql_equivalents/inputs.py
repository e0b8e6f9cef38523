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
    ResourcePool, codings, concept_text, effective_time, parse_instant, status_code,
)
from . import drug_exposure as exposure
from .drug_terms import agent_of, concept_words
from .tables import ICD10_SYSTEMS, LOINC, SNOMED, Agent, ConditionConcept, tables

# Observation.status values whose result stands (FHIR R4 observation-status). entered-in-error, cancelled,
# registered (no result yet) and unknown never count.
OBSERVATION_STATUSES_THAT_COUNT = frozenset({"final", "amended", "corrected", "preliminary"})
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
    _map_exposures(pool, inputs)
    map_findings(pool, inputs)
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
                for component in resource.get("component") or ():
                    for coding in codings(component.get("code") if isinstance(component, Mapping) else None):
                        name = table.component_loinc_to_input.get(coding.get("code"))
                        if coding.get("system") == LOINC and name:
                            wanted.append((name, coding["code"]))
        if not wanted:
            continue
        at = effective_time(resource)
        seen = set()
        for name, component_code in wanted:
            if name not in seen:
                seen.add(name)
                candidates.setdefault(name, []).append(_Candidate(name, at, resource, component_code))
    return candidates


def _map_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    oldest = datetime.min.replace(tzinfo=inputs.now.tzinfo)
    specs = tables().observation_inputs
    validated: dict[int, Observation | ValidationError] = {}  # a BP panel feeds two inputs: validated once
    for name, found in _observation_candidates(pool).items():
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
    status = raw.get("status")
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
    return _convert(spec, float(quantity.value), quantity.code or quantity.unit, candidate.at, reference, inputs)


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
        try:
            Condition.model_validate(raw)
        except ValidationError as error:
            inputs.rejected.append(Rejected(reference, _first_error(error)))
            continue
        inputs.conditions.append(ConditionFact(concept, reference, effective_time(raw), concept_text(raw.get("code")),
                                               matched_by))


# ---------------------------------------------------------------------------------------------- medications

def _agent_of(concept: Any) -> tuple[Agent, str] | None:
    return agent_of(concept)  # drug_terms: the one matcher for drug codes and text


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
            status = raw.get("status")
            if not isinstance(status, str) or status not in MEDICATION_STATUSES_ACTIVE or raw.get("doNotPerform") is True:
                continue  # a record that is not active may still count by its effect: _map_exposures
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
            try:
                model.model_validate(raw)
            except ValidationError as error:
                inputs.rejected.append(Rejected(reference, _first_error(error)))
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
        status = raw.get("status")
        if not isinstance(status, str) or status not in ADMINISTRATION_STATUSES_GIVEN | ADMINISTRATION_STATUSES_ENDING:
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
        flush = exposure.flush_reason(raw, agent, concept_words(_medication_concept(raw, pool)))
        if flush:
            inputs.rejected.append(Rejected(reference, flush))
            continue
        dosage = raw.get("dosage") if isinstance(raw.get("dosage"), Mapping) else {}
        dose, dose_unit = _quantity(dosage.get("dose"))
        rate, rate_unit = _quantity(dosage.get("rateQuantity"))
        period = raw.get("effectivePeriod") if isinstance(raw.get("effectivePeriod"), Mapping) else {}
        started = parse_instant(period.get("start")) or parse_instant(raw.get("effectiveDateTime"))
        request = (raw.get("request") or {}).get("reference") if isinstance(raw.get("request"), Mapping) else None
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
