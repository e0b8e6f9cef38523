"""Hemoptysis volumes: volume Observations (bleeding.toml [volume], a site's own codes) and the volume answers of
the intake questionnaire, as single / hourly / daily mL; a volume over a recorded period gives its mean rate."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fhir.resources.R4B.observation import Observation

from ..code_memo import CodeMemo
from ..fhir_select import ResourcePool
from ..fhir_values import effective_time, parse_instant, status_of
from ..model import EngineInputs, Rejected, VolumeReading
from ..tables import tables
from ..concept_match import match_concept
from .record import is_stale, reference_of, skipped_if_malformed, texts, validated
from .reports import NOT_DONE
from ..durations import HOUR


def volume_unit(unit: str) -> tuple[str, float] | None:
    for row in tables().bleeding["volume_unit"]:
        if unit in row["units"]:
            return row["kind"], float(row["factor"])
    return None


def _kind_from_text(names: str) -> str | None:
    for row in tables().bleeding["volume_text_kind"]:
        if any(word in names for word in row["words"]):
            return row["kind"]
    return None


_VOLUME_ROWS = CodeMemo("hemoptysis volume row")  # most Observations are not


def _is_volume_observation(raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """(period kind named by the code or "", "mapped from local code X" or "") for a volume row, else None."""
    spec = tables().bleeding["volume"]
    kinds = {row["concept"]: row["kind"] for row in tables().bleeding["volume_concept"]}

    def by_code(system: Any, code: str) -> tuple[str, str] | None:
        return ("", "") if system == spec["local_system"] and code in spec["local_codes"] else None

    def by_words(names: str) -> tuple[str, str] | None:
        return ("", "") if any(word in names for word in spec["words"]) else None

    # a code the site maps to another observation is not a volume, whatever its words say
    return match_concept([raw.get("code")], site_space="observation", site_row=kinds.get, site_decides=True,
                         code_row=by_code, words=lambda: texts(raw, "code"), word_row=by_words)


def add_volume(inputs: EngineInputs, kind: str, ml: float, at: datetime | None, reference: str, note: str) -> None:
    spec = tables().bleeding["volume"]
    low, high = spec["plausible_ml"]
    if not low <= ml <= high:
        inputs.rejected.append(Rejected(reference, f"hemoptysis volume {ml:g} mL is outside the plausible range "
                                                   f"{low}-{high} mL"))
        return
    if is_stale(at, inputs.now, spec["fresh_hours"]):
        inputs.rejected.append(Rejected(reference, f"hemoptysis volume {ml:g} mL is older than "
                                                   f"{spec['fresh_hours']} h: stale, not used as current"))
        return
    current = inputs.volumes.get(kind)
    if current is None or (at and (current.at is None or at > current.at)):
        inputs.volumes[kind] = VolumeReading(kind, round(ml, 1), at, reference, note)


def read_volume_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    for raw, is_volume in pool.matching("Observation", _is_volume_observation, memo=_VOLUME_ROWS):
        with skipped_if_malformed(inputs, raw):
            if status_of(raw) in NOT_DONE:
                continue
            reference = reference_of(raw)
            if not validated(inputs, Observation, raw, input="hemoptysis_volume", kind="invalid"):
                continue
            # valid FHIR: valueQuantity is an object, its value a JSON number, its code and unit strings
            quantity = raw.get("valueQuantity") or {}
            if quantity.get("value") is None:
                inputs.rejected.append(Rejected(reference, "hemoptysis volume: no numeric value"))
                continue
            unit = quantity.get("code") or quantity.get("unit") or ""
            known = volume_unit(unit)
            if known is None:
                inputs.rejected.append(Rejected(reference, f"hemoptysis volume unit '{unit}' is not recognised "
                                                           "(mL, mL/h or mL/d)"))
                continue
            kind, factor = known
            named_kind, mapped_note = is_volume
            if kind == "single":
                kind = named_kind or _kind_from_text(texts(raw, "code")) or kind
            ml = float(quantity["value"]) * factor
            period = raw.get("effectivePeriod") if isinstance(raw.get("effectivePeriod"), Mapping) else None
            if kind == "single" and period:  # a volume over a recorded period
                start, end = parse_instant(period.get("start")), parse_instant(period.get("end"))
                if start and end and end > start:
                    _add_period_volume(inputs, ml, start, end, reference)
                    continue
            add_volume(inputs, kind, ml, effective_time(raw), reference, mapped_note)


def _add_period_volume(inputs: EngineInputs, ml: float, start: datetime, end: datetime, reference: str) -> None:
    """A volume over a period: its mean hourly rate, and its 24 h volume when the period covers 24 h."""
    hours = (end - start) / HOUR
    add_volume(inputs, "hourly", ml / hours, end, reference, f"{ml:g} mL over {hours:g} h, mean rate")
    if hours >= 24:
        add_volume(inputs, "daily", ml * 24 / hours, end, reference, f"{ml:g} mL over {hours:g} h, per 24 h")

