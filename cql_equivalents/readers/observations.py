"""Numeric inputs from Observations (mirrors MassiveHemoptysisInputs.cql): vital signs and labs by LOINC, BP
panel components, and a site's own codes (ConceptMap).

Rules: the newest valid value wins; entered-in-error / cancelled records never count; a value outside its
plausible range or in an unknown unit is rejected and named; every value keeps the id and time of the
resource it came from. Only resources that match a wanted code are validated with fhir.resources. Inputs a
trigger compares are also read at their worst within the episode window.
"""
from __future__ import annotations

from datetime import datetime
from functools import cache

from fhir.resources.R4B.observation import Observation

from .. import fhir_valid
from ..code_memo import CodeMemo
from ..fhir_select import ResourcePool
from ..fhir_values import codings, effective_time
from ..model import EngineInputs, Observed
from ..observation_reading import (
    FUTURE_TOLERANCE, STATUSES_THAT_COUNT, Candidate, Ranking, RawReader, choose, newest_first,
)
from ..tables import LOINC, load, tables
from ..terminology import active as site_terminology
from .record import is_stale, reference_of
from ..durations import hours

# Observation.status values whose result stands (FHIR R4 observation-status). entered-in-error, cancelled,
# registered (no result yet) and unknown never count.
OBSERVATION_STATUSES_THAT_COUNT = STATUSES_THAT_COUNT


@cache
def _wanted_codes() -> frozenset[str]:
    """The LOINC codes read as inputs or panels: one set per process, so its hash (the selection memo's key) is
    worked out once, not per call."""
    return frozenset(tables().loinc_to_input) | tables().panel_loinc


def _observation_candidates(pool: ResourcePool) -> dict[str, list[Candidate]]:
    table = tables()
    candidates: dict[str, list[Candidate]] = {}
    wanted_codes = _wanted_codes()
    # pool.coded hands the same list for every resource of one distinct code: what it means is worked out once
    direct_inputs: dict[int, tuple[tuple[str, ...], bool]] = {}
    alive: list = []  # every list keyed by id() stays alive for the loop, so no id is reused
    new_tuple = tuple.__new__
    for resource, loinc_codes in pool.coded("Observation", LOINC, wanted_codes):
        known = direct_inputs.get(id(loinc_codes))
        if known is None:
            names = tuple(dict.fromkeys(table.loinc_to_input[code] for code in loinc_codes if code in table.loinc_to_input))
            known = direct_inputs[id(loinc_codes)] = (names, any(code in table.panel_loinc for code in loinc_codes))
            alive.append(loinc_codes)
        names, panel = known
        at = effective_time(resource)
        for name in names:
            # every field given, straight to tuple.__new__ (0.58 -> 0.34 us: the NamedTuple's __new__ is Python code)
            candidate = new_tuple(Candidate, (name, at, resource, None, "", None))
            found = candidates.get(name)
            if found is None:
                candidates[name] = [candidate]
            else:
                found.append(candidate)
        if panel:
            seen = set(names)
            components = resource.get("component")
            for component in components if type(components) is list else ():
                for coding in codings(component.get("code") if type(component) is dict else None):
                    code = coding.get("code")
                    name = table.component_loinc_to_input.get(code) if type(code) is str else None
                    if coding.get("system") == LOINC and name and name not in seen:
                        seen.add(name)
                        candidates.setdefault(name, []).append(Candidate(name, at, resource, code, "", component))
    if site_terminology():  # a site's own codes (ConceptMap): the card says "mapped from local code X"
        for resource, mapped in pool.matching("Observation", _site_input, memo=_SITE_INPUTS):
            candidates.setdefault(mapped.concept, []).append(
                Candidate(mapped.concept, effective_time(resource), resource, None, mapped.note))
    return candidates


_SITE_INPUTS = CodeMemo("site ConceptMap -> observation input")


def _site_input(resource: dict):
    mapped = site_terminology().concept_of(resource.get("code"), "observation")
    return mapped if mapped and mapped.concept in tables().observation_inputs else None


# How each input's candidates are ranked (the first valid one is used). Newest first unless a row says otherwise.
OBSERVATION_RANKINGS: dict[str, Ranking] = {}


@cache
def worst_directions() -> dict[str, tuple[str, ...]]:
    """Which inputs are judged by their worst value in the episode, and in which direction: every input a
    physiologic trigger (triggers.toml) or a support setting (support.toml) compares. From the tables only, so
    worked out once per process (it was once per input per call)."""
    directions: dict[str, list[str]] = {}
    rows = [row for row in load("triggers")["trigger"] if row["kind"] == "physiology"]
    for row in (*rows, *load("support")["setting"]):
        direction = "low" if row["op"] in ("<=", "<") else "high"
        directions.setdefault(row["input"], [])
        if direction not in directions[row["input"]]:
            directions[row["input"]].append(direction)
    return {name: tuple(found) for name, found in directions.items()}


def _observed(spec, reading) -> Observed:
    candidate = reading.candidate
    first, second = candidate.note, reading.note  # the non-empty of the two, joined by "; "
    note = f"{first}; {second}" if first and second else first or second
    return Observed(spec.name, spec.label, reading.value, spec.unit, candidate.at, reference_of(candidate.resource), note)


def _report_passed_over(inputs: EngineInputs, name: str, passed_over) -> None:
    if not passed_over:
        return  # the common case: the newest value was usable
    past_cap: dict[str, int] = {}  # a kind past its cap stays past it: the rest of it counted in one step
    for reading in passed_over:
        kind = reading.kind
        if not kind:
            continue
        if kind in past_cap:
            past_cap[kind] += 1
        elif inputs.counted_only(name, kind):
            past_cap[kind] = 0
        else:
            inputs.reject(reference_of(reading.candidate.resource), str(reading.rejection), input=name, kind=kind)
    for kind, more in past_cap.items():
        inputs.count_more(name, kind, more)


def _map_worst(name: str, spec, found: list[Candidate], inputs: EngineInputs, validate, named: set[int],
               read: RawReader, start: datetime, end: datetime) -> None:
    """The worst valid value of the episode window per direction (support.toml [window], an engine choice), the
    window from `start` to `end`: ranked on the raw value (cheap), then the first valid one is validated, as for
    the newest. `read`: the input's raw reader, as the newest pass used it."""
    in_window = [c for c in found if c.at is not None and start <= c.at <= end]
    if len(in_window) < 2:
        return  # the newest is the only value of the episode
    readings = [read(candidate) for candidate in in_window]
    usable = [reading for reading in readings if not reading.rejection and not reading.bound]
    # a value of the episode that cannot be used (implausible, unknown unit...) could have been the worst: named
    unused = [reading for reading in readings if reading.rejection and id(reading.candidate.resource) not in named]
    named.update(id(reading.candidate.resource) for reading in unused)
    _report_passed_over(inputs, name, unused)
    for direction in worst_directions().get(name, ()):
        sign = 1 if direction == "low" else -1
        choice = choose(sorted(usable, key=lambda reading: sign * reading.value), validate)
        # an invalid worst value is named, not dropped; a record the newest pass named already is not counted twice
        fresh = [reading for reading in choice.passed_over if id(reading.candidate.resource) not in named]
        named.update(id(reading.candidate.resource) for reading in fresh)
        _report_passed_over(inputs, name, fresh)
        if choice.chosen is not None:
            inputs.worst[(name, direction)] = _observed(spec, choice.chosen)


def read_observations(pool: ResourcePool, inputs: EngineInputs) -> None:
    specs = tables().observation_inputs
    verdicts: dict[int, str] = {}  # a BP panel feeds two inputs, the worst pass asks again: one digest per record

    def validate(raw: dict) -> str:
        found = verdicts.get(id(raw))  # id() is stable: the pool holds every resource for the whole call
        if found is None:
            found = verdicts[id(raw)] = fhir_valid.problem(Observation, raw)
        return found

    judged_by_worst = worst_directions()
    # the episode window of the worst values (support.toml [window]): the same for every input of the call
    start, end = inputs.now - hours(load("support")["window"]["worst_hours"]), inputs.now + FUTURE_TOLERANCE
    for name, found in _observation_candidates(pool).items():
        spec = specs[name]
        rank = OBSERVATION_RANKINGS.get(name, newest_first)
        read = RawReader(spec, inputs.now)
        choice = choose(rank(found, read), validate)
        _report_passed_over(inputs, name, choice.passed_over)
        if name in judged_by_worst:
            _map_worst(name, spec, found, inputs, validate, {id(r.candidate.resource) for r in choice.passed_over},
                       read, start, end)
        reading = choice.chosen
        if reading is None:
            continue
        reference = reference_of(reading.candidate.resource)
        if reading.bound:
            # the newest valid result is a bound ("> 8"): older values are not current any more
            inputs.reject(reference, f"{spec.label} is reported as '{reading.bound}': a bound, not a value the engine "
                                     "can use", input=name, kind="bound")
            continue
        observed = _observed(spec, reading)
        if is_stale(observed.at, inputs.now, spec.fresh_hours):
            inputs.stale[name] = observed  # the newest valid value is stale: older ones are staler
        else:
            inputs.observations[name] = observed

