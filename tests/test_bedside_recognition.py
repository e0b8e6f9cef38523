"""Issue 13, recognition: support is compromise, worst value of the episode, chronic-hypoxaemia baseline, CF
volume threshold, recency of the hemoptysis evidence, routed-away source, and the site ConceptMap. Every test
goes through the real HTTP app with FHIR JSON as EHRs send it."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cql_equivalents.terminology import TerminologyError
from server.http.app import create_app
from server.replay.target import EXAMPLE_CONCEPT_MAP
from tests import engine_factory as e
from tests import fhir_factory as f
from tests.conftest import SignedClient

URL = "/cds-services/massive-hemoptysis"
STABLE = [f.respiratory_rate(16), f.heart_rate(80), f.blood_pressure(130, 80)]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
FLOWSHEET = "http://hospital.example.org/fhir/CodeSystem/flowsheet-rows"


def post(client, resources: list[dict]) -> list[dict]:
    response = client.post(URL, json=f.patient_view_request([f.patient(), *resources]))
    assert response.status_code == 200, response.json
    return response.json["cards"]


def first_topic(cards: list[dict]) -> str:
    return cards[0]["source"]["topic"]["code"] if cards else ""


def device_use(text: str, *, snomed: str | None = None, hours_ago: float = 2, status: str = "active") -> list[dict]:
    device = {"resourceType": "Device", "id": "dev-1", "type": {"text": text}}
    if snomed:
        device["type"]["coding"] = [{"system": "http://snomed.info/sct", "code": snomed, "display": text}]
    return [device, {"resourceType": "DeviceUseStatement", "id": "dus-1", "status": status,
                     "subject": {"reference": "Patient/pat-1"}, "timingPeriod": {"start": f.ago(hours=hours_ago)},
                     "device": {"reference": "Device/dev-1"}}]


# ------------------------------------------------------------------------------------------ item 1: support

@pytest.mark.parametrize("fio2, massive", [(39, False), (40, True)])
def test_fio2_boundary(client, fio2, massive):
    cards = post(client, [f.hemoptysis(), f.spo2(96), *STABLE, f.observation("3150-0", fio2, "%", display="FiO2")])
    assert (first_topic(cards) == "massive-hemoptysis-escalation") is massive
    if massive:
        assert "inspired O2 >= 40 %" in cards[0]["detail"] and "engine choice" in cards[0]["detail"]


@pytest.mark.parametrize("flow, massive", [(9, False), (10, True)])
def test_o2_flow_boundary(client, flow, massive):
    cards = post(client, [f.hemoptysis(), f.spo2(96), *STABLE, f.observation("3151-8", flow, "L/min", display="O2 flow")])
    assert (first_topic(cards) == "massive-hemoptysis-escalation") is massive


def test_fio2_as_a_pulse_oximetry_component_counts(client):
    spo2 = f.spo2(95)
    spo2["component"] = [{"code": {"coding": [{"system": "http://loinc.org", "code": "3150-0"}]},
                          "valueQuantity": {"value": 50, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}]
    cards = post(client, [f.hemoptysis(), spo2, *STABLE])
    assert first_topic(cards) == "massive-hemoptysis-escalation"


@pytest.mark.parametrize("resources, words", [
    (device_use("High flow oxygen nasal cannula", snomed="426854004"), "high-flow nasal oxygen"),
    (device_use("BiPAP machine"), "non-invasive ventilation"),
    ([e.procedure("Intubation of respiratory tract", snomed="447996002", when=f.ago(hours=3))],
     "invasive mechanical ventilation"),
    ([e.administration("7512", "norepinephrine", hours_ago=1, rate=0.05, rate_unit="ug/kg/min", status="in-progress")],
     "norepinephrine"),
    ([e.administration("11149", "vasopressin", hours_ago=1, status="in-progress")], "vasopressin"),
    ([e.text_observation("O2 Delivery Device(s)", "High flow nasal cannula", when=f.ago(minutes=30))],
     "high-flow nasal oxygen"),
])
def test_support_with_normal_numbers_is_massive(client, resources, words):
    cards = post(client, [f.hemoptysis(), f.spo2(96), *STABLE, *resources])
    assert first_topic(cards) == "massive-hemoptysis-escalation", [c["summary"] for c in cards]
    assert cards[0]["indicator"] == "critical" and words in cards[0]["detail"]
    assert "the compromise is held by support" in cards[0]["detail"]


@pytest.mark.parametrize("resources", [
    device_use("High flow oxygen nasal cannula", snomed="426854004", hours_ago=30),  # older than 24 h
    device_use("High flow oxygen nasal cannula", snomed="426854004", status="completed"),
    [e.procedure("Intubation of respiratory tract", snomed="447996002", when=f.ago(hours=30))],
    [e.administration("7512", "norepinephrine", hours_ago=8, status="completed")],  # outside the 6 h window
    [e.administration("terlipressin", "terlipressin", hours_ago=1, status="in-progress")],  # a treatment, not shock
    device_use("Home oxygen concentrator"),  # baseline, not compromise
])
def test_support_not_in_force_or_not_compromise_does_not_make_massive(client, resources):
    cards = post(client, [f.hemoptysis(), f.spo2(96), *STABLE, *resources])
    assert first_topic(cards) != "massive-hemoptysis-escalation", [c["summary"] for c in cards]


# ------------------------------------------------------------------------------------------ item 2: worst value

def test_worst_spo2_of_the_episode_decides_and_is_named(client):
    cards = post(client, [f.hemoptysis(), f.spo2(78, when=f.ago(hours=2), obs_id="spo2-old"), f.spo2(94, obs_id="spo2-now"),
                          f.observation("3151-8", 4, "L/min", display="O2 flow"), *STABLE])
    assert first_topic(cards) == "massive-hemoptysis-escalation" and "SpO2 78 %" in cards[0]["summary"]
    detail = cards[0]["detail"]
    assert "`Observation/spo2-old`" in detail and "newest 94 %" in detail and "on O2 flow 4 L/min" in detail


def test_a_low_value_outside_the_window_does_not_decide(client):
    # 7 h old: outside the 6 h episode window (and stale)
    cards = post(client, [f.hemoptysis(), f.spo2(78, when=f.ago(hours=7)), f.spo2(95), *STABLE])
    assert first_topic(cards) != "massive-hemoptysis-escalation"


def test_an_invalid_worst_value_falls_back_to_the_next(client):
    bad = f.spo2(70, when=f.ago(hours=1), obs_id="spo2-bad")
    bad["valueQuantity"]["value"] = 40  # implausible (< 50 %): rejected, the next worst is used
    cards = post(client, [f.hemoptysis(), bad, f.spo2(89, when=f.ago(hours=2), obs_id="spo2-89"), f.spo2(96), *STABLE])
    assert "SpO2 89 %" in cards[0]["summary"]
    assert cards[0]["detail"].count("`Observation/spo2-bad`") == 1  # named once under records not used


# ------------------------------------------------------------------------------------------ item 3: chronic baseline

@pytest.mark.parametrize("spo2, topic", [(84, "hemoptysis-severe-by-terrain"), (83, "massive-hemoptysis-escalation")])
def test_chronic_respiratory_failure_judged_on_news2_scale_2(client, spo2, topic):
    cards = post(client, [f.hemoptysis(), f.spo2(spo2), *STABLE, f.condition("J96.12", "Chronic respiratory failure "
                                                                                        "with hypercapnia", system=f.ICD10CM)])
    assert first_topic(cards) == topic
    assert "NEWS2 Scale 2" in cards[0]["detail"]


def test_home_oxygen_is_terrain_and_sets_scale_2(client):
    cards = post(client, [f.hemoptysis(), f.spo2(89), *STABLE, *device_use("Home oxygen concentrator")])
    assert first_topic(cards) == "hemoptysis-severe-by-terrain" and cards[0]["indicator"] == "warning"
    assert "home / long-term oxygen (terrain)" in cards[0]["detail"]


def test_scale_1_still_applies_without_the_terrain(client):
    assert first_topic(post(client, [f.hemoptysis(), f.spo2(89), *STABLE])) == "massive-hemoptysis-escalation"


# ------------------------------------------------------------------------------------------ item 6: CF volume

@pytest.mark.parametrize("ml, cf, massive", [(240, True, False), (241, True, True), (300, False, False), (501, False, True)])
def test_cf_volume_threshold(client, ml, cf, massive):
    resources = [f.hemoptysis(), f.spo2(96), *STABLE, e.volume(ml, "mL/d")]
    if cf:
        resources.append(f.condition("E84.0", "Cystic fibrosis with pulmonary manifestations", system=f.ICD10CM))
    cards = post(client, resources)
    assert (first_topic(cards) == "massive-hemoptysis-escalation") is massive
    if massive and cf:
        assert "PMID 20675678" in cards[0]["detail"]


# ------------------------------------------------------------------------------------------ item 8: recency, routed away

@pytest.mark.parametrize("days, cards_expected", [(13, True), (15, False), (400, False)])
def test_hemoptysis_condition_recency_window(client, days, cards_expected):
    cards = post(client, [f.hemoptysis(onset=f.ago(days=days)), f.spo2(96), *STABLE])
    assert bool(cards) is cards_expected


def test_old_entry_with_a_recent_volume_still_counts(client):
    cards = post(client, [f.hemoptysis(onset=f.ago(days=400)), f.spo2(96), *STABLE, e.volume(60, "mL")])
    assert first_topic(cards) == "hemoptysis-first-line"


def test_epistaxis_alone_is_one_info_card(client):
    cards = post(client, [f.condition("x", "Epistaxis", system="http://example.org/local"), f.spo2(97), *STABLE])
    assert [card["indicator"] for card in cards] == ["info"]


# ------------------------------------------------------------------------------------------ site ConceptMap

@pytest.fixture
def site_client(settings):
    app = create_app(replace(settings, concept_map_file=str(EXAMPLE_CONCEPT_MAP)))
    app.test_client_class = SignedClient
    yield app.test_client()
    create_app(settings)  # back to no site map for the tests that follow


def test_site_flowsheet_volume_fires_and_says_mapped_from(site_client):
    row = f.observation("FS-4410", 650, "mL", system=FLOWSHEET, display="Hemoptysis total 24 h", category="exam")
    cards = post(site_client, [f.hemoptysis(), f.spo2(96), *STABLE, row])
    assert first_topic(cards) == "massive-hemoptysis-escalation"
    assert "mapped from local code FS-4410" in cards[0]["detail"]


def test_site_codes_for_conditions_and_drugs(site_client):
    local_problem = f.condition("PL-0042", "Coughing up blood", system="http://hospital.example.org/fhir/CodeSystem/problem-list")
    norad = e.administration("RX-NORAD-INF", "Noradrenaline infusion", hours_ago=1, status="in-progress")
    norad["medicationCodeableConcept"] = {"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/pharmacy",
                                                      "code": "RX-NORAD-INF"}]}  # no name in the text: only the map knows
    cards = post(site_client, [local_problem, f.spo2(96), *STABLE, norad])
    assert first_topic(cards) == "massive-hemoptysis-escalation"
    assert "mapped from local code RX-NORAD-INF" in cards[0]["detail"]


def test_discovery_prefetch_asks_for_the_site_codes(site_client):
    services = site_client.get("/cds-services").json["services"]
    vitals = next(s for s in services if s["id"] == "massive-hemoptysis")["prefetch"]["vitals"]
    assert f"{FLOWSHEET}|FS-4410" in vitals and "{{context.patientId}}" in vitals


@pytest.mark.parametrize("document, words", [
    ({"resourceType": "Patient"}, "is not a FHIR ConceptMap"),
    ({"resourceType": "ConceptMap", "status": "active", "group": "not a list"}, "is not a valid FHIR R4 ConceptMap"),
    ({"resourceType": "ConceptMap", "status": "active", "group": [{"source": "urn:x", "target": "urn:other",
      "element": [{"code": "a", "target": [{"code": "spo2", "equivalence": "equivalent"}]}]}]}, "target is 'urn:other'"),
    ({"resourceType": "ConceptMap", "status": "active", "group": [{"source": "urn:x",
      "target": "urn:hemoptysis-cds:concept:drug",
      "element": [{"code": "a", "target": [{"code": "aspirine", "equivalence": "equivalent"}]}]}]},
     "'aspirine' is not a drug concept"),
])
def test_invalid_site_map_stops_the_service(settings, tmp_path, document, words):
    path = tmp_path / "map.json"
    path.write_text(json.dumps(document))
    with pytest.raises(TerminologyError, match="site ConceptMap") as raised:
        create_app(replace(settings, concept_map_file=str(path)))
    assert words in str(raised.value)
    create_app(settings)


def test_serve_refuses_to_start_with_an_invalid_map(tmp_path, monkeypatch, capsys):
    from server.cli import main
    path = tmp_path / "map.json"
    path.write_text("{not json")
    monkeypatch.setenv("HEMOPTYSIS_CDS_CONCEPT_MAP_FILE", str(path))
    assert main(["serve"]) == 2
    assert "not starting: site ConceptMap" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ malformed input

@pytest.mark.parametrize("mutate", [
    lambda r: r[2].update(status={"coding": "x"}),           # an Observation status that is not a code
    lambda r: r[2].update(component=True),                     # components that are not a list
    lambda r: r[4].update(status=[]),                          # a DeviceUseStatement status that is a list
    lambda r: r[4].update(device={"reference": ["Device/dev-1"]}),
    lambda r: r[5].update(status={"a": 1}),                   # a MedicationAdministration status that is an object
])
def test_malformed_support_and_status_never_give_a_500(client, mutate):
    resources = [f.hemoptysis(), f.spo2(80, when=f.ago(hours=1)), f.spo2(95), *device_use("HFNC"),
                 e.administration("7512", "norepinephrine", hours_ago=1, status="in-progress")]
    request = f.patient_view_request([f.patient(), *resources])
    mutate(resources)  # the prefetch holds the same objects: the EHR sent them malformed
    response = client.post(URL, json=request)
    assert response.status_code == 200, response.json


def test_mimic_style_records_are_read(client):
    """As the MIMIC-IV demo charts them: 'Invasive Ventilation' under a local item code, and a norepinephrine
    drip as a Medication referenced by the administration, with the rate in mcg/kg/min."""
    ventilation = {"resourceType": "Procedure", "id": "vent-1", "status": "completed", "subject": {"reference": "Patient/pat-1"},
                   "code": {"coding": [{"system": "http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-d-items",
                                        "code": "225792", "display": "Invasive Ventilation"}]},
                   "performedPeriod": {"start": f.ago(hours=5), "end": f.ago(hours=1)}}
    cards = post(client, [f.hemoptysis(), f.spo2(97), *STABLE, ventilation])
    assert first_topic(cards) == "massive-hemoptysis-escalation" and "`Procedure/vent-1`" in cards[0]["detail"]
    medication = {"resourceType": "Medication", "id": "med-ne", "code": {"coding": [
        {"system": "http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-medication-icu", "code": "221906",
         "display": "Norepinephrine"}]}}
    drip = e.administration("x", "x", hours_ago=1, rate=0.05, rate_unit="mcg/kg/min", status="in-progress")
    del drip["medicationCodeableConcept"]
    drip["medicationReference"] = {"reference": "Medication/med-ne"}
    request = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(97), *STABLE, drip])
    request["prefetch"]["medicationAdministrations"]["entry"].append({"resource": medication})
    response = client.post(URL, json=request)
    assert first_topic(response.json["cards"]) == "massive-hemoptysis-escalation"
    assert "norepinephrine" in response.json["cards"][0]["detail"]


def test_the_decision_is_exposed_as_data_on_the_result():
    """The card layout is rebuilt elsewhere: the engine's Severity carries the drivers as data."""
    from datetime import datetime, timezone

    from cql_equivalents.fhir_select import pool_from_values
    from cql_equivalents.readers import map_inputs
    from cql_equivalents.severity import classify
    from cql_equivalents.results import Level
    resources = [f.hemoptysis(), f.spo2(78, when=f.ago(hours=2), obs_id="spo2-old"), f.spo2(94, obs_id="spo2-now"),
                 f.observation("3151-8", 4, "L/min", display="O2 flow", obs_id="flow"), *STABLE,
                 *device_use("Home oxygen concentrator")]
    inputs = map_inputs(pool_from_values(f.split_prefetch(resources)), datetime.now(timezone.utc))
    severity = classify(inputs)
    assert severity.level is Level.MASSIVE and severity.fired_by == "physiology"
    driver = severity.drivers[0]
    assert (driver.input, driver.value, driver.reference) == ("spo2", 78.0, "Observation/spo2-old")
    assert driver.newest is not None and driver.newest.reference == "Observation/spo2-now"
    assert any(item.key == "home_oxygen" and not item.compromise for item in severity.support)
    # home oxygen set the Scale 2 cut-off, and 78 % is below it too
    assert any("Scale 2" in text for text in severity.thresholds_adjusted)
