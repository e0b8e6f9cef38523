"""Chart shapes as EHRs send them (issue 16), each deterministic (seeded) at any size:

- `friendly`: the inpatient chart of bench/charts.py (13 of 21 Observation codes never read by the engine);
- `icu`: vitals every 15 minutes, every code one the engine reads (SpO2, respiratory rate, heart rate, BP panel);
- `unknown-units`: the same vitals, each in a unit the engine does not know (a site charting SpO2 as `% saturation`,
  rates as `beats/minute`, BP as `mmHg (manual)`): every one is a candidate, none is usable;
- `implausible`: the same vitals, each value outside its plausible range (SpO2 140 %, RR 400 /min...);
- `unusable-50000`: 50,000 unusable SpO2 entries (~15 MiB; half in an unknown unit, half not valid FHIR), the body
  of the reliability issue.

Each chart has the same head (patient, hemoptysis, warfarin) so every call runs the whole path. Units, codes and
displays are those of bench/charts.py (taken from shared/data); the unknown units are plain words a site might
type, not UCUM, which is what makes them unknown.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from . import charts

# (code, display, unit, usual range, unknown unit, implausible value) for the vitals the engine reads
_READ_VITALS = (
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", (93, 99), "% saturation", 140),
    ("9279-1", "Respiratory rate", "/min", (12, 20), "breaths per minute", 400),
    ("8867-4", "Heart rate", "/min", (62, 96), "beats/minute", 900),
)
_BP_UNKNOWN_UNIT, _BP_IMPLAUSIBLE = "mmHg (manual)", 900
ICU_EVERY = timedelta(minutes=15)


class _VitalsChart(charts.ChartBuilder):
    """Vitals only, every 15 minutes; `mode` says how each value is sent: usable, unknown unit or implausible."""

    def __init__(self, size: int, seed: int, now: datetime, mode: str, codes: tuple = _READ_VITALS,
                 with_bp: bool = True):
        super().__init__(size, seed, now)
        self.mode = mode
        self.codes = codes
        self.with_bp = with_bp

    def _quantity(self, value: float, unit: str, unknown: str, implausible: float) -> dict:
        if self.mode == "unknown-units":
            return {"value": value, "unit": unknown}  # free text, no UCUM code: not a unit the engine knows
        if self.mode == "implausible":
            return charts._quantity(implausible, unit)
        return charts._quantity(value, unit)

    def _round(self, when: datetime, newest: bool) -> list[dict]:
        found = []
        for code, display, unit, (low, high), unknown, implausible in self.codes:
            value = round(self.random.uniform(low, high))
            found.append(self._observation("vital-signs", code, display, when,
                                           valueQuantity=self._quantity(value, unit, unknown, implausible)))
        if self.with_bp:
            bp_code, bp_display, *parts = charts.BLOOD_PRESSURE
            components = []
            for part_code, part_display, (low, high), _ in parts:
                quantity = self._quantity(round(self.random.uniform(low, high)), "mm[Hg]", _BP_UNKNOWN_UNIT,
                                          _BP_IMPLAUSIBLE)
                components.append({"code": {"coding": [{"system": charts.LOINC, "code": part_code,
                                                        "display": part_display}]}, "valueQuantity": quantity})
            found.append(self._observation("vital-signs", bp_code, bp_display, when, component=components))
        return found

    def observations(self, count: int) -> list[dict]:
        found: list[dict] = []
        when = self.now - timedelta(minutes=5)
        while len(found) < count:
            found.extend(self._round(when, not found))
            when -= ICU_EVERY
        return found[:count]

    def build(self) -> list[dict]:
        head = [self.patient(), *self.conditions()[:1], *self.medications()[:1]]
        return head + self.observations(max(self.size - len(head), 0))


def _vitals(mode: str, **kw) -> Callable[[int, int, datetime], list[dict]]:
    return lambda size, seed, now: _VitalsChart(size, seed, now, mode, **kw).build()


SHAPES: dict[str, Callable[[int, int, datetime], list[dict]]] = {
    "friendly": lambda size, seed, now: charts.chart(size, seed, now),
    "icu": _vitals("usable"),
    "unknown-units": _vitals("unknown-units"),
    "implausible": _vitals("implausible"),
}
SIZES = (50, 500, 5000)
LARGE = ("unusable-50000", 50_000)  # 50,000 SpO2 entries in an unknown unit


def _lean_unusable_spo2(size: int, seed: int, now: datetime) -> list[dict]:
    """The reliability issue's body: SpO2 entries as lean as an export makes them (~300 bytes each), none usable:
    every other one in a unit the engine does not know, the others in % but with an `issued` that is not an
    instant (valid-looking, invalid FHIR: the case that costs a validation when each candidate is validated)."""
    builder = _VitalsChart(size, seed, now, "unknown-units", codes=_READ_VITALS[:1], with_bp=False)
    head = [builder.patient(), *builder.conditions()[:1], *builder.medications()[:1]]
    code = {"coding": [{"system": charts.LOINC, "code": _READ_VITALS[0][0]}]}
    found = []
    for index in range(max(size - len(head), 0)):
        found.append({"resourceType": "Observation", "id": f"spo2-{index:06d}", "status": "final",
                      "code": code,
                      "subject": {"reference": f"Patient/{charts.PATIENT_ID}"},
                      "effectiveDateTime": charts._instant(now - timedelta(minutes=1 + index)),
                      "valueQuantity": {"value": builder.random.randint(85, 99), "unit": "% saturation"}})
        if index % 2:
            found[-1]["valueQuantity"]["unit"] = "%"
            found[-1]["issued"] = "not recorded"
    return head + found


def chart(shape: str, size: int, seed: int = 7, now: datetime | None = None) -> list[dict]:
    now = now or datetime.now(timezone.utc)
    if shape == LARGE[0]:
        return _lean_unusable_spo2(size, seed, now)
    return SHAPES[shape](size, seed, now)


def request_body(shape: str, size: int, seed: int = 7, now: datetime | None = None) -> bytes:
    resources = chart(shape, size, seed, now)
    if shape != LARGE[0]:
        return json.dumps(charts.patient_view_request(resources)).encode()
    # the 50,000 SpO2 entries as one vitals searchset, written compactly as an export is: ~14 MiB
    head = [resource for resource in resources if resource["resourceType"] != "Observation"]
    request = charts.patient_view_request(head)
    request["prefetch"]["vitals"] = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": resource, "search": {"mode": "match"}} for resource in resources[len(head):]]}
    return json.dumps(request, separators=(",", ":")).encode()


def all_cases(sizes: tuple[int, ...] = SIZES, large: bool = True) -> list[tuple[str, int]]:
    cases = [(shape, size) for shape in SHAPES for size in sizes]
    return cases + ([LARGE] if large else [])


__all__ = ["SHAPES", "SIZES", "LARGE", "chart", "request_body", "all_cases", "random"]
