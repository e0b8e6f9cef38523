"""Choosing the value of one numeric input among many Observations, with work set by what is used.

Three steps, so that a chart of 5,000 SpO2 values in an unknown unit costs 5,000 dict reads, not 5,000 models:
1. `RawReader`: plain-dict reads of one candidate (status, time, value a JSON number, unit known, value plausible);
   a candidate failing one is rejected with a reason and a kind (for the capped summary), never modelled.
2. a ranking orders the candidates (`newest_first` here; a ranking may read every candidate of a window, e.g.
   the worst value, since step 1 is cheap) and yields readings lazily in preference order.
3. `choose`: the first usable reading is validated (fhir.resources + FHIR JSON rules, fhir_valid.validate); if
   it is not valid FHIR the next is tried. Nothing after the chosen one is read.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple


from .fhir_values import codings, concept_text
from .tables import LOINC, ObservationInput, tables
from .quick_frozen import quick_frozen

# Observation.status values whose result stands (FHIR R4 observation-status). entered-in-error, cancelled,
# registered (no result yet) and unknown never count.
STATUSES_THAT_COUNT = frozenset({"final", "amended", "corrected", "preliminary"})
STATUSES_SILENT = frozenset({"entered-in-error", "cancelled"})  # never count, and not worth a line on a card
FUTURE_TOLERANCE = timedelta(minutes=10)  # a time further ahead is a clock or entry error, not a measurement

# Rejection kinds, as the capped summary says them: "412 more SpO2 records in an unknown unit".
KIND_TEXT = {
    "status": "with a status that is not a result",
    "future": "dated in the future",
    "no-value": "with no numeric value",
    "not-a-number": "whose value is not a JSON number",
    "no-unit": "with no unit",
    "unit": "in an unknown unit",
    "implausible": "outside the plausible range",
    "invalid": "that are not valid FHIR R4",
    "bound": "reported as a bound",
    "malformed": "that are malformed",
    "unchecked": "not checked after the first invalid ones",
    "unreadable": "that cannot be read as sent",
}


class Candidate(NamedTuple):  # a tuple: thousands are made per call, and a frozen dataclass is ~3x slower to build
    input: str
    at: datetime | None
    resource: dict
    component_code: str | None  # read the value from this component, not from Observation.value
    note: str = ""  # "mapped from local code X" when the site ConceptMap named it
    component: dict | None = None  # that component, when selection found it already (not looked up again)


class Why(NamedTuple):
    """The words of a rejection, formatted only when a card shows them: past the cap of rejections listed per
    kind (inputs.REJECTED_SHOWN_PER_KIND) a rejection is only counted, so thousands of them cost no formatting."""

    template: str
    args: tuple

    def __str__(self) -> str:
        return self.template.format(*self.args)


class Reading(NamedTuple):
    """What the raw record says for one input: a value in the engine's unit, a bound, or why it cannot be used."""

    candidate: Candidate
    value: float | None = None
    note: str = ""
    bound: str = ""  # "> 8": a comparator; supersedes older values once valid
    rejection: str | Why = ""  # str(rejection) is the text
    kind: str = ""  # a KIND_TEXT key when rejected ("" for statuses that never count and are not reported)


def _quantity_of(candidate: Candidate) -> tuple[Any, Any]:
    raw = candidate.resource
    if candidate.component_code is None:
        return raw.get("valueQuantity"), raw.get("dataAbsentReason")
    if candidate.component is not None:
        return candidate.component.get("valueQuantity"), candidate.component.get("dataAbsentReason")
    components = raw.get("component")
    for component in components if type(components) is list else ():
        if type(component) is not dict:
            continue
        if any(coding.get("system") == LOINC and coding.get("code") == candidate.component_code
               for coding in codings(component.get("code"))):
            return component.get("valueQuantity"), component.get("dataAbsentReason")
    return None, None


_SAME_UNIT = (1.0, 0.0)


@cache
def _units_of(name: str) -> dict[str, tuple[float, float]]:
    """unit -> (factor, offset) for one input, from the unit table (loaded once per process)."""
    return {unit: conversion for (input_name, unit), conversion in tables().unit_factors.items() if input_name == name}


class RawReader:
    """The raw read of a candidate for one input at one `now`: what every candidate of the input is checked against (the future
    limit, the unit table, the plausible range) looked up once, not once per record (a 50,000-entry chart)."""

    __slots__ = ("spec", "latest", "units", "low", "high")

    def __init__(self, spec: ObservationInput, now: datetime) -> None:
        self.spec = spec
        self.latest = now + FUTURE_TOLERANCE
        self.units = _units_of(spec.name)
        self.low, self.high = spec.plausible

    def __call__(self, candidate: Candidate) -> Reading:
        try:
            return self._read(candidate)
        except (TypeError, AttributeError, ValueError, KeyError, IndexError, RecursionError) as error:
            return Reading(candidate, rejection=f"malformed FHIR ({type(error).__name__} while reading it)",
                           kind="malformed")

    def _read(self, candidate: Candidate) -> Reading:
        raw, spec = candidate.resource, self.spec
        status = raw.get("status")
        if type(status) is not str or status not in STATUSES_THAT_COUNT:
            if type(status) is str and status in STATUSES_SILENT:
                return Reading(candidate, rejection="never counts", kind="")
            shown = status if type(status) is str else type(status).__name__
            return Reading(candidate, rejection=f"status '{shown}' is not a result", kind="status")
        at = candidate.at
        if at is not None and at > self.latest:
            return Reading(candidate, rejection=f"{spec.label} is dated in the future ({at:%Y-%m-%d %H:%M} UTC)",
                           kind="future")
        quantity, absent = _quantity_of(candidate)
        value = quantity.get("value") if type(quantity) is dict else None
        if value is None:
            why = f"data absent ({concept_text(absent) or 'no reason'})" if absent else "no numeric value"
            return Reading(candidate, rejection=f"{spec.label}: {why}", kind="no-value")
        if type(value) not in (int, float):  # "86" as a string, true, an object: not a JSON number (FHIR R4 §2.6.2)
            shown = repr(value[:20]) if type(value) is str else f"a JSON {type(value).__name__}"
            return Reading(candidate, rejection=f"{spec.label} value is {shown}, not a JSON number", kind="not-a-number")
        comparator = quantity.get("comparator")
        if comparator is not None:
            # "< 10" or "> 8" is a bound, not a value: using the number would be a silent guess
            return Reading(candidate, bound=f"{comparator} {value}")
        code, unit = quantity.get("code"), quantity.get("unit")
        unit_text = code if type(code) is str and code else unit if type(unit) is str and unit else None
        return self._convert(candidate, float(value), unit_text)

    def _convert(self, candidate: Candidate, value: float, unit: str | None) -> Reading:
        spec, note = self.spec, ""
        if unit is None:
            if not spec.unitless_ok:
                return Reading(candidate, rejection=f"{spec.label} {value:g} has no unit; cannot tell its scale", kind="no-unit")
            factor, offset, same = 1.0, 0.0, True
            note = f"no unit sent; read as {spec.unit}"
        else:
            conversion = self.units.get(unit)
            if conversion is None:
                return Reading(candidate, rejection=Why("{} unit '{}' is not recognised", (spec.label, unit[:40])), kind="unit")
            factor, offset = conversion
            same = conversion == _SAME_UNIT  # the table's own tuple: compared once, not rebuilt twice
            if not same:
                note = f"sent as {value:g} {unit}"
        # a converted value keeps 2 decimals (86.26 mmHg from kPa, not 86.2571); a value sent in the engine's unit is kept
        # to 4 (a whole number is already that: round() costs ~0.5 us, and most charted values are whole)
        exact = value * factor + offset
        converted = exact if same and exact.is_integer() else round(exact, 4 if same else 2)
        if not self.low <= converted <= self.high:
            return Reading(candidate, rejection=Why("{} {:g} {} is outside the plausible range {:g}-{:g}",
                                                    (spec.label, converted, spec.unit, self.low, self.high)), kind="implausible")
        return Reading(candidate, converted, note)  # positional: a NamedTuple's keywords cost ~0.25 us more


Ranking = Callable[[list[Candidate], Callable[[Candidate], Reading]], Iterable[Reading]]


_NO_TIME = datetime.min.replace(tzinfo=timezone.utc)


def newest_first(candidates: list[Candidate], read: Callable[[Candidate], Reading]) -> Iterator[Reading]:
    """The newest first (a stable sort: chart order among equal times); a candidate with no time last. Lazy: a
    reading is made only when it is reached."""
    for candidate in sorted(candidates, key=lambda candidate: candidate.at or _NO_TIME, reverse=True):
        yield read(candidate)


@quick_frozen
@dataclass(frozen=True)
class Choice:
    """The reading a value is taken from (None: no usable one), and the readings passed over before it."""

    chosen: Reading | None
    passed_over: list[Reading]


# Invalid records validated per input before the rest are passed over unvalidated: a chart of 50,000 SpO2 values
# that all look usable but are not valid FHIR costs this many validations, not 50,000 (engine choice).
MAX_INVALID_PER_INPUT = 10


_UNCHECKED = f"not checked: {MAX_INVALID_PER_INPUT} newer records of this input were not valid FHIR"


def choose(readings: Iterable[Reading], validate: Callable[[dict], str]) -> Choice:
    """The first reading that is usable (or a bound) and valid FHIR; `validate(resource)` -> "" or why not."""
    passed: list[Reading] = []
    invalid = 0
    for reading in readings:
        if reading.rejection:
            passed.append(reading)
            continue
        if invalid >= MAX_INVALID_PER_INPUT:
            passed.append(Reading(reading.candidate, rejection=_UNCHECKED, kind="unchecked"))
            continue
        why = validate(reading.candidate.resource)
        if why:
            invalid += 1
            passed.append(Reading(reading.candidate, rejection=why, kind="invalid"))
            continue
        return Choice(reading, passed)
    return Choice(None, passed)
