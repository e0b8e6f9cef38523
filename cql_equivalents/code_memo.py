"""What a code means, remembered for the life of the process.

Selection asks the same questions of every chart: is LOINC 59408-5 an input, is this code a finding, a volume
row, a support setting? The answer depends only on the code (its compact JSON: `concept_signature` below), the clinical tables (loaded once per process) and the site's ConceptMap.
So it is worked out once per process per distinct code, not once per call: a call pays a dict lookup per
distinct code of its chart.

Bounded: an EHR sends a few hundred distinct codes; a body of 50,000 made-up codes fills the memo to its cap and
it starts over (never unbounded memory). Installing another site ConceptMap starts every memo over.
A result is shared between calls, so classifiers return values nobody mutates (tuples, table rows, None).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import orjson

from .terminology import active as site_terminology

T = TypeVar("T")
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


def concept_signature(concept: Any) -> bytes | None:
    """A resource's `code` as a hashable key: its compact JSON (C speed, ~0.3 us; building a tuple of its codings
    took ~1.5 us, a twentieth of a 50,000-entry call). Two codes with one key are the same JSON, so whatever
    reads only the code answers them alike. None when the code is absent or not an object (such a resource is
    then read on its own)."""
    if type(concept) is not dict:
        return None
    try:
        return orjson.dumps(concept)
    except TypeError:  # nested past orjson's limit, an integer past 64 bits
        return None


def remembered(memo: CodeMemo, concept: Any, compute: Callable[[Any], T]) -> T:
    """`compute(concept)` once per process per distinct concept (its compact JSON), for a question whose answer
    depends on nothing but the concept and the tables; a concept that has no signature is computed each time."""
    key = concept_signature(concept)
    if key is None:
        return compute(concept)
    answers = memo.answers()
    found: Any = answers.get(key, MISSING)
    if found is MISSING:
        found = answers[key] = compute(concept)
    return found


_DIGEST_KEY = hashlib.blake2b(b"code_memo members", key=os.urandom(32), digest_size=20)


def members_digest(resource: dict, keys: tuple[str, ...]) -> tuple[str, bytes] | None:
    """A memo key for a resource read by its code and `keys`: a tuple, so never equal to a code signature."""
    try:
        text = orjson.dumps([resource.get("code"), *[resource.get(key) for key in keys]])
    except TypeError:  # nested past orjson's limit, an integer past 64 bits: classified each time
        return None
    hasher = _DIGEST_KEY.copy()
    hasher.update(text)
    return ("members", hasher.digest())
