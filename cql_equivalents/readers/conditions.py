"""The patient's age and the Conditions the engine reads (hemoptysis episodes, terrain, causes, other blood
sources), matched by site code, SNOMED CT / ICD-10 or text (conditions.toml); also what those Conditions say
about where the blood comes from (the FRAME gate's evidence)."""
from __future__ import annotations

from typing import Any

from fhir.resources.R4B.condition import Condition

from ..code_memo import CodeMemo
from ..concept_match import coded_words, first_word, match_concept, text_note
from ..fhir_select import ResourcePool
from ..fhir_values import concept_text, effective_time, parse_instant, status_code
from ..model import ConditionFact, EngineInputs, SourceEvidence
from ..recency import is_recent_episode
from ..tables import ICD10_SYSTEMS, SNOMED, ConditionConcept, tables
from .record import MALFORMED, reference_of, skipped_if_malformed, validated

CONDITION_CLINICAL_ACTIVE = frozenset({"active", "recurrence", "relapse"})
CONDITION_VERIFICATION_EXCLUDED = frozenset({"entered-in-error", "refuted"})


def read_patient(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Age in whole years at `now`, from Patient.birthDate (HAS-BLED 'elderly')."""
    for raw in pool.of("Patient"):
        born = parse_instant(raw.get("birthDate"))
        if born is None:
            continue
        years = inputs.now.year - born.year - ((inputs.now.month, inputs.now.day) < (born.month, born.day))
        if 0 <= years <= 130:
            inputs.age_years = years
        return


def _by_code(system: Any, code: str) -> tuple[ConditionConcept, str] | None:
    table = tables()
    if system == SNOMED and code in table.snomed_to_condition:
        return table.snomed_to_condition[code], "code"
    if system in ICD10_SYSTEMS:
        if code in table.icd10_to_condition:
            return table.icd10_to_condition[code], "code"
        for prefix, found in table.icd10_prefix_to_condition:
            if code.startswith(prefix):
                return found, "code"
    return None


def condition_concept(concept: Any) -> tuple[ConditionConcept, str] | None:
    """The condition concept a Condition.code names, and how it was recognised."""
    return match_concept([concept], site_space="condition", site_row=lambda key: tables().conditions_by_key[key],
                         code_row=_by_code, words=lambda: coded_words(concept),
                         word_row=lambda text: first_word(text, tables().words_to_condition, text_note))


class _Unreadable(str):
    """A Condition.code that could not be read (the name of what reading it raised)."""


def _concept_of_record(raw: dict) -> tuple[ConditionConcept, str] | _Unreadable | None:
    try:
        return condition_concept(raw.get("code"))
    except MALFORMED as error:
        return _Unreadable(type(error).__name__)


# What a Condition.code means, once per distinct code per process (code_memo.py): reads nothing but the code, the
# tables and the site's ConceptMap (a chart's Conditions fell through to the text match one by one)
_CONDITION_CONCEPTS = CodeMemo("condition concept")


def read_conditions(pool: ResourcePool, inputs: EngineInputs) -> None:
    for raw, match in pool.matching("Condition", _concept_of_record, memo=_CONDITION_CONCEPTS):
        if isinstance(match, _Unreadable):  # as skipped_if_malformed names a record it could not read
            inputs.reject(reference_of(raw), f"malformed FHIR ({match} while reading it): skipped", kind="malformed")
            continue
        if match is None:  # never yielded (matching passes over falsy answers); narrows the type for mypy
            continue
        with skipped_if_malformed(inputs, raw):
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
            if not validated(inputs, Condition, raw, input=concept.key):
                continue
            inputs.conditions.append(ConditionFact(concept, reference, effective_time(raw), concept_text(raw.get("code")),
                                                   matched_by))


def read_condition_sources(inputs: EngineInputs) -> None:
    for fact in inputs.conditions:
        if fact.concept.role == "bleeding":
            inputs.blood_source.append(SourceEvidence("hemoptysis", fact.concept.label, fact.reference, True))
        elif fact.concept.role == "frame_gate":
            inputs.blood_source.append(SourceEvidence(fact.concept.frame, fact.concept.label, fact.reference, True))
