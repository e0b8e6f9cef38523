"""Heparin actually given in the last hours, for the protamine dose (NCS/SCCM 2016: 1 mg per 100 U of heparin
given in the previous 2-3 h, max 50 mg).

An infusion is a run of segments, each at one rate: a MedicationAdministration with `dosage.rateQuantity`. A
segment lasts from its start to the first of: its own `effectivePeriod.end`, the start of the next segment or
stop of the same infusion (a rate change replaces the rate; a "stopped" / "on-hold" administration, or a rate of
0, ends it), or now when it is still running. Only the part inside the window counts, so a titrated infusion is
counted once and an infusion stopped before the window counts nothing. Boluses count when given in the window.
Administrations of one infusion share `request` (the order); without one, every administration of the agent is
taken as one infusion (engine choice: the sources are silent on how EHRs split an infusion into records).
"""
from __future__ import annotations

from datetime import datetime

from .readers.medications import ADMINISTRATION_STATUSES_ENDING
from .model import DoseGiven, EngineInputs
from .results import HeparinExposure, Segment
from .durations import HOUR, hours

UNITS = frozenset({"U", "[iU]", "[IU]", "IU", "units", "unit"})
UNITS_PER_HOUR = frozenset({"U/h", "[iU]/h", "[IU]/h", "IU/h", "units/h", "U/hr"})
UNITS_PER_KG_HOUR = frozenset({"U/kg/h", "[iU]/kg/h", "[IU]/kg/h", "IU/kg/h", "units/kg/h", "U/kg/hr"})


def _hours(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start) / HOUR)


def _is_stop(dose: DoseGiven) -> bool:
    """A record that only ends the infusion (a stop / hold with no period of its own, or a rate of 0)."""
    return (dose.status in ADMINISTRATION_STATUSES_ENDING and dose.ended is None) or \
        (dose.rate is not None and dose.rate <= 0)


def _rate_per_hour(dose: DoseGiven, inputs: EngineInputs, exposure: HeparinExposure) -> float | None:
    if dose.rate is None or dose.rate <= 0:
        return None
    if dose.rate_unit in UNITS_PER_HOUR:
        return dose.rate
    if dose.rate_unit in UNITS_PER_KG_HOUR:
        weight = inputs.observations.get("body_weight")
        if weight is None:
            exposure.needs.add("body_weight")
            exposure.notes.append(f"`{dose.reference}` runs at {dose.rate:g} {dose.rate_unit}: weight not on record, "
                                  "not counted")
            return None
        return round(dose.rate * weight.value, 1)
    exposure.notes.append(f"`{dose.reference}` rate unit '{dose.rate_unit}' not recognised: not counted")
    return None


def _infusion_key(dose: DoseGiven) -> str:
    return dose.request or dose.agent.name


def heparin_in_window(inputs: EngineInputs, agent: str, window_hours: float) -> HeparinExposure:
    now = inputs.now
    window_start = now - hours(window_hours)
    exposure = HeparinExposure(window_hours)
    doses = [dose for dose in inputs.administrations if dose.agent.name == agent and (dose.started or dose.at)]
    infusions: dict[str, list[DoseGiven]] = {}
    for dose in doses:
        if dose.dose is not None and dose.dose_unit in UNITS and dose.status not in ADMINISTRATION_STATUSES_ENDING \
                and dose.at is not None and window_start <= dose.at <= now:
            exposure.boluses.append((dose.reference, dose.dose))
        elif dose.dose is not None and dose.dose_unit in UNITS and dose.at is not None and dose.at < window_start \
                and dose.status not in ADMINISTRATION_STATUSES_ENDING:
            exposure.notes.append(f"`{dose.reference}` bolus {dose.dose:g} U given {round(_hours(dose.at, now), 2):g} h ago, "
                                  f"before the {window_hours:g}-h window: not counted")
        infusions.setdefault(_infusion_key(dose), []).append(dose)
    for run in infusions.values():
        run.sort(key=lambda dose: dose.started or dose.at)
        for index, dose in enumerate(run):
            if _is_stop(dose):
                continue
            rate = _rate_per_hour(dose, inputs, exposure)
            if rate is None:
                continue
            start = dose.started or dose.at
            # the next rate change or stop of this infusion ends this rate (a bolus record does not)
            later = [other for other in run[index + 1:] if (other.started or other.at) >= start
                     and (other.rate is not None or _is_stop(other))]
            if dose.ended is not None:
                end, ends_by = dose.ended, "ended (effectivePeriod.end)"
            elif later:
                end, ends_by = None, ""
            elif dose.status == "in-progress":
                end, ends_by = now, "still running"
            else:
                end, ends_by = now, "no end recorded: counted as running until now, check the pump"
            if later:
                nxt = later[0]
                nxt_at = nxt.started or nxt.at
                if end is None or nxt_at < end:
                    end = nxt_at
                    ends_by = (f"stopped by `{nxt.reference}`" if _is_stop(nxt)
                               else f"rate changed by `{nxt.reference}`")
            end = min(end, now)
            units = float(round(rate * _hours(max(start, window_start), end)))
            if units > 0:
                exposure.segments.append(Segment(dose.reference, rate, start, end, ends_by, units))
            elif end < window_start:
                exposure.notes.append(f"`{dose.reference}` ({rate:g} U/h) ended {round(_hours(end, now), 2):g} h ago ({ends_by}), "
                                      f"before the {window_hours:g}-h window: not counted")
    exposure.units = float(round(sum(units for _, units in exposure.boluses) + sum(s.units_in_window for s in exposure.segments)))
    return exposure
