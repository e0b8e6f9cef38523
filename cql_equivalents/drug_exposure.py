"""Is an antithrombotic's effect plausibly present? Reverse on the drug's effect, not on the order's status.

An active statement or order makes the patient "on" the agent (readers/medications.py). This module adds the records that are
not active but whose effect may still be there: an order on hold, a statement or order stopped recently. It
decides from the lab that measures the agent (the INR for a VKA: the only confirmed threshold) and from the time
since the last dose (MedicationAdministration, MedicationStatement.effective, the order's dosing period), within
the agent's effect window (data/exposure.toml). It also recognises heparin lock / line flushes, which keep a
catheter open and are not systemic anticoagulation. Every decision says what it rests on (`MedicationUse.basis`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from .fhir_values import parse_instant
from .tables import Agent, load
from .results import EffectWindow, Exposure
from .durations import HOUR, hours

# An administration this recent makes the patient "on" its agent even with no active statement or order
# (exposure.toml [administration]); an agent's window never shortens it.
ADMINISTRATION_LOOKBACK = timedelta(hours=load("exposure")["administration"]["lookback_hours"])
_UNITS = frozenset({"u", "[iu]", "iu", "unit", "units", "unt", "[usp'u]", "usp units"})
_LABEL = "(Heparin Lock Flush Solution USP label: not for anticoagulant therapy)"
_PER_ML = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:usp\s*)?(?:units?|unt|u|iu)\s*/\s*ml\b", re.IGNORECASE)


@cache
def _table() -> dict:
    return load("exposure")


@cache
def windows() -> dict[str, EffectWindow]:
    return {row["class"]: EffectWindow(row["class"], float(row["window_hours"]), row.get("lab", "none"),
                                       row.get("lab_threshold"), row["source"], row["window_note"])
            for row in _table()["window"]}


def window_of(agent: Agent) -> EffectWindow:
    found = windows().get(agent.drug_class)
    if found is None:  # a class without a row is a table error: fail loudly in tests, not silently at the bedside
        raise KeyError(f"exposure.toml has no window for class {agent.drug_class!r}")
    return found


def administration_lookback(agent: Agent) -> timedelta:
    return max(ADMINISTRATION_LOOKBACK, hours(window_of(agent).hours))


# ---------------------------------------------------------------------------------------------- flushes

def _words(*parts: Any) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Mapping):
            out.append(str(part.get("text") or ""))
            for coding in part.get("coding") or ():
                if isinstance(coding, Mapping):
                    out += [str(coding.get("code") or ""), str(coding.get("display") or "")]
    return " ".join(out).lower()


def _quantity(value: Any) -> tuple[float | None, str]:
    if isinstance(value, Mapping) and isinstance(value.get("value"), (int, float)):
        return float(value["value"]), str(value.get("code") or value.get("unit") or "").lower()
    return None, ""


def _dosages(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The dosage blocks of an administration, an order or a statement."""
    if raw.get("resourceType") == "MedicationAdministration":
        return [raw["dosage"]] if isinstance(raw.get("dosage"), Mapping) else []
    key = "dosageInstruction" if raw.get("resourceType") == "MedicationRequest" else "dosage"
    return [d for d in raw.get(key) or () if isinstance(d, Mapping)]


def _dose_and_rate(dosage: Mapping[str, Any]) -> tuple[tuple[float | None, str], tuple[float | None, str]]:
    if "dose" in dosage or "rateQuantity" in dosage:  # MedicationAdministration.dosage
        return _quantity(dosage.get("dose")), _quantity(dosage.get("rateQuantity"))
    for item in dosage.get("doseAndRate") or ():
        if isinstance(item, Mapping):
            return _quantity(item.get("doseQuantity")), _quantity(item.get("rateQuantity"))
    return (None, ""), (None, "")


def may_be_flush(agent: Agent) -> bool:
    """Whether flush_reason can say anything of this agent (exposure.toml [flush] classes: heparin): a caller
    need not read the drug's words for flush_reason otherwise."""
    return agent.drug_class in _table()["flush"]["classes"]


def flush_reason(raw: Mapping[str, Any], agent: Agent, drug_words: str) -> str | None:
    """Why this heparin record is a lock / line flush (not systemic anticoagulation), or None.
    Dose, concentration and route tell it: the words of the drug, dosage, route and method; a dose in units
    within the lock-flush range; a volume of a lock-strength solution."""
    if not may_be_flush(agent):
        return None
    rule = _table()["flush"]
    dosages = _dosages(raw)
    text = " ".join([drug_words, *(_words(d.get("text"), d.get("route"), d.get("method"), d.get("site"))
                                   for d in dosages)])
    pattern = r"\b(" + "|".join(re.escape(word) for word in rule["words"]) + r")\b"
    cue = re.search(pattern, text)
    concentration = _PER_ML.search(text)
    per_ml = float(concentration.group(1).replace(",", ".")) if concentration else None
    for dosage in dosages or ({},):
        (dose, unit), (rate, _) = _dose_and_rate(dosage)
        if rate is not None:
            continue  # an infusion runs at a rate: never read as a lock
        units = dose if dose is not None and unit in _UNITS else None
        if units is None and dose is not None and unit == "ml" and per_ml is not None:
            units = dose * per_ml  # a volume of a solution whose strength the product names
        if units is not None and units <= rule["max_units"]:
            return (f"heparin {units:g} U" + (f" ({per_ml:g} U/mL)" if per_ml is not None else "")
                    + (f", '{cue.group(1)}'" if cue else "") + f": a lock / flush dose (<= {rule['max_units']} U) "
                    f"keeps a catheter open; it is not systemic anticoagulation, so no reversal is due for it {_LABEL}")
        if units is None and cue:
            return (f"heparin '{cue.group(1)}' (lock / line flush): keeps a catheter open; it is not systemic "
                    f"anticoagulation, so no reversal is due for it {_LABEL}")
    return None


# ---------------------------------------------------------------------------------------------- last dose

def last_dose_time(raw: Mapping[str, Any]) -> datetime | None:
    """When the last dose of a statement or order can have been taken, where the record says it."""
    if raw.get("resourceType") == "MedicationStatement":
        period = raw.get("effectivePeriod")
        if isinstance(period, Mapping) and period.get("end"):
            return parse_instant(period.get("end"))
        return parse_instant(raw.get("effectiveDateTime"))
    ends = []
    for dosage in _dosages(raw):
        bounds = ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") \
            if isinstance(dosage.get("timing"), Mapping) else None
        if isinstance(bounds, Mapping):
            ends.append(parse_instant(bounds.get("end")))
    validity = (raw.get("dispenseRequest") or {}).get("validityPeriod") \
        if isinstance(raw.get("dispenseRequest"), Mapping) else None
    if isinstance(validity, Mapping):
        ends.append(parse_instant(validity.get("end")))
    known = [end for end in ends if end is not None]
    return max(known) if known else None


def _hours(now: datetime, then: datetime) -> float:
    return round((now - then) / HOUR, 1)


def judge(raw: Mapping[str, Any], agent: Agent, status: str, observations: Mapping[str, Any], now: datetime,
          given: datetime | None) -> Exposure:
    """Exposure from a record that is not active. `given`: the newest administration of the agent, if any."""
    statuses = _table()["statuses"]
    kind = "request" if raw.get("resourceType") == "MedicationRequest" else "statement"
    paused = status in statuses[f"{kind}_paused"]
    ended = status in statuses[f"{kind}_ended"]
    if not (paused or ended):
        return Exposure(False, f"status '{status}' does not count")
    window = window_of(agent)
    if status in statuses.get("asserted_within_window", ()):
        asserted = parse_instant(raw.get("dateAsserted"))
        if asserted is None or now - asserted > hours(window.hours):
            return Exposure(False, f"status '{status}', not asserted within the {window.hours:g} h window")
        status = f"reported {_hours(now, asserted)} h ago (status unknown)"
    lab = observations.get(window.lab)
    last = max((t for t in (last_dose_time(raw), given) if t is not None), default=None)
    within = last is not None and now - last <= hours(window.hours)
    where = f"effect window {window.hours:g} h ({window.note})"
    if lab is not None and window.lab_threshold is not None:
        shown = lab.value >= window.lab_threshold
        lab_text = f"{lab.label} {lab.value:g} {'>=' if shown else '<'} {window.lab_threshold:g} (`{lab.reference}`)"
        if shown and (paused or within or last is None):
            return Exposure(True, f"{status}, but {lab_text}: its effect is present")
        if not shown:
            return Exposure(False, f"{status}; {lab_text}: no residual effect")
    if within:
        return Exposure(True, f"{status}; last dose {_hours(now, last)} h ago, within its {where}")
    if paused and last is None:
        return Exposure(True, f"{status}; time of the last dose not recorded: its effect may be present "
                              f"(ask; {where})")
    if last is not None:
        return Exposure(False, f"{status}; last dose {_hours(now, last)} h ago, beyond its {where}")
    return Exposure(False, f"{status} at an unknown time, and no lab shows an effect")


def lab_says_no_effect(agent: Agent, observations: Mapping[str, Any]) -> bool:
    """The lab that measures the agent, with a confirmed threshold, is below it (an INR < 1.4 on a VKA)."""
    window = window_of(agent)
    lab = observations.get(window.lab)
    return lab is not None and window.lab_threshold is not None and lab.value < window.lab_threshold


def paused_or_ended(raw: Mapping[str, Any]) -> bool:
    if not isinstance(raw.get("status"), str):
        return False  # malformed: never counts (and never raises)
    statuses = _table()["statuses"]
    kind = "request" if raw.get("resourceType") == "MedicationRequest" else "statement"
    return raw.get("status") in (*statuses[f"{kind}_paused"], *statuses[f"{kind}_ended"])


def newest_administration(administrations: list, agent: Agent) -> datetime | None:
    times = [dose.at for dose in administrations if dose.agent.name == agent.name and dose.at is not None]
    return max(times) if times else None
