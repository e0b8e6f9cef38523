"""The FRAME gate: true hemoptysis vs hematemesis vs pseudohemoptysis (mirrors FrameGate.cql).

Seed 004 phase 1 / pivot 1: misclassification sends the patient to the wrong engine, so blood from the GI
tract or the nasopharynx routes away instead of escalating (Earwood, Am Fam Physician 2015, PMID 25955625).
A clinician's explicit answer in the intake questionnaire decides; otherwise the record's conditions,
volume readings and features are weighed, and conflicting evidence leaves the source unclear.
"""
from __future__ import annotations

from .model import EngineInputs, SourceEvidence
from .results import FrameResult, Verdict



def blood_source_evidence(inputs: EngineInputs) -> list[SourceEvidence]:
    """Conditions, questionnaire answers and features; a recorded hemoptysis volume is expectorated blood."""
    evidence = list(inputs.blood_source)
    for reading in inputs.volumes.values():
        evidence.append(SourceEvidence("hemoptysis", f"hemoptysis volume recorded ({reading.ml:g} mL, {reading.kind})",
                                       reading.reference, True))
    return evidence


def _judged_at_the_bedside(evidence: list[SourceEvidence]) -> set[str]:
    """Sources named by an explicit answer of the intake questionnaire (the clinician's FRAME decision)."""
    return {e.points_to for e in evidence if e.explicit and e.reference.startswith("QuestionnaireResponse/")}


def frame_gate(inputs: EngineInputs) -> FrameResult:
    evidence = blood_source_evidence(inputs)
    hemoptysis = [e for e in evidence if e.points_to == "hemoptysis"]
    alternatives = [e for e in evidence if e.points_to != "hemoptysis"]
    judged = _judged_at_the_bedside(evidence)
    if len(judged) == 1:
        verdict = Verdict.HEMOPTYSIS if judged == {"hemoptysis"} else Verdict.ROUTE_AWAY
        return FrameResult(verdict, hemoptysis, alternatives, decided_by_answer=True)
    if not evidence:
        return FrameResult(Verdict.NONE)
    if hemoptysis and alternatives:
        return FrameResult(Verdict.UNCLEAR, hemoptysis, alternatives)
    if alternatives:
        return FrameResult(Verdict.ROUTE_AWAY, [], alternatives)
    return FrameResult(Verdict.HEMOPTYSIS, hemoptysis, [])
