"""Causes seen only on imaging (seed 004 entry point cavity_or_mass_on_imaging): a cavity, a mycetoma /
aspergilloma or a lung mass named in a CT report's conclusion or an ImagingStudy opens the sibling engines,
as a coded condition would. Rows: data/sibling_engines.toml [[imaging_cause]]; words: data/findings.toml cues.
"""
from __future__ import annotations

from functools import cache

from .model import EngineInputs
from .tables import load
from .results import ImagingCause


@cache
def _rows() -> list[dict]:
    return load("sibling_engines").get("imaging_cause", [])


def imaging_causes(inputs: EngineInputs) -> list[ImagingCause]:
    found = []
    for finding in inputs.findings:
        if finding.stale:
            continue
        for row in _rows():
            if row["cue"] in finding.cues:
                found.append(ImagingCause(row["cue"], row["label"], tuple(row["engines"]), finding.label,
                                          finding.reference, finding.at, row["source"]))
    return found
