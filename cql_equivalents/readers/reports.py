"""Test results, imaging / bronchoscopy reports and procedures of findings.toml (mirrors
MassiveHemoptysisFindings.cql): which finding a record is, its result (positive / negative) and the cues its
report text gives (side, lobe, active bleeding...).

Selection runs over raw dicts (code, status, text); only a selected resource is validated with fhir.resources.
Where no code is confirmed, words in the code's text are matched and the finding says so ("matched by text").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure

from ..code_memo import memo_for
from ..concept_match import match_concept, text_note
from ..fhir_select import ResourcePool
from ..fhir_values import codings, status_of
from ..model import EngineInputs, Finding, Rejected
from ..tables import LOINC, RXNORM, SNOMED, tables
from .record import is_stale, reference_of, skipped_if_malformed, texts, too_far_in_future, validated
from ..fhir_values import time_of

_MODELS = {"Observation": Observation, "DiagnosticReport": DiagnosticReport, "Procedure": Procedure,
           "ImagingStudy": ImagingStudy, "MedicationRequest": MedicationRequest,
           "MedicationAdministration": MedicationAdministration}
# Statuses that mean "not a result / not done": never counted (FHIR R4 status value sets of each resource).
NOT_DONE = frozenset({"entered-in-error", "cancelled", "registered", "preparation", "not-done", "stopped",
                      "unknown", "revoked", "draft"})
# HL7 v3 ObservationInterpretation codes (FHIR R4 value set observation-interpretation).
POSITIVE_INTERPRETATIONS = frozenset({"POS", "DET", "H", "HH", "HU", "A", "AA", "R"})
NEGATIVE_INTERPRETATIONS = frozenset({"NEG", "ND", "N", "S"})
NEGATIVE_WORDS = ("not detected", "negative", "no mycobacteri", "none seen", "no acid")
POSITIVE_WORDS = ("positive", "detected", "seen", "present")

# What match_finding reads besides `code` (and the resource type): a resource carrying one is matched alone.
MATCH_ALSO_READS = ("procedureCode", "description", "medicationCodeableConcept", "series")
_CODE_MEMBERS = ("code", "procedureCode", "medicationCodeableConcept")


def match_finding(resource: Mapping[str, Any]) -> tuple[dict, str] | None:
    """The findings.toml row this resource is (the row must list its resource type), and how it was recognised."""
    table = tables()
    resource_type = resource.get("resourceType")

    def of_this_type(row: dict | None) -> dict | None:
        return row if row is not None and resource_type in row["resources"] else None

    def by_code(system: Any, code: str) -> tuple[dict, str] | None:
        row = of_this_type(table.finding_loinc.get(code) if system == LOINC else
                           table.finding_snomed.get(code) if system == SNOMED else
                           table.finding_rxnorm.get(code) if system == RXNORM else None)
        return (row, "code") if row else None

    def words() -> str:
        names = texts(resource, "code", "procedureCode", "description", "medicationCodeableConcept")
        if resource_type == "ImagingStudy":
            names += " " + " ".join(texts(series, "description", "bodySite") for series in resource.get("series") or ()
                                    if isinstance(series, Mapping))
        return names

    def by_words(names: str) -> tuple[dict, str] | None:
        for row in table.findings:
            if resource_type not in row["resources"]:
                continue
            for word in row["words"]:
                if word in names:
                    return row, text_note(word)
        return None

    return match_concept([resource.get(key) for key in _CODE_MEMBERS], site_space="finding",
                         site_row=lambda key: of_this_type(next(row for row in table.findings if row["key"] == key)),
                         code_row=by_code, words=words, word_row=by_words)


# "no change in the cavity" still reports a cavity: an unchanged finding is not a negated one
_NEGATION = re.compile(r"\b(?:no(?! (?:interval |significant )?change)|not|without|negative for|absence of|free of)\b")
_CLAUSE_END = re.compile(r"[.;:\n]")
NEGATION_WINDOW = 40  # characters before a word in which a negation of its clause is looked for


def _affirmed(text: str, word: str) -> bool:
    """The word occurs at least once outside a negated clause ("no cavitation" does not count)."""
    start = text.find(word)
    while start != -1:
        clause = _CLAUSE_END.split(text[max(0, start - NEGATION_WINDOW):start])[-1]
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
            if coding.get("code") in POSITIVE_INTERPRETATIONS:
                return "positive"
            if coding.get("code") in NEGATIVE_INTERPRETATIONS:
                return "negative"
    text = " ".join([texts(resource, "valueCodeableConcept", "conclusionCode"),
                     str(resource.get("valueString") or ""), str(resource.get("conclusion") or "")]).lower()
    # the result is the first clause ("MTB detected, rifampicin resistance not detected" is positive)
    text = re.split(r"[,;.\n]", text.strip(), maxsplit=1)[0]
    if any(word in text for word in NEGATIVE_WORDS):
        return "negative"
    if any(word in text for word in POSITIVE_WORDS):
        return "positive"
    return "unknown"


def _report_text(resource: Mapping[str, Any]) -> str:
    text = texts(resource, "conclusion", "conclusionCode", "description", "outcome", "note", "followUp",
                  "complication", "valueString", "valueCodeableConcept")
    for series in resource.get("series") or ():  # ImagingStudy: what each series shows
        if isinstance(series, Mapping):
            text += " " + texts(series, "description")
    for note in resource.get("note") or ():
        if isinstance(note, Mapping) and isinstance(note.get("text"), str):
            text += " " + note["text"].lower()
    return text



def read_table_findings(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type in _MODELS:
        # most resources have no finding: matching never visits them
        for raw, match in pool.matching(resource_type, match_finding, also_reads=MATCH_ALSO_READS,
                                        memo=memo_for(("finding", resource_type))):
            with skipped_if_malformed(inputs, raw):
                if status_of(raw) in NOT_DONE:
                    continue
                row, matched_by = match
                reference = reference_of(raw)
                at = time_of(raw)
                if too_far_in_future(at, inputs.now):
                    inputs.rejected.append(Rejected(reference, f"{row['label']} is dated in the future"))
                    continue
                if not validated(inputs, _MODELS[resource_type], raw, input=row["input"] or row["key"]):
                    continue
                reads = row["reads"]
                result = _result(raw) if reads == "result" else "done"
                cues = _cues(_report_text(raw)) if reads == "report" else ()
                inputs.findings.append(Finding(
                    row["key"], row["input"], row["label"], reference, at, result, cues, matched_by,
                    is_stale(at, inputs.now, row["fresh_hours"]), row["source"]))
    oldest = datetime.min.replace(tzinfo=inputs.now.tzinfo)
    inputs.findings.sort(key=lambda finding: finding.at or oldest, reverse=True)  # newest first

