"""Source localisation (mirrors SourceLocalization.cql).

Seed 004 pivot 3: bronchial arteries are the source in ~90 % (Kathuria 2020, confirmed), the pulmonary artery
in ~5 % (Rasmussen aneurysm, AVM, iatrogenic rupture: PA-targeted treatment, not bronchial BAE; figure
unconfirmed, clinical.md F) and nonbronchial systemic collaterals in the rest. The yield of CT angiography
and bronchoscopy is CONDITIONAL on active bleeding: a negative study in a quiet interval does not exclude a
bronchial source, and two negatives from the same quiet interval are not independent (do not multiply).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .model import EngineInputs, Finding
from .tables import load

LOCALIZING_STUDIES = tuple(load("findings")["localization"]["studies"])  # findings.toml [localization]
BEDS = {row["key"]: row["bed"] for row in load("findings")["cue"] if "bed" in row}  # cue -> bleeding bed (findings.toml)


@dataclass
class Localization:
    studies: list[Finding] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)  # right / left, from report text cues
    beds: list[str] = field(default_factory=list)  # bleeding bed named by a report
    active_bleeding_seen: list[Finding] = field(default_factory=list)
    quiescent_negatives: list[Finding] = field(default_factory=list)

    @property
    def side(self) -> str:
        return self.sides[0] if len(self.sides) == 1 else ("bilateral / conflicting" if self.sides else "")

    @property
    def localized(self) -> bool:
        """Side localised by CTA or bronchoscopy (a CXR is a clue, never the endpoint; seed 004 phase 5)."""
        return any(("lateral_right" in s.cues or "lateral_left" in s.cues) and s.key != "cxr" for s in self.studies)

    @property
    def repeat_during_active_bleeding(self) -> bool:
        # a diffuse (DAH) pattern explains a negative search for a bleeding vessel: no repeat is asked for
        return bool(self.quiescent_negatives) and not self.localized and BEDS["diffuse_alveolar"] not in self.beds


def localize(inputs: EngineInputs) -> Localization:
    result = Localization()
    for finding in inputs.findings:
        if finding.key not in LOCALIZING_STUDIES or finding.stale:
            continue
        result.studies.append(finding)
        for cue, side in (("lateral_right", "right"), ("lateral_left", "left")):
            if cue in finding.cues and side not in result.sides:
                result.sides.append(side)
        for cue, bed in BEDS.items():
            if cue in finding.cues and bed not in result.beds:
                result.beds.append(bed)
        if "active_bleeding" in finding.cues:
            result.active_bleeding_seen.append(finding)
        elif "negative_localization" in finding.cues and finding.key != "cxr":
            result.quiescent_negatives.append(finding)
    return result
