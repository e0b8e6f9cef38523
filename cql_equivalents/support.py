"""Respiratory and haemodynamic support: the compromise that normal-looking numbers hide (issue 13 item 1).

Seed 004 pivot 2 and Ibrahim (Eur Respir J 2008): massive hemoptysis is defined by its consequences. A patient
whose SpO2 is 95 % on FiO2 0.6, who is on a ventilator, or whose SBP is 110 mmHg on norepinephrine, has that
compromise: the support is the sign. Rules and codes: data/support.toml (each row with its source); numeric
settings come from the observation inputs (FiO2 3150-0, O2 flow 3151-8), ventilation procedures from the
findings table ('mechanical_ventilation'), vasopressors from calculators.toml and support.toml.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from fhir.resources.R4B.devicerequest import DeviceRequest
from fhir.resources.R4B.deviceusestatement import DeviceUseStatement
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure
from pydantic import ValidationError

from .code_memo import CodeMemo
from .fhir_select import ResourcePool, codings, concept_text, effective_time
from .inputs import EngineInputs, Observed, Rejected, _first_error, _medication_concept, reference_of, too_far_in_future
from .tables import RXNORM, SNOMED, load
from .terminology import active as site_terminology

_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_DEVICE_STATUSES = frozenset({"active", "intended", "on-hold"})  # DeviceUseStatement / DeviceRequest in force
_MODELS = {"DeviceUseStatement": DeviceUseStatement, "DeviceRequest": DeviceRequest, "Observation": Observation,
           "MedicationAdministration": MedicationAdministration, "MedicationRequest": MedicationRequest,
           "Procedure": Procedure}


@dataclass(frozen=True)
class SupportInUse:
    key: str
    kind: str  # respiratory | haemodynamic | baseline
    label: str
    detail: str  # what the record says ("FiO2 60 %", "norepinephrine infusion")
    reference: str
    at: datetime | None
    compromise: bool  # counts as life-threatening compromise (home oxygen and terlipressin do not)
    matched_by: str
    source: str

    def as_observed(self) -> Observed:
        """The support as trigger evidence, in the shape the cards already list (value 1 = present)."""
        return Observed(f"support:{self.key}", self.detail, 1.0, "", self.at, self.reference, self.matched_by)


@dataclass(frozen=True)
class Driver:
    """A value that drove the decision: which, when, from which record, and the support it was taken on."""

    input: str
    label: str
    value: float
    unit: str
    at: datetime | None
    reference: str
    on_support: tuple[str, ...]
    note: str = ""
    newest: Observed | None = None  # the newest value of the same input when the worst one decided


# ------------------------------------------------------------------------------------------ matching

@cache
def _device_words() -> list[tuple[str, re.Pattern, dict]]:
    pairs = [(word, row) for row in load("support")["device"] for word in row["words"]]
    pairs.sort(key=lambda pair: len(pair[0]), reverse=True)  # "non-invasive ventilation" before "ventilation"
    return [(word, re.compile(r"(?<![a-z0-9])" + re.escape(word) + r"(?![a-z0-9])"), row) for word, row in pairs]


def _device_row(concepts: list[Any], text: str = "") -> tuple[dict, str] | None:
    rows = {row["key"]: row for row in load("support")["device"]}
    site = site_terminology()
    for concept in concepts:
        mapped = site.concept_of(concept, "support")
        if mapped:
            return rows[mapped.concept], mapped.note
        for coding in codings(concept):
            for row in rows.values():
                if coding.get("system") == SNOMED and coding.get("code") in row["snomed"]:
                    return row, f"SNOMED {coding['code']}"
    names = " ".join([text, *(concept_text(c) for c in concepts),
                      *(str(coding.get("display", "")) for c in concepts for coding in codings(c))]).lower()
    for word, pattern, row in _device_words():
        if pattern.search(names):
            return row, f"text '{word}' (no recognised code)"
    return None


def _vasoactive_row(concept: Any) -> tuple[dict, str] | None:
    rows = load("support")["vasoactive"]
    mapped = site_terminology().concept_of(concept, "drug")
    if mapped:
        found = next((row for row in rows if row["name"] == mapped.concept), None)
        return (found, mapped.note) if found else None
    for coding in codings(concept):
        for row in rows:
            if coding.get("system") == RXNORM and coding.get("code") in row["rxnorm"]:
                return row, f"RxNorm {coding['code']}"
    text = " ".join([concept_text(concept), *(str(c.get("display", "")) for c in codings(concept))]).lower()
    for row in rows:
        if any(word in text for word in row["words"]):
            return row, "text (no recognised code)"
    return None


def _valid(raw: dict, inputs: EngineInputs) -> bool:
    try:
        _MODELS[raw["resourceType"]].model_validate(raw)
    except ValidationError as error:
        inputs.rejected.append(Rejected(reference_of(raw), _first_error(error)))
        return False
    return True


def _in_force(row: dict, at: datetime | None, inputs: EngineInputs) -> bool:
    if not row["fresh_hours"]:
        return True  # a baseline (home oxygen): any active record
    return at is not None and inputs.now - at <= timedelta(hours=row["fresh_hours"])


# ------------------------------------------------------------------------------------------ mapping

def map_support(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Devices, device / mode flowsheet rows and vasoactive drugs into inputs.support."""
    _map_devices(pool, inputs)
    _map_procedures(pool, inputs)
    _map_device_observations(pool, inputs)
    _map_vasoactive(pool, inputs)


def _map_devices(pool: ResourcePool, inputs: EngineInputs) -> None:
    for resource_type in ("DeviceUseStatement", "DeviceRequest"):
        for raw in pool.of(resource_type):
            if not isinstance(raw.get("status"), str) or raw["status"] not in _DEVICE_STATUSES:
                continue
            concepts = [raw.get("codeCodeableConcept")]
            for key in ("device", "codeReference"):
                target = raw.get(key)
                reference = target.get("reference") if isinstance(target, Mapping) else None
                device = pool.by_reference.get(reference) if isinstance(reference, str) else None
                if device:
                    names = device.get("deviceName") if isinstance(device.get("deviceName"), list) else []
                    concepts += [device.get("type"), *(name.get("name") for name in names if isinstance(name, Mapping))]
                if isinstance(target, Mapping) and isinstance(target.get("display"), str):
                    concepts.append({"text": target["display"]})
            concepts = [c if isinstance(c, Mapping) else {"text": c} for c in concepts if isinstance(c, (Mapping, str)) and c]
            match = _device_row(concepts)
            if match is None:
                continue
            row, matched_by = match
            at = effective_time(raw) or _period_start(raw)
            if too_far_in_future(at, inputs.now) or not _in_force(row, at, inputs) or not _valid(raw, inputs):
                continue
            inputs.support.append(SupportInUse(row["key"], row["kind"], row["label"], row["label"],
                                               reference_of(raw), at, row["compromise"], matched_by, row["source"]))


def _map_procedures(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Procedures of support, by code or whole word: NIV, high-flow, and ventilation the findings' substring words
    miss (MIMIC charts "Invasive Ventilation")."""
    from .findings import _time_of
    for raw in pool.of("Procedure"):
        if raw.get("status") not in ("in-progress", "completed"):
            continue
        match = _device_row([raw.get("code")] if isinstance(raw.get("code"), Mapping) else [])
        if match is None:
            continue  # the same record read as the 'mechanical_ventilation' finding is listed once (support_in_use)
        row, matched_by = match
        at = _time_of(raw)
        if too_far_in_future(at, inputs.now) or not _in_force(row, at, inputs) or not _valid(raw, inputs):
            continue
        inputs.support.append(SupportInUse(row["key"], row["kind"], row["label"], row["label"], reference_of(raw), at,
                                           row["compromise"], matched_by, row["source"]))


def _period_start(raw: Mapping[str, Any]) -> datetime | None:
    from .fhir_select import parse_instant
    for key in ("timingPeriod", "occurrencePeriod"):
        period = raw.get(key)
        if isinstance(period, Mapping):
            return parse_instant(period.get("start"))
    return parse_instant(raw.get("timingDateTime") or raw.get("occurrenceDateTime") or raw.get("recordedOn"))


_DEVICE_ROWS = CodeMemo("support device row")


def _is_device_row(raw: dict) -> bool:
    spec = load("support")["observation"][0]
    mapped = site_terminology().concept_of(raw.get("code"), "observation")
    if mapped:
        return mapped.concept == spec["key"]
    names = " ".join([concept_text(raw.get("code")), *(str(c.get("display", "")) for c in codings(raw.get("code")))])
    return any(word in names.lower() for word in spec["words"])


def _map_device_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    for raw, _ in pool.matching("Observation", _is_device_row, memo=_DEVICE_ROWS):
        if raw.get("status") not in ("final", "amended", "corrected", "preliminary"):
            continue
        value = raw.get("valueCodeableConcept")
        text = raw.get("valueString") if isinstance(raw.get("valueString"), str) else ""
        match = _device_row([value] if isinstance(value, Mapping) else [], text)
        if match is None:
            continue
        row, matched_by = match
        at = effective_time(raw)
        if too_far_in_future(at, inputs.now) or not _in_force(row, at, inputs) or not _valid(raw, inputs):
            continue
        mapped = site_terminology().concept_of(raw.get("code"), "observation")
        inputs.support.append(SupportInUse(row["key"], row["kind"], row["label"], row["label"], reference_of(raw), at,
                                           row["compromise"], f"{matched_by}" + (f"; {mapped.note}" if mapped else ""),
                                           row["source"]))


def _map_vasoactive(pool: ResourcePool, inputs: EngineInputs) -> None:
    window = timedelta(hours=load("support")["vasoactive_window"]["hours"])
    for resource_type in ("MedicationAdministration", "MedicationRequest"):
        for raw in pool.of(resource_type):
            status, at = raw.get("status"), effective_time(raw)
            if resource_type == "MedicationAdministration":
                recent = status == "completed" and at is not None and inputs.now - at <= window
                if status != "in-progress" and not recent:
                    continue
            elif status != "active" or raw.get("doNotPerform") is True:
                continue
            match = _vasoactive_row(_medication_concept(raw, pool))
            if match is None or too_far_in_future(at, inputs.now) or not _valid(raw, inputs):
                continue
            row, matched_by = match
            inputs.support.append(SupportInUse(
                f"vasoactive_{row['name']}", "haemodynamic", f"{row['name']} (vasoactive drug)",
                f"{row['name']} {'infusion' if resource_type == 'MedicationAdministration' else 'order'}",
                reference_of(raw), at, row.get("compromise", True), matched_by, row["source"]))


# ------------------------------------------------------------------------------------------ reading

def support_in_use(inputs: EngineInputs) -> list[SupportInUse]:
    """Everything the record shows the patient is on now: settings over their cut-off, ventilation procedures,
    devices, vasopressors (SOFA ones via findings, the others via support.toml)."""
    found: list[SupportInUse] = []
    for row in load("support")["setting"]:
        observed = inputs.extreme(row["input"], "high")
        if observed is not None and _OPERATORS[row["op"]](observed.value, row["value"]):
            unit = observed.unit
            found.append(SupportInUse(row["key"], "respiratory", row["label"],
                                      f"{observed.label} {observed.value:g} {unit}".strip(), observed.reference,
                                      observed.at, True, observed.note, row["source"]))
    ventilation = inputs.finding("mechanical_ventilation")
    if ventilation is not None:
        row = next(r for r in load("support")["device"] if r["key"] == "invasive_ventilation")
        found.append(SupportInUse(row["key"], "respiratory", row["label"], ventilation.label, ventilation.reference,
                                  ventilation.at, True, ventilation.matched_by, row["source"]))
    window = timedelta(hours=load("support")["vasoactive_window"]["hours"])
    for use in inputs.vasopressors:
        if not use.running and (use.at is None or inputs.now - use.at > window):
            continue  # SOFA reads the day's vasopressors; compromise of this episode is the last 6 h
        found.append(SupportInUse(f"vasoactive_{use.name}", "haemodynamic", f"{use.name} (vasopressor)",
                                  f"{use.name}" + (f" {use.rate:g} ug/kg/min" if use.rate is not None else ""),
                                  use.reference, use.at, True, use.matched_by,
                                  "seed 004 pivot 2 (haemodynamic compromise); SOFA cardiovascular 3-4 (Vincent 1996)"))
    found += inputs.support
    unique: dict[tuple[str, str], SupportInUse] = {}
    for item in found:
        unique.setdefault((item.key, item.reference), item)
    return list(unique.values())


def compromise_support(inputs: EngineInputs) -> list[SupportInUse]:
    return [item for item in support_in_use(inputs) if item.compromise]


def baseline_keys(inputs: EngineInputs) -> set[str]:
    """Support keys that describe the patient's chronic baseline (home oxygen)."""
    return {item.key for item in inputs.support if item.kind == "baseline"}


def on_support_at(inputs: EngineInputs, at: datetime | None) -> tuple[str, ...]:
    """The support in use when a value was taken: charted within the tolerance before it, or any time after
    it within the episode (the patient was on it by then), or with no time (a running order)."""
    tolerance = timedelta(minutes=load("support")["window"]["on_support_tolerance_minutes"])
    labels = []
    oxygen = [inputs.extreme(name, "high") for name in ("fio2", "o2_flow")]
    for observed in oxygen:
        if observed is not None and (observed.input != "fio2" or observed.value > 21) and observed.value > 0 and (
                at is None or observed.at is None or abs(observed.at - at) <= tolerance):
            labels.append(f"{observed.label} {observed.value:g} {observed.unit}")
    for item in support_in_use(inputs):
        if item.kind == "baseline" or item.key in ("fio2_high", "o2_flow_high"):
            continue
        if at is None or item.at is None or item.at - tolerance <= at:
            labels.append(item.detail)
    return tuple(dict.fromkeys(labels))


def drivers(triggers: list, inputs: EngineInputs) -> list[Driver]:
    """What drove the decision, from the fired triggers' evidence."""
    found = []
    for trigger in triggers:
        for evidence in trigger.evidence:
            newest = inputs.observations.get(evidence.input)
            found.append(Driver(evidence.input, evidence.label, evidence.value, evidence.unit, evidence.at,
                                evidence.reference, on_support_at(inputs, evidence.at), evidence.note,
                                newest if newest is not None and newest.reference != evidence.reference else None))
    return found
