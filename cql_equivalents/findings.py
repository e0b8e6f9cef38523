"""Non-numeric inputs of the dossier: test results, imaging / bronchoscopy reports, hemoptysis volume and
blood-source features (mirrors MassiveHemoptysisFindings.cql).

Selection runs over raw dicts (code, status, text); only a selected resource is validated with fhir.resources.
Codes come from data/findings.toml and data/bleeding.toml; where no code is confirmed, words in the code's
text are matched and the finding says so ("matched by text").
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from .code_memo import CodeMemo, memo_for
from .fhir_select import ResourcePool, codings, concept_text, effective_time, parse_instant, status_of
from . import fhir_valid
from .inputs import (
    EngineInputs, Rejected, _medication_concept, _phase, is_stale, reference_of, skipped_if_malformed, too_far_in_future,
)
from .tables import LOINC, RXNORM, SNOMED, tables
from .terminology import active as site_terminology

_MODELS = {"Observation": Observation, "DiagnosticReport": DiagnosticReport, "Procedure": Procedure,
           "ImagingStudy": ImagingStudy, "MedicationRequest": MedicationRequest,
           "MedicationAdministration": MedicationAdministration}
# Statuses that mean "not a result / not done": never counted (FHIR R4 status value sets of each resource).
# QuestionnaireResponse.status values whose answers are read (a stopped / entered-in-error response is not).
QUESTIONNAIRE_STATUSES_READ = frozenset({"completed", "amended", "in-progress"})
_NOT_DONE = frozenset({"entered-in-error", "cancelled", "registered", "preparation", "not-done", "stopped",
                       "unknown", "revoked", "draft"})
# HL7 v3 ObservationInterpretation codes (FHIR R4 value set observation-interpretation).
_POSITIVE_INTERPRETATIONS = frozenset({"POS", "DET", "H", "HH", "HU", "A", "AA", "R"})
_NEGATIVE_INTERPRETATIONS = frozenset({"NEG", "ND", "N", "S"})
_NEGATIVE_WORDS = ("not detected", "negative", "no mycobacteri", "none seen", "no acid")
_POSITIVE_WORDS = ("positive", "detected", "seen", "present")


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


def _status(resource: Mapping[str, Any]) -> str:
    """Its status when it is a string ("" otherwise: a list where a code belongs matches nothing, never a 500)."""
    status = resource.get("status")
    return status if type(status) is str else ""


def map_findings(pool: ResourcePool, inputs: EngineInputs) -> None:
    _phase(inputs, "reports, procedures and results", lambda: _map_table_findings(pool, inputs))
    _phase(inputs, "vasopressor records", lambda: _map_vasopressors(pool, inputs))
    _phase(inputs, "hemoptysis volumes", lambda: _map_volume_observations(pool, inputs))
    _phase(inputs, "intake answers", lambda: _map_questionnaires(pool, inputs))
    _phase(inputs, "blood-source conditions", lambda: _map_condition_sources(inputs))


# ------------------------------------------------------------------------------------------ table findings

def _texts(resource: Mapping[str, Any], *keys: str) -> str:
    parts: list[str] = []
    for key in keys:
        value = resource.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, Mapping):
                parts.append(concept_text(item))
                parts.extend(str(c.get("display", "")) for c in codings(item))
                if isinstance(item.get("text"), str):
                    parts.append(item["text"])
    return " ".join(part for part in parts if part).lower()


# What _match_finding reads besides `code` (and the resource type): a resource carrying one is matched alone.
_MATCH_ALSO_READS = ("procedureCode", "description", "medicationCodeableConcept", "series")


def _match_finding(resource: Mapping[str, Any]) -> tuple[dict, str] | None:
    table = tables()
    resource_type = resource.get("resourceType")
    site = site_terminology()
    for key in ("code", "procedureCode", "medicationCodeableConcept"):
        mapped = site.concept_of(resource.get(key), "finding")
        if mapped:
            row = next(row for row in table.findings if row["key"] == mapped.concept)
            if resource_type in row["resources"]:
                return row, mapped.note
    for key in ("code", "procedureCode", "medicationCodeableConcept"):
        for coding in codings(resource.get(key)):
            code, system = coding.get("code"), coding.get("system")
            if not isinstance(code, str):
                continue  # malformed coding (e.g. a list): passed over, never a 500
            row = (table.finding_loinc.get(code) if system == LOINC else
                   table.finding_snomed.get(code) if system == SNOMED else
                   table.finding_rxnorm.get(code) if system == RXNORM else None)
            if row and resource_type in row["resources"]:
                return row, "code"
    names = _texts(resource, "code", "procedureCode", "description", "medicationCodeableConcept")
    if resource_type == "ImagingStudy":
        names += " " + " ".join(_texts(series, "description", "bodySite") for series in resource.get("series") or ()
                                if isinstance(series, Mapping))
    if not names.strip():
        return None
    for row in table.findings:
        if resource_type not in row["resources"]:
            continue
        for word in row["words"]:
            if word in names:
                return row, f"text '{word}' (no recognised code)"
    return None


# "no change in the cavity" still reports a cavity: an unchanged finding is not a negated one
_NEGATION = re.compile(r"\b(?:no(?! (?:interval |significant )?change)|not|without|negative for|absence of|free of)\b")
_CLAUSE_END = re.compile(r"[.;:\n]")


def _affirmed(text: str, word: str) -> bool:
    """The word occurs at least once outside a negated clause ("no cavitation" does not count)."""
    start = text.find(word)
    while start != -1:
        clause = _CLAUSE_END.split(text[max(0, start - 40):start])[-1]
        if not _NEGATION.search(clause):
            return True
        start = text.find(word, start + 1)
    return False


def _cues(text: str) -> tuple[str, ...]:
    found = []
    negative = any(word in text for word in tables().cues["negative_localization"]["words"])
    for key, cue in tables().cues.items():
        if key == "active_bleeding" and negative:
            continue  # "no active extravasation" is not active bleeding
        if key == "negative_localization":
            matched = any(word in text for word in cue["words"])  # its words carry the negation themselves
        else:
            matched = any(_affirmed(text, word) for word in cue["words"])
        if matched:
            found.append(key)
    return tuple(found)


def _result(resource: Mapping[str, Any]) -> str:
    for concept in resource.get("interpretation") or ():
        for coding in codings(concept):
            if coding.get("code") in _POSITIVE_INTERPRETATIONS:
                return "positive"
            if coding.get("code") in _NEGATIVE_INTERPRETATIONS:
                return "negative"
    text = " ".join([_texts(resource, "valueCodeableConcept", "conclusionCode"),
                     str(resource.get("valueString") or ""), str(resource.get("conclusion") or "")]).lower()
    # the result is the first clause ("MTB detected, rifampicin resistance not detected" is positive)
    text = re.split(r"[,;.\n]", text.strip(), maxsplit=1)[0]
    if any(word in text for word in _NEGATIVE_WORDS):
        return "negative"
    if any(word in text for word in _POSITIVE_WORDS):
        return "positive"
    return "unknown"


def _report_text(resource: Mapping[str, Any]) -> str:
    text = _texts(resource, "conclusion", "conclusionCode", "description", "outcome", "note", "followUp",
                  "complication", "valueString", "valueCodeableConcept")
    for series in resource.get("series") or ():  # ImagingStudy: what each series shows
        if isinstance(series, Mapping):
            text += " " + _texts(series, "description")
    for note in resource.get("note") or ():
        if isinstance(note, Mapping) and isinstance(note.get("text"), str):
            text += " " + note["text"].lower()
    return text


def _time_of(resource: Mapping[str, Any]) -> datetime | None:
    for key in ("performedDateTime", "started", "occurrenceDateTime", "authoredOn"):
        moment = parse_instant(resource.get(key))
        if moment:
            return moment
    period = resource.get("performedPeriod")
    if isinstance(period, Mapping):
        moment = parse_instant(period.get("end")) or parse_instant(period.get("start"))
        if moment:
            return moment
    return effective_time(resource)


def _map_table_findings(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type in _MODELS:
        # most resources have no finding: matching never visits them
        for raw, match in pool.matching(resource_type, _match_finding, also_reads=_MATCH_ALSO_READS,
                                        memo=memo_for(("finding", resource_type))):
            with skipped_if_malformed(inputs, raw):
                if status_of(raw) in _NOT_DONE:
                    continue
                row, matched_by = match
                reference = reference_of(raw)
                at = _time_of(raw)
                if too_far_in_future(at, inputs.now):
                    inputs.rejected.append(Rejected(reference, f"{row['label']} is dated in the future"))
                    continue
                model, why = fhir_valid.validate(_MODELS[resource_type], raw)
                if model is None:
                    inputs.reject(reference, why, input=row["input"] or row["key"])
                    continue
                reads = row["reads"]
                result = _result(raw) if reads == "result" else "done"
                cues = _cues(_report_text(raw)) if reads == "report" else ()
                inputs.findings.append(Finding(
                    row["key"], row["input"], row["label"], reference, at, result, cues, matched_by,
                    is_stale(at, inputs.now, row["fresh_hours"]), row["source"]))
    oldest = datetime.min.replace(tzinfo=inputs.now.tzinfo)
    inputs.findings.sort(key=lambda finding: finding.at or oldest, reverse=True)  # newest first


# ------------------------------------------------------------------------------------------ volume

def _volume_unit(unit: str) -> tuple[str, float] | None:
    for row in tables().bleeding["volume_unit"]:
        if unit in row["units"]:
            return row["kind"], float(row["factor"])
    return None


def _kind_from_text(names: str) -> str | None:
    for row in tables().bleeding["volume_text_kind"]:
        if any(word in names for word in row["words"]):
            return row["kind"]
    return None


_VOLUME_ROWS = CodeMemo("hemoptysis volume row")  # most Observations are not


def _is_volume_observation(raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """(period kind named by the code or "", "mapped from local code X" or "") for a volume row, else None."""
    spec = tables().bleeding["volume"]
    mapped = site_terminology().concept_of(raw.get("code"), "observation")
    if mapped:
        kinds = {row["concept"]: row["kind"] for row in tables().bleeding["volume_concept"]}
        return (kinds[mapped.concept], mapped.note) if mapped.concept in kinds else None
    for coding in codings(raw.get("code")):
        if coding.get("system") == spec["local_system"] and coding.get("code") in spec["local_codes"]:
            return "", ""
    names = _texts(raw, "code")
    return ("", "") if any(word in names for word in spec["words"]) else None


def _add_volume(inputs: EngineInputs, kind: str, ml: float, at: datetime | None, reference: str, note: str) -> None:
    spec = tables().bleeding["volume"]
    low, high = spec["plausible_ml"]
    if not low <= ml <= high:
        inputs.rejected.append(Rejected(reference, f"hemoptysis volume {ml:g} mL is outside the plausible range "
                                                   f"{low}-{high} mL"))
        return
    if is_stale(at, inputs.now, spec["fresh_hours"]):
        inputs.rejected.append(Rejected(reference, f"hemoptysis volume {ml:g} mL is older than "
                                                   f"{spec['fresh_hours']} h: stale, not used as current"))
        return
    current = inputs.volumes.get(kind)
    if current is None or (at and (current.at is None or at > current.at)):
        inputs.volumes[kind] = VolumeReading(kind, round(ml, 1), at, reference, note)


def _map_volume_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    for raw, is_volume in pool.matching("Observation", _is_volume_observation, memo=_VOLUME_ROWS):
        with skipped_if_malformed(inputs, raw):
            if status_of(raw) in _NOT_DONE:
                continue
            reference = reference_of(raw)
            observation, why = fhir_valid.validate(Observation, raw)
            if observation is None:
                inputs.reject(reference, why, input="hemoptysis_volume", kind="invalid")
                continue
            quantity = observation.valueQuantity
            if quantity is None or quantity.value is None:
                inputs.rejected.append(Rejected(reference, "hemoptysis volume: no numeric value"))
                continue
            unit = quantity.code or quantity.unit or ""
            known = _volume_unit(unit)
            if known is None:
                inputs.rejected.append(Rejected(reference, f"hemoptysis volume unit '{unit}' is not recognised "
                                                           "(mL, mL/h or mL/d)"))
                continue
            kind, factor = known
            named_kind, mapped_note = is_volume
            if kind == "single":
                kind = named_kind or _kind_from_text(_texts(raw, "code")) or kind
            ml = float(quantity.value) * factor
            period = raw.get("effectivePeriod") if isinstance(raw.get("effectivePeriod"), Mapping) else None
            if kind == "single" and period:  # a volume over a recorded period
                start, end = parse_instant(period.get("start")), parse_instant(period.get("end"))
                if start and end and end > start:
                    _add_period_volume(inputs, ml, start, end, reference)
                    continue
            _add_volume(inputs, kind, ml, effective_time(raw), reference, mapped_note)


def _add_period_volume(inputs: EngineInputs, ml: float, start: datetime, end: datetime, reference: str) -> None:
    """A volume over a period: its mean hourly rate, and its 24 h volume when the period covers 24 h."""
    hours = (end - start) / timedelta(hours=1)
    _add_volume(inputs, "hourly", ml / hours, end, reference, f"{ml:g} mL over {hours:g} h, mean rate")
    if hours >= 24:
        _add_volume(inputs, "daily", ml * 24 / hours, end, reference, f"{ml:g} mL over {hours:g} h, per 24 h")


# ------------------------------------------------------------------------------------------ questionnaire

def _answer_value(answer: Mapping[str, Any]) -> Any:
    for key in ("valueQuantity", "valueDecimal", "valueInteger", "valueBoolean", "valueCoding", "valueString"):
        if key in answer:
            return answer[key]
    return None


def _walk_items(items: Any) -> Iterable[Mapping[str, Any]]:
    for item in items or ():
        if isinstance(item, Mapping):
            yield item
            yield from _walk_items(item.get("item"))
            for answer in item.get("answer") or ():
                if isinstance(answer, Mapping):
                    yield from _walk_items(answer.get("item"))


def _map_questionnaires(pool: ResourcePool, inputs: EngineInputs) -> None:
    bleeding = tables().bleeding
    canonical = bleeding["questionnaire"]["canonical"]
    questions = {row["link_id"]: row for row in bleeding["question"]}
    features = {row["link_id"]: row for row in bleeding["feature"]}
    for raw in pool.of("QuestionnaireResponse"):
        with skipped_if_malformed(inputs, raw):
            if str(raw.get("questionnaire", "")).split("|")[0] != canonical:
                continue
            if _status(raw) not in QUESTIONNAIRE_STATUSES_READ:
                continue
            reference = reference_of(raw)
            model, why = fhir_valid.validate(QuestionnaireResponse, raw)
            if model is None:
                inputs.reject(reference, why, input="questionnaire")
                continue
            at = parse_instant(raw.get("authored"))
            for item in _walk_items(raw.get("item")):
                link_id = item.get("linkId")
                answers = [a for a in item.get("answer") or () if isinstance(a, Mapping)]
                if not answers:
                    continue
                value = _answer_value(answers[0])
                if link_id in questions and questions[link_id]["kind"] == "volume":
                    ml = value.get("value") if isinstance(value, Mapping) else value
                    unit = (value.get("code") or value.get("unit")) if isinstance(value, Mapping) else None
                    known = _volume_unit(unit) if unit else None
                    if unit and known is None:
                        inputs.rejected.append(Rejected(reference, f"answer '{link_id}' unit '{unit}' is not recognised"))
                        continue
                    if known and isinstance(ml, (int, float)):
                        ml = ml * known[1]  # e.g. 0.2 L -> 200 mL; the item names the period
                    if isinstance(ml, (int, float)) and not isinstance(ml, bool):
                        _add_volume(inputs, questions[link_id]["volume_kind"], float(ml), at, reference, "intake questionnaire")
                    else:
                        inputs.rejected.append(Rejected(reference, f"answer '{link_id}' is not a number of mL"))
                elif link_id in questions and questions[link_id]["kind"] == "blood_source":
                    code = value.get("code") if isinstance(value, Mapping) else value
                    if code in ("hemoptysis", "hematemesis", "pseudohemoptysis"):
                        inputs.blood_source.append(SourceEvidence(code, f"source judged {code}", reference, True))
                    else:
                        inputs.rejected.append(Rejected(reference, f"answer 'blood-source' = {code!r} is not "
                                                                   "hemoptysis / hematemesis / pseudohemoptysis"))
                elif link_id in features and value is True:
                    feature = features[link_id]
                    inputs.blood_source.append(SourceEvidence(feature["points_to"], feature["label"], reference, False))


def _map_condition_sources(inputs: EngineInputs) -> None:
    for fact in inputs.conditions:
        if fact.concept.role == "bleeding":
            inputs.blood_source.append(SourceEvidence("hemoptysis", fact.concept.label, fact.reference, True))
        elif fact.concept.role == "frame_gate":
            inputs.blood_source.append(SourceEvidence(fact.concept.frame, fact.concept.label, fact.reference, True))


# ------------------------------------------------------------------------------------------ vasopressors

_RATE_UNITS = frozenset({"ug/kg/min", "mcg/kg/min", "ug/(kg.min)", "ug/kg/min{drip}"})
VASOPRESSOR_WINDOW = timedelta(hours=24)  # SOFA scores the worst value of the day (Vincent 1996)


def _vasopressor_of(concept: Any) -> tuple[dict, str] | None:
    from .tables import RXNORM, load
    rows = load("calculators")["vasopressor"]
    mapped = site_terminology().concept_of(concept, "drug")
    if mapped and any(row["name"] == mapped.concept for row in rows):
        return next(row for row in rows if row["name"] == mapped.concept), mapped.note
    for coding in codings(concept):
        for row in rows:
            if coding.get("system") == RXNORM and coding.get("code") in row["rxnorm"]:
                return row, "code"
    text = " ".join([concept_text(concept), *(str(c.get("display", "")) for c in codings(concept))]).lower()
    for row in rows:
        if any(word in text for word in row["words"]):
            return row, "text (no recognised code)"
    return None


def _map_vasopressors(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type in ("MedicationAdministration", "MedicationRequest"):
        for raw in pool.of(resource_type):
            with skipped_if_malformed(inputs, raw):
                if resource_type == "MedicationAdministration":
                    at = effective_time(raw)
                    if raw.get("status") != "in-progress" and not (
                            raw.get("status") == "completed" and at and inputs.now - at <= VASOPRESSOR_WINDOW):
                        continue
                    dosage = raw.get("dosage") if isinstance(raw.get("dosage"), Mapping) else {}
                    rate_quantity = dosage.get("rateQuantity") if isinstance(dosage.get("rateQuantity"), Mapping) else {}
                elif raw.get("status") != "active":
                    continue
                else:
                    rate_quantity = {}
                match = _vasopressor_of(_medication_concept(raw, pool))  # also a medicationReference (MIMIC, Epic)
                if match is None:
                    continue
                row, matched_by = match
                unit = rate_quantity.get("code") or rate_quantity.get("unit")
                rate = rate_quantity.get("value") if unit in _RATE_UNITS else None
                inputs.vasopressors.append(VasopressorUse(row["name"], reference_of(raw), rate, matched_by,
                                                          effective_time(raw), raw.get("status") != "completed"))
