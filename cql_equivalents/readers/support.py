"""Respiratory and haemodynamic support read from the record (support.toml, each row with its source): devices
in use (DeviceUseStatement / DeviceRequest and the Device they name), procedures of support, device / mode
flowsheet rows, and vasoactive drugs other than the SOFA vasopressors. What counts as compromise: support.py."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from fhir.resources.R4B.devicerequest import DeviceRequest
from fhir.resources.R4B.deviceusestatement import DeviceUseStatement
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure

from ..code_memo import CodeMemo
from ..concept_match import coded_words, match_concept
from ..code_memo import remembered
from ..fhir_select import ResourcePool
from ..fhir_values import codings, concept_text, effective_time
from ..model import EngineInputs, SupportInUse
from ..tables import RXNORM, SNOMED, load
from ..terminology import active as site_terminology
from .record import medication_concept, reference_of, too_far_in_future, validated
from ..fhir_values import period_start, time_of
from ..durations import hours

_DEVICE_STATUSES = frozenset({"active", "intended", "on-hold"})  # DeviceUseStatement / DeviceRequest in force
_PROCEDURE_STATUSES = frozenset({"in-progress", "completed"})  # a support Procedure under way or done
_MODELS = {"DeviceUseStatement": DeviceUseStatement, "DeviceRequest": DeviceRequest, "Observation": Observation,
           "MedicationAdministration": MedicationAdministration, "MedicationRequest": MedicationRequest,
           "Procedure": Procedure}


@cache
def _device_words() -> list[tuple[str, re.Pattern, dict]]:
    pairs = [(word, row) for row in load("support")["device"] for word in row["words"]]
    pairs.sort(key=lambda pair: len(pair[0]), reverse=True)  # "non-invasive ventilation" before "ventilation"
    return [(word, re.compile(r"(?<![a-z0-9])" + re.escape(word) + r"(?![a-z0-9])"), row) for word, row in pairs]


def _device_row(concepts: list[Any], text: str = "") -> tuple[dict, str] | None:
    rows = {row["key"]: row for row in load("support")["device"]}

    def by_code(system: Any, code: str) -> tuple[dict, str] | None:
        row = next((row for row in rows.values() if system == SNOMED and code in row["snomed"]), None)
        return (row, f"SNOMED {code}") if row else None

    def words() -> str:
        return " ".join([text, *(concept_text(c) for c in concepts),
                         *(str(coding.get("display", "")) for c in concepts for coding in codings(c))]).lower()

    def by_words(names: str) -> tuple[dict, str] | None:
        for word, pattern, row in _device_words():
            if pattern.search(names):
                return row, f"text '{word}' (no recognised code)"
        return None

    return match_concept(concepts, site_space="support", site_row=lambda key: rows[key], code_row=by_code,
                         words=words, word_row=by_words)


_VASOACTIVE_ROWS = CodeMemo("drug concept -> vasoactive support row")


def _vasoactive_row(concept: Any) -> tuple[dict, str] | None:
    return remembered(_VASOACTIVE_ROWS, concept, _vasoactive_row_of)  # once per process per distinct drug concept


def _vasoactive_row_of(concept: Any) -> tuple[dict, str] | None:
    rows = load("support")["vasoactive"]

    def by_code(system: Any, code: str) -> tuple[dict, str] | None:
        row = next((row for row in rows if system == RXNORM and code in row["rxnorm"]), None)
        return (row, f"RxNorm {code}") if row else None

    def by_words(text: str) -> tuple[dict, str] | None:
        row = next((row for row in rows if any(word in text for word in row["words"])), None)
        return (row, "text (no recognised code)") if row else None

    # a drug the site maps to a concept that is not vasoactive is not read by its codes or words
    return match_concept([concept], site_space="drug", site_decides=True,
                         site_row=lambda name: next((row for row in rows if row["name"] == name), None),
                         code_row=by_code, words=lambda: coded_words(concept), word_row=by_words)


def _valid(raw: dict, inputs: EngineInputs) -> bool:
    return validated(inputs, _MODELS[raw["resourceType"]], raw)


def _in_force(row: dict, at: datetime | None, inputs: EngineInputs) -> bool:
    if not row["fresh_hours"]:
        return True  # a baseline (home oxygen): any active record
    return at is not None and inputs.now - at <= hours(row["fresh_hours"])


def read_support(pool: ResourcePool, inputs: EngineInputs) -> None:
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
            at = effective_time(raw) or period_start(raw)
            if too_far_in_future(at, inputs.now) or not _in_force(row, at, inputs) or not _valid(raw, inputs):
                continue
            inputs.support.append(SupportInUse(row["key"], row["kind"], row["label"], row["label"],
                                               reference_of(raw), at, row["compromise"], matched_by, row["source"]))


def _map_procedures(pool: ResourcePool, inputs: EngineInputs) -> None:
    """Procedures of support, by code or whole word: NIV, high-flow, and ventilation the findings' substring words
    miss (MIMIC charts "Invasive Ventilation")."""
    for raw in pool.of("Procedure"):
        if not isinstance(raw.get("status"), str) or raw["status"] not in _PROCEDURE_STATUSES:  # a list / object: not hashable
            continue
        match = _device_row([raw.get("code")] if isinstance(raw.get("code"), Mapping) else [])
        if match is None:
            continue  # the same record read as the 'mechanical_ventilation' finding is listed once (support_in_use)
        row, matched_by = match
        at = time_of(raw)
        if too_far_in_future(at, inputs.now) or not _in_force(row, at, inputs) or not _valid(raw, inputs):
            continue
        inputs.support.append(SupportInUse(row["key"], row["kind"], row["label"], row["label"], reference_of(raw), at,
                                           row["compromise"], matched_by, row["source"]))


_DEVICE_ROWS = CodeMemo("support device row")


def _is_device_row(raw: dict) -> bool:
    spec = load("support")["observation"][0]
    found = match_concept([raw.get("code")], site_space="observation", site_decides=True,
                          site_row=lambda concept: True if concept == spec["key"] else None,
                          code_row=lambda system, code: None, words=lambda: coded_words(raw.get("code")),
                          word_row=lambda names: (True, "") if any(word in names for word in spec["words"]) else None)
    return found is not None


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
    window = hours(load("support")["vasoactive_window"]["hours"])
    for resource_type in ("MedicationAdministration", "MedicationRequest"):
        for raw in pool.of(resource_type):
            status, at = raw.get("status"), effective_time(raw)
            if resource_type == "MedicationAdministration":
                recent = status == "completed" and at is not None and inputs.now - at <= window
                if status != "in-progress" and not recent:
                    continue
            elif status != "active" or raw.get("doNotPerform") is True:
                continue
            match = _vasoactive_row(medication_concept(raw, pool))
            if match is None or too_far_in_future(at, inputs.now) or not _valid(raw, inputs):
                continue
            row, matched_by = match
            inputs.support.append(SupportInUse(
                f"vasoactive_{row['name']}", "haemodynamic", f"{row['name']} (vasoactive drug)",
                f"{row['name']} {'infusion' if resource_type == 'MedicationAdministration' else 'order'}",
                reference_of(raw), at, row.get("compromise", True), matched_by, row["source"]))
