"""Boundary tests at every threshold: just below, at, just above. Triggers and dose bands go through the real
HTTP app; time windows, whose 'at' instant cannot be hit over HTTP (the request takes time), through the pure
functions with a fixed `now`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.readers.record import is_stale
from cql_equivalents.readers import map_inputs
from cql_equivalents.reversal import andexanet_regimen
from tests import engine_factory as e
from tests.conftest import ALL_STOCKED
from tests import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def cards_for(client, resources):
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), *resources]))
    assert response.status_code == 200, response.json
    return {card["source"]["topic"]["code"]: card for card in response.json["cards"]}


def is_massive(client, resources) -> bool:
    return "massive-hemoptysis-escalation" in cards_for(client, resources)


# name, resources(value), [(value, massive?)]: below / at / above each cut-off of triggers.toml
TRIGGERS = [
    ("SpO2 <= 91", lambda v: [f.spo2(v), f.respiratory_rate(16), f.blood_pressure(130, 80)], [(92, False), (91, True), (90, True)]),
    ("RR >= 25", lambda v: [f.spo2(97), f.respiratory_rate(v), f.blood_pressure(130, 80)], [(24, False), (25, True), (26, True)]),
    ("RR <= 8", lambda v: [f.spo2(97), f.respiratory_rate(v), f.blood_pressure(130, 80)], [(9, False), (8, True), (7, True)]),
    ("SBP <= 90", lambda v: [f.spo2(97), f.respiratory_rate(16), f.blood_pressure(v, 50)], [(91, False), (90, True), (89, True)]),
    ("shock index >= 1.0", lambda v: [f.spo2(97), f.respiratory_rate(16), f.heart_rate(v), f.blood_pressure(100, 60)],
     [(99, False), (100, True), (101, True)]),
    ("single expectoration >= 150 mL", lambda v: [f.spo2(97), f.respiratory_rate(16), f.blood_pressure(130, 80),
                                                  e.volume(v, "mL")], [(149, False), (150, True), (151, True)]),
    ("rate > 100 mL/h", lambda v: [f.spo2(97), f.respiratory_rate(16), f.blood_pressure(130, 80), e.volume(v, "mL/h")],
     [(99, False), (100, False), (101, True)]),
    ("24 h > 500 mL", lambda v: [f.spo2(97), f.respiratory_rate(16), f.blood_pressure(130, 80), e.volume(v, "mL/d")],
     [(499, False), (500, False), (501, True)]),
]


@pytest.mark.parametrize("name, build, value, massive",
                         [(n, b, v, m) for n, b, cases in TRIGGERS for v, m in cases],
                         ids=[f"{n}@{v}" for n, _, cases in TRIGGERS for v, _ in cases])
def test_trigger_boundaries(client, name, build, value, massive):
    assert is_massive(client, build(value)) is massive


# Kcentra PI INR bands at 82 kg: < 2 no dose; 2-<4 25 U/kg; 4-6 35 U/kg; > 6 50 U/kg (capped 5,000 U)
@pytest.mark.parametrize("inr, text", [
    (1.99, "INR 1.99 is below 2"), (2.0, "2,050 U IV = 25 U/kg"), (2.01, "2,050 U IV = 25 U/kg"),
    (3.99, "2,050 U IV = 25 U/kg"), (4.0, "2,870 U IV = 35 U/kg"), (4.01, "2,870 U IV = 35 U/kg"),
    (5.99, "2,870 U IV = 35 U/kg"), (6.0, "2,870 U IV = 35 U/kg"), (6.01, "4,100 U IV = 50 U/kg"),
])
def test_pcc_inr_band_boundaries(client, inr, text):
    topics = cards_for(client, [f.spo2(85), f.inr(inr), f.weight(82),
                                f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    assert text in topics["antithrombotic-reversal"]["detail"]


@pytest.mark.parametrize("weight, units", [(99, "4,950 U IV"), (100, "5,000 U IV"), (101, "5,000 U IV")])
def test_pcc_dosing_weight_cap_at_100_kg(client, weight, units):
    topics = cards_for(client, [f.spo2(85), f.inr(7.0), f.weight(weight),
                                f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    assert units in topics["antithrombotic-reversal"]["detail"]


@pytest.mark.parametrize("inr, coagulopathy_card", [(1.39, False), (1.4, True), (1.41, True)])
def test_coagulopathy_threshold_without_an_agent(client, inr, coagulopathy_card):
    topics = cards_for(client, [f.spo2(97), f.respiratory_rate(16), f.blood_pressure(130, 80), f.inr(inr)])
    assert ("special-population-anticoagulated-coagulopathic" in topics) is coagulopathy_card


# Andexxa PI: >= 8 h -> LOW; < 8 h or unknown: <= threshold mg -> LOW, above / unknown -> HIGH
@pytest.mark.parametrize("agent, mg, hours, regimen", [
    ("apixaban", 5, 2, "low"), ("apixaban", 5.01, 2, "high"), ("apixaban", 4.99, 2, "low"),
    ("rivaroxaban", 10, 2, "low"), ("rivaroxaban", 10.01, 2, "high"), ("rivaroxaban", 9.99, 2, "low"),
    ("apixaban", 10, 7.99, "high"), ("apixaban", 10, 8.0, "low"), ("apixaban", 10, 8.01, "low"),
    ("apixaban", None, None, "high"), ("apixaban", 5, None, "low"), ("apixaban", None, 9, "low"),
    ("edoxaban", 60, 2, None),
])
def test_andexanet_regimen_boundaries(agent, mg, hours, regimen):
    assert andexanet_regimen(agent, mg, hours) == regimen


@pytest.mark.parametrize("hours_ago, dose_mg, text", [
    (7.5, 10, "HIGH regimen"), (8.5, 10, "LOW regimen"), (2, 2.5, "LOW regimen"),
])
def test_andexanet_from_the_administration_record(site_client, hours_ago, dose_mg, text):
    client = site_client(ALL_STOCKED, "a site that stocks andexanet (EU: Ondexxya)")
    topics = cards_for(client, [f.spo2(85), f.weight(70), e.administration(
        "1364430", "apixaban", hours_ago=hours_ago, dose=dose_mg, adm_id="apx")])
    detail = topics["antithrombotic-reversal"]["detail"]
    assert text in detail and "`MedicationAdministration/apx`" in detail


@pytest.mark.parametrize("hours_ago, text", [
    (1.9, "50 g orally now: last dose 1.9 h ago"), (2.1, "not indicated: last dose 2.1 h ago")])
def test_charcoal_within_2_hours(client, hours_ago, text):
    topics = cards_for(client, [f.spo2(85), e.administration("1114195", "rivaroxaban", hours_ago=hours_ago, dose=20)])
    assert text in topics["antithrombotic-reversal"]["detail"]


# NCS 2016 enoxaparin: <= 8 h 1 mg/mg; 8-12 h 0.5 mg/mg; > 12 h minimal (max 50 mg)
@pytest.mark.parametrize("hours_ago, dose, text", [
    (7.9, 40, "40 mg IV = 1 mg per mg x 40 mg"), (8.1, 40, "20 mg IV = 0.5 mg per mg x 40 mg"),
    (11.9, 40, "20 mg IV = 0.5 mg per mg"), (12.1, 40, "protamine is of minimal use"),
    (2, 80, "50 mg IV = 1 mg per mg x 80 mg"),
])
def test_protamine_for_enoxaparin_by_time_since_dose(client, hours_ago, dose, text):
    topics = cards_for(client, [f.spo2(85), e.administration("67108", "enoxaparin", hours_ago=hours_ago, dose=dose)])
    assert text in topics["antithrombotic-reversal"]["detail"]


# NCS 2016 UFH: 1 mg per 100 U given in the previous 2-3 h (engine: 3 h), max 50 mg. The records are built when the
# test runs (not at collection): 2.9 h ago must still be inside the 3 h window however long the suite took to get here.
@pytest.mark.parametrize("administrations, text", [
    ([dict(hours_ago=2.9, dose=5000, unit="U")], "50 mg IV (capped) = 1 mg per 100 U x 5000 U"),
    ([dict(hours_ago=2.9, dose=3000, unit="U")], "30 mg IV = 1 mg per 100 U x 3000 U"),
    ([dict(hours_ago=3.1, dose=3000, unit="U")], "no heparin administration recorded in that window"),
    ([dict(hours_ago=10, rate=1000, rate_unit="U/h", status="in-progress")], "30 mg IV = 1 mg per 100 U x 3000 U"),
])
def test_protamine_for_heparin_counts_units_in_the_window(client, administrations, text):
    resources = [e.administration("5224", "heparin", **given) for given in administrations]
    topics = cards_for(client, [f.spo2(85), *resources])
    assert text in topics["antithrombotic-reversal"]["detail"]


@pytest.mark.parametrize("age_hours, stale", [(5.99, False), (6.0, False), (6.01, True)])
def test_vital_freshness_window_boundary(age_hours, stale):
    assert is_stale(NOW - timedelta(hours=age_hours), NOW, 6) is stale


@pytest.mark.parametrize("age_hours, used", [(23.99, True), (24.0, True), (24.01, False)])
def test_lab_freshness_window_boundary_through_the_mapping(age_hours, used):
    when = (NOW - timedelta(hours=age_hours)).isoformat()
    pool = pool_from_values({"labs": f.searchset([f.hemoglobin(9.0, when=when)])})
    inputs = map_inputs(pool, NOW)
    assert ("hemoglobin" in inputs.observations) is used
    assert ("hemoglobin" in inputs.stale) is (not used)


def test_pcc_band_text_names_each_band(client):
    topics = cards_for(client, [f.spo2(85), f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    assert ("INR 2-<4: 25 U/kg (max 2,500 U); INR 4-6: 35 U/kg (max 3,500 U); INR > 6: 50 U/kg (max 5,000 U)"
            in topics["antithrombotic-reversal"]["detail"])


# ------------------------------------------------------------------------------------------ table-driven edges

from cql_equivalents.reversal import heparin_units_in_window, reversal_plans  # noqa: E402
from cql_equivalents.tables import load, tables  # noqa: E402


def _mapped(resources, now=NOW):
    return map_inputs(pool_from_values({"all": f.searchset(resources)}), now)


def _observation_for(spec, value, when):
    code = spec.loinc[0]
    if spec.panel:  # read from a panel component: build the panel the way EHRs send it
        resource = f.observation(spec.panel[0], 0, spec.unit, when=when)
        del resource["valueQuantity"]
        resource["component"] = [{"code": {"coding": [{"system": f.LOINC, "code": code}]},
                                  "valueQuantity": {"value": value, "unit": spec.unit,
                                                    "system": "http://unitsofmeasure.org", "code": spec.unit}}]
        return resource
    return f.observation(code, value, spec.unit, when=when)


SPECS = list(tables().observation_inputs.values())


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_plausible_range_edges_of_every_observation_input(spec):
    low, high = spec.plausible
    step = 0.01 if high - low < 50 else 0.1
    when = (NOW - timedelta(minutes=5)).isoformat()
    for value, used in ((low, True), (low - step, False), (high, True), (high + step, False)):
        inputs = _mapped([_observation_for(spec, value, when)])
        assert (spec.name in inputs.observations) is used, (spec.name, value)
        if not used:
            assert any("outside the plausible range" in r.reason for r in inputs.rejected)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_freshness_window_edges_of_every_observation_input(spec):
    value = (spec.plausible[0] + spec.plausible[1]) / 2
    for age, current in ((spec.fresh_hours - 0.01, True), (spec.fresh_hours, True), (spec.fresh_hours + 0.01, False)):
        inputs = _mapped([_observation_for(spec, value, (NOW - timedelta(hours=age)).isoformat())])
        assert (spec.name in inputs.observations) is current, (spec.name, age)
        assert (spec.name in inputs.stale) is (not current)


FINDINGS = [row for row in load("findings")["finding"] if row["words"]]


@pytest.mark.parametrize("row", FINDINGS, ids=[r["key"] for r in FINDINGS])
def test_freshness_window_edges_of_every_finding(row):
    word = row["words"][0]
    for age, stale in ((row["fresh_hours"] - 0.01, False), (row["fresh_hours"], False), (row["fresh_hours"] + 0.01, True)):
        when = (NOW - timedelta(hours=age)).isoformat()
        kind = row["resources"][0]
        if kind == "Procedure":
            resource = e.procedure(f"{word} of the patient", when=when)
        elif kind == "DiagnosticReport":
            resource = e.report(f"{word} report", "done", when=when)
        elif kind == "MedicationRequest":
            resource = f.medication_request("0", f"{word} 500 mg", system="http://example.org/local")
            resource["authoredOn"] = when
        else:
            resource = e.text_observation(f"{word} result", "negative", when=when)
        found = [x for x in _mapped([resource]).findings if x.key == row["key"]]
        assert found and found[0].stale is stale, (row["key"], age, found)


def test_volume_plausible_edges():
    for value, used in ((5000, True), (5000.1, False), (0, True)):
        inputs = _mapped([e.volume(value, "mL", when=(NOW - timedelta(minutes=5)).isoformat())])
        assert ("single" in inputs.volumes) is used, value


def test_heparin_window_edge_is_inclusive():
    for age, counted in (((timedelta(hours=3)), 1000.0), (timedelta(hours=3, seconds=1), 0.0)):
        administration = e.administration("5224", "heparin", hours_ago=0, dose=1000, unit="U")
        administration["effectiveDateTime"] = (NOW - age).isoformat()
        assert heparin_units_in_window(_mapped([administration]), "heparin", 3)[0] == counted


@pytest.mark.parametrize("agent, code, hours, dose, text", [
    ("enoxaparin", "67108", 8, 40, "40 mg IV = 1 mg per mg"), ("enoxaparin", "67108", 12, 40, "20 mg IV = 0.5 mg per mg"),
    ("rivaroxaban", "1114195", 2, 20, "50 g orally now"),
])
def test_time_edges_of_dose_rules_are_inclusive(agent, code, hours, dose, text):
    administration = e.administration(code, agent, hours_ago=0, dose=dose)
    administration["effectiveDateTime"] = (NOW - timedelta(hours=hours)).isoformat()
    plans = reversal_plans(_mapped([administration]))
    assert any(text in line.dose for plan in plans for line in plan.steps)
