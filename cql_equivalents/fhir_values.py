"""Reading FHIR R4 datatypes from raw JSON, before any model is built: codings, a concept's text, statuses, and
when something happened (a date / dateTime / instant; a resource's effective, performed or period times).

Every reader uses these, so a malformed member (a list where a code belongs, a number where a date belongs)
is passed over the same way everywhere: never an exception, never a list compared with a code.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any


def _is_object(value: Any) -> bool:
    # JSON objects are plain dicts: an exact type check first, the Mapping ABC check (~5x slower) only otherwise.
    return type(value) is dict or isinstance(value, Mapping)


_TEXT_OR_ABSENT = (str, type(None))


def codings(concept: Any) -> list[Mapping[str, Any]]:
    """The Coding objects of a CodeableConcept whose system, code and display are strings (or absent); anything
    malformed is passed over (never an exception, and never a list compared with a code)."""
    if type(concept) is not dict and not isinstance(concept, Mapping):
        return []
    found = concept.get("coding")
    if type(found) is not list:
        return []
    # a Coding is well formed when it is an object whose system, code and display are strings or absent; one loop
    # without a call per coding: this runs for every coding each reader looks at (tens of thousands per call)
    text_or_absent = _TEXT_OR_ABSENT
    kept = []
    for coding in found:
        if (type(coding) is dict or isinstance(coding, Mapping)) and type(coding.get("system")) in text_or_absent \
                and type(coding.get("code")) in text_or_absent and type(coding.get("display")) in text_or_absent:
            kept.append(coding)
    return kept


def concept_text(concept: Any) -> str:
    """Human text of a CodeableConcept: its text, else the first display."""
    if not _is_object(concept):
        return ""
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for coding in codings(concept):
        if isinstance(coding.get("display"), str):
            return coding["display"]
    return ""


def parse_instant(text: Any) -> datetime | None:
    """Parse a FHIR date, dateTime or instant, as a UTC moment. Partial dates take their first moment; no zone
    means UTC. A time sent with an offset (10:00+02:00) is the same instant in UTC (08:00): every card writes times
    as "HH:MM UTC", and an offset kept here was shown as UTC, two hours off (found in issue 16)."""
    if not isinstance(text, str) or len(text) < 4:
        return None
    candidate = text
    if len(text) == 4:
        candidate = f"{text}-01-01"
    elif len(text) == 7:
        candidate = f"{text}-01"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)


_EFFECTIVE_KEYS = ("effectiveDateTime", "effectiveInstant", "issued", "dateAsserted", "authoredOn", "recordedDate",
                   "onsetDateTime")


def effective_time(resource: Mapping[str, Any]) -> datetime | None:
    """When an observation or statement was true: effective[x], else issued / recorded dates."""
    for key in _EFFECTIVE_KEYS:
        found = resource.get(key)
        if found is None:
            continue  # most keys are absent: no call for them (this runs for every record a reader dates)
        moment = parse_instant(found)
        if moment:
            return moment
    for key in ("effectivePeriod", "onsetPeriod"):
        period = resource.get(key)
        if isinstance(period, Mapping):
            moment = parse_instant(period.get("end")) or parse_instant(period.get("start"))
            if moment:
                return moment
    return None


def status_of(resource: Mapping[str, Any]) -> str:
    """A resource's `status` when it is a string, else "" (a malformed status matches no status set and is
    rejected when the resource is validated; never an unhashable-type error)."""
    status = resource.get("status")
    return status if type(status) is str else ""


def status_code(concept: Any) -> str | None:
    for coding in codings(concept):
        code = coding.get("code")
        if isinstance(code, str):
            return code
    return None


def time_of(resource: Mapping[str, Any]) -> datetime | None:
    """When a procedure, report, order or result happened: the first of its own time members, else the end (or
    start) of performedPeriod, else its effective time."""
    for key in ("performedDateTime", "started", "occurrenceDateTime", "authoredOn"):
        found = resource.get(key)
        if found is None:
            continue
        moment = parse_instant(found)
        if moment:
            return moment
    period = resource.get("performedPeriod")
    if isinstance(period, Mapping):
        moment = parse_instant(period.get("end")) or parse_instant(period.get("start"))
        if moment:
            return moment
    return effective_time(resource)


def period_start(raw: Mapping[str, Any]) -> datetime | None:
    """When a device was put in use: the start of its timing / occurrence period, else its own date member."""
    for key in ("timingPeriod", "occurrencePeriod"):
        period = raw.get(key)
        if isinstance(period, Mapping):
            return parse_instant(period.get("start"))
    return parse_instant(raw.get("timingDateTime") or raw.get("occurrenceDateTime") or raw.get("recordedOn"))
