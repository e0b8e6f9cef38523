"""Calculators over real FHIR JSON (mapped by the engine's own input mapping), table-driven at each band edge.
The NEWS2 / SOFA / HAS-BLED readings also reach the engine-report card: checked once through the HTTP app."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cql_equivalents import calculators as calc
from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.readers import map_inputs
from tests import engine_factory as e
from tests import fhir_factory as f


def inputs_of(*resources):
    return map_inputs(pool_from_values({"all": f.searchset(list(resources))}), datetime.now(timezone.utc))


def temperature(value):
    return f.observation("8310-5", value, "Cel", display="Body temperature")


def fio2(value):
    return f.observation("3150-0", value, "%", display="Inhaled oxygen concentration")


NEWS2_PARTS = [  # (resource builder, input key, [(value, points)]) at each band edge (RCP 2017)
    (f.respiratory_rate, "respiratory_rate", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)]),
    (f.spo2, "spo2", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)]),
    (lambda v: f.blood_pressure(v, 50), "systolic_bp", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0),
                                                         (219, 0), (220, 3)]),
    (f.heart_rate, "heart_rate", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
                                  (131, 3)]),
    (temperature, "temperature", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
                                  (39.1, 2)]),
]


@pytest.mark.parametrize("build, key, value, points",
                         [(b, k, v, p) for b, k, cases in NEWS2_PARTS for v, p in cases],
                         ids=[f"{k}@{v}" for _, k, cases in NEWS2_PARTS for v, _ in cases])
def test_news2_band_edges(build, key, value, points):
    result = calc.news2(inputs_of(build(value)))
    assert result.parts[key] == points


def test_news2_total_oxygen_and_risk():
    result = calc.news2(inputs_of(f.respiratory_rate(22), f.spo2(93), f.blood_pressure(105, 60), f.heart_rate(115),
                                  temperature(37), fio2(40)))
    assert result.parts == {"respiratory_rate": 2, "spo2": 2, "systolic_bp": 1, "heart_rate": 2, "temperature": 0,
                            "oxygen": 2}
    assert result.value == 9 and result.interpretation.startswith("high risk")
    assert result.missing == ["consciousness (ACVPU)"]


def test_news2_names_what_is_missing():
    result = calc.news2(inputs_of(f.spo2(97)))
    assert result.value == 0 and "Respiratory rate" in result.missing and "air or oxygen (FiO2 / O2 flow)" in result.missing
    assert "a minimum" in result.interpretation


def test_map_and_shock_index():
    inputs = inputs_of(f.blood_pressure(120, 60), f.heart_rate(120))
    assert calc.mean_arterial_pressure(inputs).value == 80.0
    shock = calc.shock_index(inputs)
    assert shock.value == 1.0 and shock.interpretation.startswith("poor prognosis")
    assert calc.mean_arterial_pressure(inputs_of(f.heart_rate(80))).missing == ["Systolic BP", "Diastolic BP"]


@pytest.mark.parametrize("hr, reading", [(89, "not raised"), (90, "not raised"), (91, "abnormal"), (100, "poor prognosis")])
def test_shock_index_bands(hr, reading):
    assert calc.shock_index(inputs_of(f.heart_rate(hr), f.blood_pressure(100, 60))).interpretation.startswith(reading)


def test_aa_gradient_on_room_air_and_missing_inputs():
    inputs = inputs_of(f.patient(birth_date="1966-01-01"), fio2(21), f.lab("2703-7", 80, "mm[Hg]", display="PaO2"),
                       f.lab("2019-8", 40, "mm[Hg]", display="PaCO2"))
    result = calc.aa_gradient(inputs)
    assert result.value == 19.7  # 0.21 x 713 - 40 / 0.8 - 80
    assert "raised the age-expected" in result.interpretation
    kpa = calc.aa_gradient(inputs_of(fio2(21), f.lab("2703-7", 10.67, "kPa", display="PaO2"),
                                     f.lab("2019-8", 5.33, "kPa", display="PaCO2")))
    assert kpa.value == pytest.approx(19.7, abs=0.3)
    assert calc.aa_gradient(inputs_of(fio2(21))).missing == ["PaO2", "PaCO2"]


@pytest.mark.parametrize("platelets, points", [(150, 0), (149, 1), (100, 1), (99, 2), (50, 2), (49, 3), (20, 3), (19, 4)])
def test_sofa_coagulation_edges(platelets, points):
    result = calc.sofa(inputs_of(f.lab("777-3", platelets, "10*3/uL", display="Platelets")))
    assert result.parts["coagulation"] == points


@pytest.mark.parametrize("pao2, ventilated, points", [
    (84, False, 0), (83.9, False, 1), (63, False, 1), (62.9, False, 2), (42, False, 2), (41.9, False, 2),
    (41.9, True, 3), (20.9, True, 4),
])
def test_sofa_respiration_edges_and_support(pao2, ventilated, points):
    resources = [fio2(21), f.lab("2703-7", pao2, "mm[Hg]", display="PaO2")]  # P/F = PaO2 / 0.21
    if ventilated:
        resources.append(e.procedure("Mechanical ventilation", when=f.ago(hours=1)))
    assert calc.sofa(inputs_of(*resources)).parts["respiration"] == points


def test_sofa_cardiovascular_by_map_and_vasopressor():
    assert calc.sofa(inputs_of(f.blood_pressure(90, 60))).parts["cardiovascular"] == 0  # MAP 70
    assert calc.sofa(inputs_of(f.blood_pressure(89, 60))).parts["cardiovascular"] == 1  # MAP 69.7
    norepi = e.administration("7512", "norepinephrine", hours_ago=0.5, rate=0.2, rate_unit="ug/kg/min",
                              status="in-progress")
    assert calc.sofa(inputs_of(norepi)).parts["cardiovascular"] == 4
    no_rate = e.administration("7512", "norepinephrine", hours_ago=0.5, status="in-progress")
    result = calc.sofa(inputs_of(no_rate))
    assert result.parts["cardiovascular"] == 3 and any("vasopressor dose" in m for m in result.missing)


@pytest.mark.parametrize("bilirubin, unit, points", [(1.19, "mg/dL", 0), (1.2, "mg/dL", 1), (2.0, "mg/dL", 2),
                                                     (6.0, "mg/dL", 3), (12.0, "mg/dL", 4), (34.2, "umol/L", 2)])
def test_sofa_liver_edges(bilirubin, unit, points):
    assert calc.sofa(inputs_of(f.lab("1975-2", bilirubin, unit, display="Bilirubin"))).parts["liver"] == points


@pytest.mark.parametrize("creatinine, points", [(1.19, 0), (1.2, 1), (1.99, 1), (2.0, 2), (3.5, 3), (5.0, 4)])
def test_sofa_renal_edges(creatinine, points):
    assert calc.sofa(inputs_of(f.lab("2160-0", creatinine, "mg/dL", display="Creatinine"))).parts["renal"] == points


HAS_BLED_CASES = [  # (resources, expected parts subset)
    ([f.patient(birth_date="1960-01-01")], {"E elderly": 1}),
    ([f.patient(birth_date=f"{datetime.now().year - 65}-01-01")], {"E elderly": 0}),
    ([f.condition("38341003", "Hypertension"), f.blood_pressure(161, 90)], {"H hypertension": 1}),
    ([f.condition("38341003", "Hypertension"), f.blood_pressure(160, 90)], {"H hypertension": 0}),
    ([f.lab("2160-0", 2.26, "mg/dL", display="Creatinine")], {"A renal": 1}),
    ([f.lab("2160-0", 2.25, "mg/dL", display="Creatinine")], {"A renal": 0}),
    ([f.lab("14682-9", 201, "umol/L", display="Creatinine")], {"A renal": 1}),  # x 0.0113 = 2.27 mg/dL
    ([f.condition("230690007", "Stroke")], {"S stroke": 1}),
    ([f.hemoptysis()], {"B bleeding": 1}),
    ([f.medication_statement("1191", "aspirin")], {"D drugs": 1}),
    ([f.condition("10939881000119105", "Unhealthy alcohol drinking behavior")], {"D alcohol": 1}),
    ([f.condition("x", "Liver cirrhosis", system="http://example.org/local")], {"A liver": 1}),
]


@pytest.mark.parametrize("resources, parts", HAS_BLED_CASES)
def test_has_bled_items(resources, parts):
    result = calc.has_bled(inputs_of(*resources))
    for key, value in parts.items():
        assert result.parts[key] == value, (key, result.parts)
    assert any("labile INR" in m for m in result.missing)


def test_a_high_score_supports_the_bleeding_card_and_a_low_one_never_reassures(client):
    resources = [f.patient(birth_date="1950-01-01"), f.hemoptysis(), f.condition("230690007", "Stroke"),
                 f.medication_statement("1191", "aspirin"), f.spo2(97), f.respiratory_rate(16), f.blood_pressure(130, 80)]
    assert calc.has_bled(inputs_of(*resources)).value == 4
    response = client.post("/cds-services/massive-hemoptysis", json=f.patient_view_request(resources))
    topics = [c["source"]["topic"]["code"] for c in response.json["cards"]]
    assert "hemoptysis-engine-report" not in topics  # the report is the documentation's, behind a link
    bleeding = response.json["cards"][0]
    assert bleeding["source"]["topic"]["code"] == "hemoptysis-first-line"
    assert "HAS-BLED 4: high bleeding risk" in bleeding["detail"]
    assert calc.news2(inputs_of(*resources)).interpretation.startswith("low risk")
    every_detail = " ".join(c["detail"] for c in response.json["cards"])
    assert "- NEWS2" not in every_detail and "low risk" not in every_detail
