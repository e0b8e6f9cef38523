"""What a code means, remembered for the life of the process.

Selection asks the same questions of every chart: is LOINC 59408-5 an input, is this code a finding, a volume
row, a support setting? The answer depends only on the code (its compact JSON: `fhir_select.concept_signature`), the clinical tables (loaded once per process) and the site's ConceptMap.
So it is worked out once per process per distinct code, not once per call: a call pays a dict lookup per
distinct code of its chart.

Bounded: an EHR sends a few hundred distinct codes; a body of 50,000 made-up codes fills the memo to its cap and
it starts over (never unbounded memory). Installing another site ConceptMap starts every memo over.
A result is shared between calls, so classifiers return values nobody mutates (tuples, table rows, None).
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .terminology import active as site_terminology

MAX_CODES = 4096  # distinct codes remembered per question (engine choice: ~20x what a chart sends)
_MISSING = object()


class CodeMemo:
    """One question's answers, by code signature, valid while the same site ConceptMap is installed."""

    __slots__ = ("name", "_answers", "_site")

    def __init__(self, name: str):
        self.name = name
        self._answers: dict[Hashable, Any] = {}
        self._site: object = None

    def answers(self) -> dict[Hashable, Any]:
        """The answers so far (empty after a ConceptMap change or once the cap was reached)."""
        site = site_terminology()
        if site is not self._site or len(self._answers) >= MAX_CODES:
            self._answers = {}
            self._site = site
        return self._answers

    def __len__(self) -> int:
        return len(self._answers)


MISSING = _MISSING
_BY_KEY: dict[Hashable, CodeMemo] = {}


def memo_for(key: Hashable) -> CodeMemo:
    """The memo of a question named by a hashable key (e.g. ("coded", system, wanted codes)); a bounded
    number of questions, since keys come from code, not from requests."""
    found = _BY_KEY.get(key)
    if found is None:
        if len(_BY_KEY) >= 64:  # keys are built by the engine's code: more than this is a bug, not a chart
            _BY_KEY.clear()
        found = _BY_KEY[key] = CodeMemo(repr(key)[:80])
    return found
