"""Is a hemoptysis Condition the current episode, or an old problem-list entry? (issue 13 item 8)

The date is the Condition's onset, else its recordedDate, else the period of the encounter it was recorded in
(when that Encounter is in the call's data). The window is an engine choice (bleeding.toml [recency]).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .fhir_select import ResourcePool
from .fhir_values import parse_instant
from .tables import load


def condition_date(raw: Mapping[str, Any], pool: ResourcePool) -> datetime | None:
    period = raw.get("onsetPeriod")
    for moment in (raw.get("onsetDateTime"), period.get("start") if isinstance(period, Mapping) else None,
                   raw.get("recordedDate")):
        parsed = parse_instant(moment)
        if parsed:
            return parsed
    encounter = raw.get("encounter")
    reference = encounter.get("reference") if isinstance(encounter, Mapping) else None
    found = pool.by_reference.get(reference) if isinstance(reference, str) else None
    period = found.get("period") if found else None
    if isinstance(period, Mapping):
        return parse_instant(period.get("end")) or parse_instant(period.get("start"))
    return None


def is_recent_episode(raw: Mapping[str, Any], pool: ResourcePool, now: datetime) -> bool:
    at = condition_date(raw, pool)
    return at is None or now - at <= timedelta(days=load("bleeding")["recency"]["days"])
