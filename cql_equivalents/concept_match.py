"""The one way a coded concept is matched to an engine concept (a condition, finding, drug, device...).

Order of evidence, strongest first, the same for every table:
1. the site's own codes (its ConceptMap, terminology.py): "mapped from local code X";
2. the standard codes the table lists (SNOMED CT, ICD-10, LOINC, RxNorm, ATC), per coding;
3. words in the concept's text and displays, when no code is recognised: the card says "matched by text".
Each caller says what its table holds at each step; the order and the fall-through live here only.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .fhir_values import codings, concept_text
from .terminology import active as active_site_terminology

Row = TypeVar("Row")
Match = tuple[Row, str]  # the row matched, and how it was recognised (for the card)


def coded_words(concept: Any) -> str:
    """A concept's text and every coding's display, lower case: what a person reads as its name."""
    return " ".join([concept_text(concept), *(str(c.get("display", "")) for c in codings(concept))]).lower()


def match_concept(concepts: Sequence[Any], *, code_row: Callable[[Any, str], Match | None],
                  words: Callable[[], str], word_row: Callable[[str], Match | None],
                  site_space: str | None = None, site_row: Callable[[str], Row | None] | None = None,
                  site_decides: bool = False) -> Match | None:
    """The first match for these concepts (one resource's code members, in order of precedence).

    site_space / site_row: the ConceptMap space read and the row of a mapped concept (None: not one of this
    table's, read on); site_decides: a concept the site mapped elsewhere is not read further.
    code_row(system, code): the row of a standard code and the words naming the code, or None.
    words() / word_row(text): the text read when no code matched (built only then), and its match."""
    if site_space is not None and site_row is not None:
        site = active_site_terminology()
        for concept in concepts:
            mapped = site.concept_of(concept, site_space)
            if mapped:
                row = site_row(mapped.concept)
                if row is not None:
                    return row, mapped.note
                if site_decides:
                    return None
    for concept in concepts:
        for coding in codings(concept):
            code = coding.get("code")
            if isinstance(code, str):
                found = code_row(coding.get("system"), code)
                if found is not None:
                    return found
    text = words()
    return word_row(text) if text.strip() else None


def first_word(text: str, pairs: Sequence[tuple[str, Row]], note: Callable[[str], str]) -> Match | None:
    """The row of the first (word, row) pair whose word occurs in the text, with how it was recognised."""
    for word, row in pairs:
        if word in text:
            return row, note(word)
    return None


def text_note(word: str) -> str:
    return f"text '{word}' (no recognised code)"
