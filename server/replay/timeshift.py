"""Moving a stored hook request forward in time, so fixtures never go stale.

A fixture is written once, at a reference instant. Replayed later, every FHIR date, dateTime and instant in it is
moved by (now - reference): "SpO2 86 % twenty minutes ago" stays twenty minutes ago, and an age computed from
birthDate stays the same. Values are recognised by their FHIR lexical form (R4 §2.24 Primitive Types), whatever
the element name, so extensions and resource types the shifter does not know are moved too.

Not moved, on purpose: partial dates (a year, or a year and month), which keep their precision; and the members
that carry identities or codes (id, reference, system, code, ...), where a date-shaped string is not a date.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
# Members whose strings are identities or codes, never moments.
_NOT_MOMENTS = frozenset({"id", "reference", "fullUrl", "url", "system", "code", "version", "display", "div",
                          "hookInstance", "userId", "patientId", "encounterId", "value"})


def parse_reference_instant(text: str) -> datetime:
    """The reference instant of a fixture: an ISO 8601 dateTime with a zone (e.g. 2026-11-23T12:00:00Z)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"reference instant '{text}' has no time zone; write it as ...Z or ...+hh:mm")
    return moment


def format_instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def shift_value(text: str, delta: timedelta) -> str:
    """Move one FHIR date or dateTime string by delta, keeping its precision and its zone."""
    if _DATE.match(text):
        moved = datetime.combine(date.fromisoformat(text), datetime.min.time()) + delta
        return moved.date().isoformat()
    if not _DATETIME.match(text):
        return text
    zone = re.search(r"(Z|[+-]\d{2}:\d{2})$", text)
    moved = datetime.fromisoformat(text.replace("Z", "+00:00")) + delta
    has_seconds = len(text) > 16 and text[16] == ":"  # hh:mm without seconds is not FHIR, but is seen
    has_fraction = has_seconds and len(text) > 19 and text[19] == "."
    if has_fraction:
        digits = len(re.match(r"\.(\d+)", text[19:]).group(1))
        body = moved.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moved.microsecond:06d}".ljust(digits, "0")[:digits]
    elif has_seconds:
        body = moved.strftime("%Y-%m-%dT%H:%M:%S")
    else:
        body = moved.strftime("%Y-%m-%dT%H:%M")
    if zone is None:
        return body
    if zone.group(1) == "Z":
        return body + "Z"
    offset = moved.strftime("%z")
    return f"{body}{offset[:3]}:{offset[3:]}"

def shift_dates(value: Any, delta: timedelta, member: str = "") -> Any:
    """A copy of a JSON value with every FHIR date / dateTime / instant moved by delta."""
    if isinstance(value, dict):
        return {key: shift_dates(item, delta, key) for key, item in value.items()}
    if isinstance(value, list):
        return [shift_dates(item, delta, member) for item in value]
    if isinstance(value, str) and member not in _NOT_MOMENTS and not delta == timedelta(0):
        return shift_value(value, delta)
    return value
