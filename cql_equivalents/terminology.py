"""Site terminology: a site's FHIR R4 ConceptMap from its local codes to the engine's concepts.

EHRs chart with local codes (flowsheet rows, local drug and condition codes). A site names them once, in a
ConceptMap whose `group.target` is one of the engine's concept spaces below and whose target codes are keys of
the engine's own tables; every reader of the engine asks this one matcher. The map is checked in full at
start (fhir.resources model, then every target against the tables): a map the engine cannot honour stops the
service instead of being half-used. A value matched through it says "mapped from local code X".
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fhir.resources.R4B.conceptmap import ConceptMap
from pydantic import ValidationError

from .tables import load

CONCEPT_SYSTEM_PREFIX = "urn:hemoptysis-cds:concept:"
# ConceptMap.element.target.equivalence values that do NOT say "the local code means this concept" (FHIR R4
# concept-map-equivalence): such rows are read and ignored.
NOT_A_MATCH = frozenset({"unmatched", "disjoint"})


class TerminologyError(ValueError):
    """The site's ConceptMap cannot be used; the message names the file and what is wrong."""


@cache
def concept_spaces() -> dict[str, frozenset[str]]:
    """Each concept space and the keys it may map to, read from the tables that identify the concept."""
    observations = {row["name"] for row in load("observations")["input"]}
    observations |= {row["concept"] for row in load("bleeding")["volume_concept"]}
    observations |= {row["key"] for row in load("support")["observation"]}
    drugs = {row["name"] for row in load("antithrombotics")["agent"]}
    drugs |= {row["name"] for row in load("calculators")["vasopressor"]}
    drugs |= {row["name"] for row in load("support")["vasoactive"]}
    return {
        "observation": frozenset(observations),
        "condition": frozenset(row["key"] for row in load("conditions")["condition"]),
        "finding": frozenset(row["key"] for row in load("findings")["finding"]),
        "support": frozenset(row["key"] for row in load("support")["device"]),
        "drug": frozenset(drugs),
    }


def concept_system(space: str) -> str:
    return CONCEPT_SYSTEM_PREFIX + space


@dataclass(frozen=True)
class Mapped:
    """A local code the site mapped onto one engine concept."""

    space: str
    concept: str
    system: str
    code: str
    display: str = ""

    @property
    def note(self) -> str:
        shown = f"{self.code} ({self.display})" if self.display else self.code
        return f"mapped from local code {shown} of {self.system}"


@dataclass
class SiteTerminology:
    name: str = ""  # the file it came from ("" when no map is configured)
    _by_code: dict[tuple[str, str], list[Mapped]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self._by_code)

    def lookup(self, coding: Any, space: str) -> Mapped | None:
        """The engine concept this Coding maps to in `space`, or None."""
        if type(coding) is not dict and not isinstance(coding, Mapping):
            return None
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            return None
        for mapped in self._by_code.get((system, code), ()):
            if mapped.space == space:
                return mapped
        return None

    def concept_of(self, concept: Any, space: str) -> Mapped | None:
        """The first Coding of a CodeableConcept that maps into `space`."""
        if not self._by_code or not isinstance(concept, Mapping):
            return None
        coding = concept.get("coding")
        for item in coding if type(coding) is list else ():
            found = self.lookup(item, space)
            if found:
                return found
        return None

    def local_codes(self, space: str, concepts: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(system, code) of every local code mapped into `space` (onto one of `concepts` when given), in file
        order: what the prefetch templates must also ask for."""
        wanted = None if concepts is None else set(concepts)
        found: list[tuple[str, str]] = []
        for key, rows in self._by_code.items():
            if any(row.space == space and (wanted is None or row.concept in wanted) for row in rows):
                found.append(key)
        return found


def _fail(path: str, message: str) -> TerminologyError:
    return TerminologyError(f"site ConceptMap {path}: {message}")


def parse_site_terminology(document: Any, path: str = "(inline)") -> SiteTerminology:
    if not isinstance(document, dict) or document.get("resourceType") != "ConceptMap":
        raise _fail(path, "is not a FHIR ConceptMap (resourceType must be 'ConceptMap')")
    try:
        ConceptMap.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise _fail(path, f"is not a valid FHIR R4 ConceptMap ({where}: {first.get('msg')})") from None
    spaces = concept_spaces()
    terminology = SiteTerminology(name=path)
    for g, group in enumerate(document.get("group") or ()):
        source, target = group.get("source"), group.get("target")
        where = f"group[{g}]"
        if not source:
            raise _fail(path, f"{where}.source is missing: the local code system must be named")
        space = (target or "").removeprefix(CONCEPT_SYSTEM_PREFIX)
        if not target or not target.startswith(CONCEPT_SYSTEM_PREFIX) or space not in spaces:
            raise _fail(path, f"{where}.target is {target!r}; it must be one of "
                              + ", ".join(concept_system(name) for name in sorted(spaces)))
        for e, element in enumerate(group.get("element") or ()):
            code = element.get("code")
            if not code:
                raise _fail(path, f"{where}.element[{e}].code is missing")
            for t, row in enumerate(element.get("target") or ()):
                if row.get("equivalence") in NOT_A_MATCH:
                    continue
                concept = row.get("code")
                if concept not in spaces[space]:
                    raise _fail(path, f"{where}.element[{e}].target[{t}].code {concept!r} is not a {space} concept "
                                      f"of the engine (known: {', '.join(sorted(spaces[space]))})")
                terminology._by_code.setdefault((source, code), []).append(
                    Mapped(space, concept, source, code, element.get("display") or ""))
    if not terminology:
        raise _fail(path, "maps no local code onto an engine concept")
    return terminology


def load_site_terminology(path: str) -> SiteTerminology:
    """The site's map from a JSON file; an empty terminology when no file is configured."""
    if not path:
        return SiteTerminology()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise _fail(path, f"cannot be read ({error.strerror or error})") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise _fail(path, f"is not JSON ({error})") from None
    return parse_site_terminology(document, path)


_ACTIVE = [SiteTerminology()]


def install(terminology: SiteTerminology) -> None:
    """The map every reader uses from now on (set once at start by the app)."""
    _ACTIVE[0] = terminology


def active() -> SiteTerminology:
    return _ACTIVE[0]
