"""Antithrombotic drugs: active statements and orders, records not active whose effect may be present
(drug_exposure, exposure.toml), and the doses actually given (MedicationAdministration: the last-dose time and
strength that andexanet and protamine dosing need). The drug is named by drug_terms.agent_of."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement

from .. import drug_exposure as exposure
from ..drug_terms import agent_of, concept_words
from ..fhir_select import ResourcePool
from ..fhir_values import concept_text, effective_time, parse_instant
from ..model import DoseGiven, EngineInputs, MedicationUse, Rejected
from .record import medication_concept, reference_of, skipped_if_malformed, too_far_in_future, validated
from ..durations import HOUR

# MedicationStatement / MedicationRequest status that mean "the patient is taking it now".
MEDICATION_STATUSES_ACTIVE = frozenset({"active"})
# MedicationAdministration.status values meaning the dose was (or is being) given.
ADMINISTRATION_STATUSES_GIVEN = frozenset({"completed", "in-progress"})
# An infusion "stopped" or "on-hold" ends (or pauses) the heparin running before it: read for the
# protamine interval arithmetic only (cql_equivalents/heparin_infusion.py), never as a dose given.
ADMINISTRATION_STATUSES_ENDING = frozenset({"stopped", "on-hold"})


def read_medications(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type, model in (("MedicationStatement", MedicationStatement), ("MedicationRequest", MedicationRequest)):
        for raw in pool.of(resource_type):
            with skipped_if_malformed(inputs, raw):
                status = raw.get("status")
                if type(status) is not str or status not in MEDICATION_STATUSES_ACTIVE or raw.get("doNotPerform") is True:
                    continue  # a record that is not active may still count by its effect: read_exposures
                concept = medication_concept(raw, pool)
                match = agent_of(concept)
                if match is None:
                    continue
                reference = reference_of(raw)
                if not validated(inputs, model, raw, input=f"agent:{match[0].name}"):
                    continue
                agent, matched_by = match
                # the drug's words are read only for a class a flush can be (most drugs: none)
                flush = exposure.flush_reason(raw, agent, concept_words(concept)) if exposure.may_be_flush(agent) else None
                if flush:
                    inputs.rejected.append(Rejected(reference, flush))
                    continue
                inputs.medications.append(MedicationUse(
                    agent, reference, status, effective_time(raw), matched_by, concept_text(concept) or agent.name))


def read_exposures(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Statements and orders that are not active (on hold, stopped, completed) but whose effect may be present:
    the lab that measures it and the time since the last dose decide (drug_exposure, exposure.toml)."""
    for resource_type, model in (("MedicationStatement", MedicationStatement), ("MedicationRequest", MedicationRequest)):
        for raw in pool.of(resource_type):
            with skipped_if_malformed(inputs, raw):
                if not exposure.paused_or_ended(raw) or raw.get("doNotPerform") is True:
                    continue
                concept = medication_concept(raw, pool)
                match = agent_of(concept)
                if match is None:
                    continue
                agent, matched_by = match
                reference = reference_of(raw)
                if any(use.reference == reference for use in inputs.medications):
                    continue
                if not validated(inputs, model, raw, input=f"agent:{agent.name}"):
                    continue
                if exposure.may_be_flush(agent) and exposure.flush_reason(raw, agent, concept_words(concept)):
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


def read_administrations(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Doses actually given: the last-dose time and strength that andexanet and protamine dosing need."""
    for raw in pool.of("MedicationAdministration"):
        with skipped_if_malformed(inputs, raw):
            status = raw.get("status")
            if type(status) is not str or status not in ADMINISTRATION_STATUSES_GIVEN | ADMINISTRATION_STATUSES_ENDING:
                continue
            match = agent_of(medication_concept(raw, pool))
            if match is None:
                continue
            reference = reference_of(raw)
            at = effective_time(raw)
            if too_far_in_future(at, inputs.now):
                inputs.rejected.append(Rejected(reference, "administration dated in the future"))
                continue
            if not validated(inputs, MedicationAdministration, raw, input=f"agent:{match[0].name}"):
                continue
            agent, matched_by = match
            flush = exposure.flush_reason(raw, agent, concept_words(medication_concept(raw, pool))) \
                if exposure.may_be_flush(agent) else None
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
            lookback = exposure.administration_lookback(agent)
            recent = at is not None and inputs.now - at <= lookback
            if recent and not exposure.lab_says_no_effect(agent, inputs.observations) \
                    and not any(use.agent.name == agent.name for use in inputs.medications):
                hours = round((inputs.now - at) / HOUR, 1)
                inputs.medications.append(MedicationUse(
                    agent, reference, "administered", at, matched_by,
                    concept_text(medication_concept(raw, pool)) or agent.name,
                    f"given {hours:g} h ago (within the {lookback / HOUR:g} h look-back)"))
