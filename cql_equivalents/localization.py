"""Source localisation (mirrors SourceLocalization.cql).

Seed 004 pivot 3: bronchial arteries are the source in ~90 % (Kathuria 2020, confirmed), the pulmonary artery
in ~5 % (Rasmussen aneurysm, AVM, iatrogenic rupture: PA-targeted treatment, not bronchial BAE; figure
unconfirmed, clinical.md F) and nonbronchial systemic collaterals in the rest. The yield of CT angiography
and bronchoscopy is CONDITIONAL on active bleeding: a negative study in a quiet interval does not exclude a
bronchial source, and two negatives from the same quiet interval are not independent (do not multiply).
"""
from __future__ import annotations

from .model import EngineInputs, Finding
from .tables import bleeding_beds, load
from .results import Localization

LOCALIZING_STUDIES = tuple(load("findings")["localization"]["studies"])  # findings.toml [localization]



def localize(inputs: EngineInputs) -> Localization:
    result = Localization()
    for finding in inputs.findings:
        if finding.key not in LOCALIZING_STUDIES or finding.stale:
            continue
        result.studies.append(finding)
        for cue, side in (("lateral_right", "right"), ("lateral_left", "left")):
            if cue in finding.cues and side not in result.sides:
                result.sides.append(side)
        for cue, bed in bleeding_beds().items():
            if cue in finding.cues and bed not in result.beds:
                result.beds.append(bed)
        if "active_bleeding" in finding.cues:
            result.active_bleeding_seen.append(finding)
        elif "negative_localization" in finding.cues and finding.key != "cxr":
            result.quiescent_negatives.append(finding)
    return result


def study_on_record(inputs: EngineInputs, key: str) -> Finding | None:
    """A localising study of this episode (findings.toml `key`, within its fresh_hours) that a card need not ask for
    again: none when a repeat is advised (a negative study in a quiet interval, seed 004 phase 5)."""
    study = inputs.finding(key)
    if study is None or study.result == "negative" or localize(inputs).repeat_during_active_bleeding:
        return None
    return study
