"""Calculators the dossier names, computed where the data allow, with the missing inputs named otherwise
(mirrors Calculators.cql): NEWS2, MAP, shock index, A-a gradient, SOFA (respiration, coagulation, liver,
renal, cardiovascular), HAS-BLED. Bands and constants live in data/calculators.toml.
"""
from __future__ import annotations

from functools import cache

from .model import EngineInputs
from .severity import shock_index as _shock_index
from .tables import load, tables
from .results import Calculation


@cache
def _table() -> dict:
    return load("calculators")


def _band_points(bands: list[list[float]], value: float) -> int | None:
    """Points of the first band (by upper bound) the value does not exceed: no value falls between bands."""
    for _low, high, points in _by_upper_bound(bands):
        if value <= high:
            return int(points)
    return None


_SORTED_BANDS: dict[int, tuple[list, list]] = {}  # id(bands) -> (bands, sorted): the table's lists, sorted once


def _by_upper_bound(bands: list[list[float]]) -> list:
    found = _SORTED_BANDS.get(id(bands))
    if found is None or found[0] is not bands:  # not seen, or another list now has that id
        if len(_SORTED_BANDS) >= 256:
            _SORTED_BANDS.clear()
        found = _SORTED_BANDS[id(bands)] = (bands, sorted(bands, key=lambda band: band[1]))
    return found[1]


def _label(name: str) -> str:
    spec = tables().observation_inputs.get(name)
    return spec.label if spec else name


def on_supplemental_oxygen(inputs: EngineInputs) -> bool | None:
    """True / False from FiO2 or O2 flow on record; None when neither is recorded."""
    fio2, flow = inputs.observations.get("fio2"), inputs.observations.get("o2_flow")
    if fio2 is not None:
        return fio2.value > _table()["news2"]["room_air_fio2"]
    if flow is not None:
        return flow.value > 0
    return None


def news2(inputs: EngineInputs) -> Calculation:
    table = _table()
    result = Calculation("NEWS2", None, source=table["news2"]["source"])
    for row in table["news2_band"]:
        observed = inputs.observations.get(row["input"])
        if observed is None:
            result.missing.append(_label(row["input"]))
            continue
        result.parts[row["input"]] = _band_points(row["bands"], observed.value) or 0
    oxygen = on_supplemental_oxygen(inputs)
    if oxygen is None:
        result.missing.append("air or oxygen (FiO2 / O2 flow)")
    else:
        result.parts["oxygen"] = table["news2"]["oxygen_points"] if oxygen else 0
    result.missing.append("consciousness (ACVPU)")
    if result.parts:
        result.value = float(sum(result.parts.values()))
        result.interpretation = news2_risk(int(result.value), any(p == 3 for p in result.parts.values()))
        if result.missing:
            result.interpretation += f" (a minimum: {', '.join(result.missing)} not on record)"
    return result


def news2_risk(score: int, single_three: bool) -> str:
    for low, high, risk, response in _table()["news2"]["risk"]:
        if low <= score <= high:
            if risk == "low" and single_three:
                return _table()["news2"]["single_three"]
            return f"{risk} risk: {response}"
    return ""


def mean_arterial_pressure(inputs: EngineInputs) -> Calculation:
    systolic, diastolic = inputs.observations.get("systolic_bp"), inputs.observations.get("diastolic_bp")
    result = Calculation("MAP", None, source=_table()["map"]["source"])
    result.missing = [_label(n) for n, o in (("systolic_bp", systolic), ("diastolic_bp", diastolic)) if o is None]
    if not result.missing:
        result.value = round(diastolic.value + (systolic.value - diastolic.value) / 3, 1)
        result.interpretation = f"{result.value:g} mmHg"
    return result


def shock_index(inputs: EngineInputs) -> Calculation:
    spec = _table()["shock_index"]
    result = Calculation("shock index", None, source=spec["source"])
    computed = _shock_index(inputs)
    if computed is None:
        result.missing = [_label(n) for n in ("heart_rate", "systolic_bp") if n not in inputs.observations]
        return result
    result.value = computed[0]
    result.interpretation = ("poor prognosis / massive-transfusion signal" if result.value >= spec["poor_prognosis_from"]
                             else "abnormal" if result.value > spec["abnormal_above"] else "not raised")
    return result


def _fio2_fraction(inputs: EngineInputs) -> float | None:
    fio2 = inputs.observations.get("fio2")
    if fio2 is not None:
        return fio2.value / 100
    flow = inputs.observations.get("o2_flow")
    if flow is not None and flow.value == 0:
        return _table()["news2"]["room_air_fio2"] / 100  # no oxygen flowing: room air
    return None


def aa_gradient(inputs: EngineInputs) -> Calculation:
    spec = _table()["aa_gradient"]
    result = Calculation("A-a gradient", None, source=spec["source"])
    fio2, pao2, paco2 = _fio2_fraction(inputs), inputs.observations.get("pao2"), inputs.observations.get("paco2")
    if fio2 is None:
        result.missing.append("FiO2 (or O2 flow 0 = room air)")
    result.missing += [_label(n) for n, o in (("pao2", pao2), ("paco2", paco2)) if o is None]
    if result.missing:
        return result
    alveolar = fio2 * (spec["barometric_mmhg"] - spec["water_vapour_mmhg"]) - paco2.value / spec["respiratory_quotient"]
    result.value = round(alveolar - pao2.value, 1)
    result.parts = {"PAO2": round(alveolar, 1), "FiO2": fio2}
    if inputs.age_years is not None:
        normal = inputs.age_years / 4 + 4
        result.interpretation = (f"{'raised' if result.value > normal else 'within'} the age-expected {normal:g} mmHg "
                                 f"({spec['normal_formula']})")
    return result


def _sofa_cardiovascular(inputs: EngineInputs, result: Calculation) -> None:
    spec = _table()["sofa_cardiovascular"]
    pressors = inputs.vasopressors
    if pressors:
        strong = [p for p in pressors if p.name in ("norepinephrine", "epinephrine")]
        rated = [p.rate for p in strong if p.rate is not None]
        if rated:
            result.parts["cardiovascular"] = 4 if max(rated) > 0.1 else 3
        else:
            result.parts["cardiovascular"] = 3 if strong else 2
            result.missing.append("vasopressor dose in ug/kg/min (cardiovascular part is a minimum)")
        return
    mean = mean_arterial_pressure(inputs)
    if mean.value is None:
        result.missing.append("MAP (systolic and diastolic BP)")
    else:
        result.parts["cardiovascular"] = 1 if mean.value < spec["map_below"] else 0


def sofa(inputs: EngineInputs) -> Calculation:
    table = _table()
    result = Calculation("SOFA (partial)", None, source="Vincent JL et al. Intensive Care Med 1996;22:707-710")
    fio2, pao2 = _fio2_fraction(inputs), inputs.observations.get("pao2")
    values = {name: inputs.observations[name].value for name in ("platelets", "bilirubin", "creatinine")
              if name in inputs.observations}
    if fio2 is not None and pao2 is not None:
        values["pf_ratio"] = round(pao2.value / fio2, 1)
    for row in table["sofa_band"]:
        if row["input"] not in values:
            result.missing.append("PaO2 and FiO2" if row["input"] == "pf_ratio" else _label(row["input"]))
            continue
        points = _band_points(row["bands"], values[row["input"]]) or 0
        if row["part"] == "respiration" and points >= row["support_required_from"] and inputs.finding(
                "mechanical_ventilation") is None:
            points = 2  # 3 and 4 need respiratory support (Vincent 1996)
            result.missing.append("respiratory support (respiration scored 2; 3-4 if ventilated)")
        result.parts[row["part"]] = points
    _sofa_cardiovascular(inputs, result)
    result.missing.append("Glasgow Coma Scale (no confirmed code)")
    if result.parts:
        result.value = float(sum(result.parts.values()))
        result.interpretation = "sum of the parts on record: " + ", ".join(f"{k} {v:g}" for k, v in result.parts.items())
    return result


def has_bled(inputs: EngineInputs) -> Calculation:
    table = _table()
    result = Calculation("HAS-BLED", None, source="Pisters R et al. Chest 2010;138:1093-1100")
    on_record = {fact.concept.key for fact in inputs.conditions}  # once, not a pass over the conditions per item
    for item in table["has_bled_item"]:
        present = not on_record.isdisjoint(item["condition_keys"]) if item["condition_keys"] else False
        if item["key"] == "hypertension" and present:
            systolic = inputs.observations.get("systolic_bp")
            if systolic is None:
                result.missing.append("current SBP (is the hypertension uncontrolled?)")
                present = False
            else:
                present = systolic.value > item["sbp_above"]
        if item["key"] == "renal" and not present and "creatinine" in inputs.observations:
            present = inputs.observations["creatinine"].value >= item["creatinine_from"]
        if item["key"] == "labile_inr":
            result.missing.append(item["label"])
            continue
        if item["key"] == "elderly":
            if inputs.age_years is None:
                result.missing.append("age (Patient.birthDate)")
                continue
            present = inputs.age_years > item["age_above"]
        if item["key"] == "drugs":
            present = any(use.agent.drug_class in item["agent_classes"] for use in inputs.medications)
        result.parts[f"{item['letter']} {item['key']}"] = 1 if present else 0
    result.value = float(sum(result.parts.values()))
    high = table["has_bled"]["high_risk_from"]
    result.interpretation = (f"{'high' if result.value >= high else 'not high'} bleeding risk (>= {high} high); "
                             "conditions absent from the record score 0"
                             + (f"; a minimum: {', '.join(result.missing)} not assessable" if result.missing else ""))
    return result


def all_calculations(inputs: EngineInputs) -> list[Calculation]:
    return [news2(inputs), mean_arterial_pressure(inputs), shock_index(inputs), aa_gradient(inputs), sofa(inputs),
            has_bled(inputs)]
