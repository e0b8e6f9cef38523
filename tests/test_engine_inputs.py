"""Inputs of the dossier through the real HTTP app: units, plausibility, freshness, volume, FRAME gate."""
from __future__ import annotations

import pytest

from tests import engine_factory as e
from tests import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def post(client, resources: list[dict]) -> list[dict]:
    response = client.post(URL, json=f.patient_view_request([f.patient(), *resources]))
    assert response.status_code == 200, response.json
    return response.json["cards"]


def topics(cards: list[dict]) -> dict[str, dict]:
    return {card["source"]["topic"]["code"]: card for card in cards}


def everything(cards: list[dict]) -> str:
    return "\n".join(card["summary"] + "\n" + card["detail"] for card in cards)


STABLE = [f.respiratory_rate(16), f.heart_rate(80), f.blood_pressure(130, 80)]


def _without_unit(resource: dict) -> dict:
    resource["valueQuantity"] = {"value": resource["valueQuantity"]["value"]}
    return resource


@pytest.mark.parametrize("resource, expected", [
    (f.observation("2708-6", 0.95, "1", display="SpO2 fraction"), "SpO2 | 95 % (sent as 0.95 1)"),
    (f.hemoglobin(112, unit="g/L"), "Hemoglobin | 11.2 g/dL (sent as 112 g/L)"),
    (f.hemoglobin(7.0, unit="mmol/L"), "Hemoglobin | 11.27 g/dL (sent as 7 mmol/L)"),
    (f.lab("3255-7", 150, "mg/dL", display="Fibrinogen"), "Fibrinogen | 1.5 g/L (sent as 150 mg/dL)"),
    (f.lab("777-3", 150000, "/uL", display="Platelets"), "Platelets | 150 10*9/L (sent as 150000 /uL)"),
    (f.lab("777-3", 150, "10*3/uL", display="Platelets"), "Platelets | 150 10*9/L |"),
    (f.lab("777-3", 150, "10^9/L", display="Platelets"), "Platelets | 150 10*9/L |"),
    (f.lab("777-3", 150, "/nL", display="Platelets"), "Platelets | 150 10*9/L |"),
])
def test_units_are_converted_into_the_engine_unit(client, resource, expected):
    cards = post(client, [f.hemoptysis(), f.spo2(97, when=f.ago(hours=2)), *STABLE, resource])
    assert expected in everything(cards)


@pytest.mark.parametrize("resource, reason", [
    (f.spo2(101, obs_id="bad"), "SpO2 101 % is outside the plausible range 50-100"),
    (f.hemoglobin(300, obs_id="bad"), "Hemoglobin 300 g/dL is outside the plausible range 2-25"),
    (f.lab("777-3", 5, "g/L", display="Platelets", obs_id="bad"), "Platelets unit 'g/L' is not recognised"),
    (_without_unit(f.lab("3255-7", 2.5, "g/L", display="Fibrinogen", obs_id="bad")), "Fibrinogen 2.5 has no unit"),
    (f.spo2(88, when=f.ago(hours=-3), obs_id="bad"), "SpO2 is dated in the future"),
])
def test_implausible_or_unreadable_values_are_named_and_not_used(client, resource, reason):
    cards = post(client, [f.hemoptysis(), f.spo2(97, when=f.ago(hours=1)), *STABLE, resource])
    text = everything(cards)
    assert f"`Observation/bad`: {reason}" in text
    assert "massive-hemoptysis-escalation" not in topics(cards)


def test_stale_vitals_are_reported_as_stale_not_used(client):
    cards = post(client, [f.hemoptysis(), f.spo2(85, when=f.ago(hours=7), obs_id="old-spo2"),
                          f.blood_pressure(80, 40, when=f.ago(hours=8))])
    by_topic = topics(cards)
    assert "massive-hemoptysis-escalation" not in by_topic  # a stale SpO2 85 % is not current hypoxia
    assert "hemoptysis-missing-physiology" in by_topic
    quality = by_topic["hemoptysis-data-quality"]
    assert quality["indicator"] == "info"
    assert "SpO2 85 % at" in quality["detail"] and "(`Observation/old-spo2`): older than 6 h" in quality["detail"]
    assert "Too old to use as current (obtain again): SpO2 85 %" in by_topic["hemoptysis-missing-physiology"]["detail"]


def test_stale_lab_is_not_used_for_a_dose(client):
    cards = post(client, [f.hemoptysis(), f.spo2(85), f.inr(3.1, when=f.ago(hours=30), obs_id="old-inr"), f.weight(80),
                          f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    reversal = topics(cards)["antithrombotic-reversal"]
    assert "INR not on record: obtain INR now" in reversal["detail"]
    assert "stale: 3.1 at" in reversal["detail"] and "`Observation/old-inr`" in reversal["detail"]


@pytest.mark.parametrize("resource, kind_text", [
    (e.volume(200, "mL", obs_id="v"), "single expectoration >= 150 mL"),
    (e.volume(120, "mL/h", obs_id="v"), "bleeding rate > 100 mL/h"),
    (e.volume(600, "mL/d", obs_id="v"), "volume > 500 mL in 24 h"),
    (e.volume(0.6, "L", obs_id="v"), "single expectoration >= 150 mL"),
    (e.volume(700, "mL", period_hours=24, obs_id="v"), "volume > 500 mL in 24 h"),
    (e.volume(300, "mL", period_hours=2, obs_id="v"), "bleeding rate > 100 mL/h"),
])
def test_volume_from_observation_in_each_unit_is_a_secondary_trigger(client, resource, kind_text):
    cards = post(client, [f.spo2(97), *STABLE, resource])  # the volume alone says blood was expectorated
    escalation = topics(cards)["massive-hemoptysis-escalation"]
    assert escalation["indicator"] == "critical"
    assert "by volume" in escalation["summary"]
    assert f"**{kind_text}**" in escalation["detail"] and "`Observation/v`" in escalation["detail"]
    assert "Life-threatening by volume" in escalation["detail"]


def test_volume_from_the_intake_questionnaire(client):
    cards = post(client, [e.intake({"rate-ml-per-h": 150, "with-cough": True}, qr_id="qr-1"), f.spo2(97), *STABLE])
    escalation = topics(cards)["massive-hemoptysis-escalation"]
    assert "150 mL/h" in escalation["summary"] and "bleeding rate > 100 mL/h" in escalation["detail"]
    assert "`QuestionnaireResponse/qr-1`" in escalation["detail"]


def test_physiology_comes_before_volume(client):
    cards = post(client, [f.hemoptysis(), f.spo2(88), *STABLE, e.volume(20, "mL")])
    escalation = topics(cards)["massive-hemoptysis-escalation"]
    assert "by volume" not in escalation["summary"] and "SpO2 88 %" in escalation["summary"]
    assert "Life-threatening by physiology" in escalation["detail"]


def test_volume_below_every_surrogate_is_reported(client):
    cards = post(client, [f.hemoptysis(), f.spo2(97), *STABLE, e.volume(40, "mL")])
    first_line = topics(cards)["hemoptysis-first-line"]
    assert "Volume on record, below every threshold" in first_line["detail"] and "40 mL (single)" in first_line["detail"]


def test_unknown_volume_unit_is_named(client):
    cards = post(client, [f.hemoptysis(), f.spo2(97), *STABLE, e.volume(2, "[tsp_us]", obs_id="tsp")])
    assert "`Observation/tsp`: hemoptysis volume unit '[tsp_us]' is not recognised" in everything(cards)


# ------------------------------------------------------------------------------------------ FRAME gate

@pytest.mark.parametrize("resources, topic, words", [
    ([f.condition("8765009", "Hematemesis")], "hemoptysis-frame-route-away", "upper GI bleeding pathway"),
    ([f.condition("K92.0", "Hematemesis", system=f.ICD10CM)], "hemoptysis-frame-route-away", "upper GI bleeding"),
    ([f.condition("x", "Epistaxis", system="http://example.org/local")], "hemoptysis-frame-route-away", "ENT / oral"),
    ([e.intake({"blood-source": "pseudohemoptysis"})], "hemoptysis-frame-route-away", "ENT / oral"),
    ([e.intake({"dark-coffee-ground": True, "food-particles": True})], "hemoptysis-frame-route-away", "upper GI"),
    ([f.hemoptysis(), f.condition("8765009", "Hematemesis")], "hemoptysis-source-unclear", "Confirm at the bedside"),
    ([f.hemoptysis(), e.intake({"with-vomiting": True})], "hemoptysis-source-unclear", "Confirm at the bedside"),
])
def test_frame_gate_routes_away_instead_of_escalating(client, resources, topic, words):
    cards = post(client, [*resources, f.spo2(97), *STABLE])
    by_topic = topics(cards)
    assert topic in by_topic and words in by_topic[topic]["detail"]
    assert "massive-hemoptysis-escalation" not in by_topic and "hemoptysis-first-line" not in by_topic
    if topic == "hemoptysis-frame-route-away":  # routed away, no compromise: one info card, nothing else
        assert [card["indicator"] for card in cards] == ["info"]


def test_routed_away_with_compromise_is_still_one_critical_card(client):
    cards = post(client, [f.condition("8765009", "Hematemesis"), f.spo2(84), *STABLE])
    assert [card["indicator"] for card in cards] == ["critical"]
    assert "Physiologic compromise whatever the source" in cards[0]["detail"]


def test_frame_gate_with_compromise_is_critical_but_not_the_bae_pathway(client):
    cards = post(client, [f.condition("8765009", "Hematemesis"), f.spo2(85), *STABLE])
    card = topics(cards)["hemoptysis-frame-route-away"]
    assert card["indicator"] == "critical" and "Physiologic compromise whatever the source" in card["detail"]
    assert "massive-hemoptysis-escalation" not in topics(cards)


def test_bedside_answer_hemoptysis_decides_over_old_features(client):
    cards = post(client, [f.condition("8765009", "Hematemesis"), e.intake({"blood-source": "hemoptysis"}), f.spo2(86),
                          *STABLE])
    assert "massive-hemoptysis-escalation" in topics(cards)
    assert "hemoptysis-frame-route-away" not in topics(cards) and "hemoptysis-source-unclear" not in topics(cards)


def test_blood_routed_away_without_compromise_holds_the_agent_on_one_card(client):
    """Issue 14 item 4 (ACC 2020 ECDP): no reversal where none is due; issue 13 item 8: one card when the source is
    routed away. The FRAME card says hold the agent and when reversal would be due."""
    cards = post(client, [f.condition("8765009", "Hematemesis"), f.spo2(97), *STABLE, f.inr(3.0), f.weight(70),
                          f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    assert len(cards) == 1 and "antithrombotic-reversal" not in topics(cards)
    frame = topics(cards)["hemoptysis-frame-route-away"]["detail"]
    assert "**Antithrombotic on board**: warfarin" in frame and "becomes life-threatening" in frame


def test_blood_routed_away_with_compromise_is_life_threatening_and_reversed(client):
    """Compromise makes the bleeding life-threatening whatever its source (ACC 2020): the reversal agents come."""
    cards = post(client, [f.condition("8765009", "Hematemesis"), f.spo2(86), *STABLE, f.inr(3.0), f.weight(70),
                          f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    reversal = topics(cards)["antithrombotic-reversal"]
    assert reversal["indicator"] == "critical" and reversal["summary"].startswith("Reverse warfarin now")
    assert any("4F-PCC" in suggestion["label"] or "prothrombin" in suggestion["label"].lower()
               for suggestion in reversal.get("suggestions", ())), [s["label"] for s in reversal.get("suggestions", ())]


# ------------------------------------------------------------------------------------------ severity modifiers

@pytest.mark.parametrize("modifier, words", [
    (f.condition("39871006", "Chronic respiratory failure", cond_id="crf"), "chronic respiratory failure (terrain): `Condition/crf`"),
    (f.condition("J96.11", "Chronic respiratory failure with hypoxia", system=f.ICD10CM, cond_id="crf"), "`Condition/crf`"),
    (e.report("CT chest", "Excavated lesion of the left upper lobe", report_id="ct"), "excavated lesion / mycetoma"),
    (f.condition("B44.1", "Aspergilloma", system=f.ICD10CM, cond_id="asp"), "`Condition/asp`"),
])
def test_terrain_or_cause_raises_a_non_massive_bleed_to_severe(client, modifier, words):
    cards = post(client, [f.hemoptysis(), f.spo2(96), *STABLE, modifier])
    by_topic = topics(cards)
    card = by_topic["hemoptysis-severe-by-terrain"]
    assert card["indicator"] == "warning" and "ICU-level care" in card["summary"]
    assert words in card["detail"] and "Considered from the outset" in card["detail"]
    assert "massive-hemoptysis-escalation" not in by_topic and "hemoptysis-first-line" not in by_topic


def test_modifiers_are_listed_on_a_massive_bleed_without_changing_its_trigger(client):
    # chronic respiratory failure: SpO2 judged on NEWS2 Scale 2, so 80 % (<= 83) is the massive trigger
    cards = post(client, [f.hemoptysis(), f.spo2(80), *STABLE, f.condition("39871006", "Chronic respiratory failure")])
    escalation = topics(cards)["massive-hemoptysis-escalation"]
    assert "SpO2 80 %" in escalation["summary"] and "modifiers on record" in escalation["detail"]


def test_quiescent_negative_cta_is_not_reassuring(client):
    cta = e.report("CT angiography chest", "No active extravasation. No bleeding source identified.", report_id="cta")
    cards = post(client, [f.hemoptysis(), f.spo2(88), *STABLE, cta])
    detail = topics(cards)["massive-hemoptysis-escalation"]["detail"]
    assert "a negative study in a quiet interval does not exclude a bronchial source" in detail
    assert "do not add them up" in detail and "`DiagnosticReport/cta`" in detail


@pytest.mark.parametrize("resource, name, value", [
    (f.observation("8310-5", 100.4, "[degF]", display="Body temperature"), "temperature", 38.0),
    (f.lab("2703-7", 8.0, "kPa", display="PaO2"), "pao2", 60.0),
    (f.lab("14682-9", 100, "umol/L", display="Creatinine"), "creatinine", 1.13),
    (f.lab("1975-2", 34.2, "umol/L", display="Bilirubin"), "bilirubin", 2.0),
    (f.observation("3150-0", 0.4, "1", display="FiO2"), "fio2", 40.0),
    (f.weight(176.37, unit="[lb_av]"), "body_weight", 80.0),
])
def test_further_units_for_calculators(resource, name, value):
    from datetime import datetime, timezone

    from cql_equivalents.fhir_select import pool_from_values
    from cql_equivalents.readers import map_inputs
    inputs = map_inputs(pool_from_values({"all": f.searchset([resource])}), datetime.now(timezone.utc))
    assert inputs.observations[name].value == pytest.approx(value, abs=0.02)


def test_a_value_with_a_comparator_is_a_bound_not_a_value(client):
    bound = f.inr(8, obs_id="bound")
    bound["valueQuantity"]["comparator"] = ">"
    older = f.inr(2.5, when=f.ago(hours=3))  # superseded by the newer bound: not used
    cards = post(client, [f.hemoptysis(), f.spo2(85), bound, older,
                          f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")])
    text = everything(cards)
    assert "`Observation/bound`: INR is reported as '> 8': a bound, not a value the engine can use" in text
    assert "INR not on record: obtain INR now" in text


@pytest.mark.parametrize("age, adult", [(17, False), (18, True), (19, True)])
def test_the_engine_is_for_adults(client, age, adult):
    from datetime import date, timedelta
    today = date.today().replace(day=min(date.today().day, 28))
    born = (today.replace(year=today.year - age - 1) + timedelta(days=1)).isoformat()  # turns age+1 tomorrow
    resources = [f.hemoptysis(), f.spo2(86), *STABLE, f.inr(3.0), f.weight(40),
                 f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")]
    response = client.post(URL, json=f.patient_view_request([f.patient(birth_date=born), *resources]))
    by_topic = topics(response.json["cards"])
    if adult:
        assert "massive-hemoptysis-escalation" in by_topic and "antithrombotic-reversal" in by_topic
    else:
        assert list(by_topic) == ["hemoptysis-not-adult"]
        assert f"age {age}" in by_topic["hemoptysis-not-adult"]["summary"]


@pytest.mark.parametrize("text, topic", [
    ("Coughing up blood", "hemoptysis-first-line"),
    ("Pseudohemoptysis from posterior epistaxis", "hemoptysis-frame-route-away"),
])
def test_conditions_by_text_take_the_most_specific_words(client, text, topic):
    cards = post(client, [f.condition("local-1", text, system="http://hospital.example.org/codes"), f.spo2(97), *STABLE])
    assert topic in topics(cards)


def test_referenced_medication_is_read_through_the_include(client):
    medication = {"resourceType": "Medication", "id": "med-w", "code": {"coding": [
        {"system": f.RXNORM, "code": "855332", "display": "Warfarin Sodium 5 MG Oral Tablet"}]}}
    order = f.medication_request("x", "x")
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med-w"}
    request = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86), order])
    request["prefetch"]["medicationRequests"]["entry"].append({"resource": medication, "search": {"mode": "include"}})
    cards = client.post(URL, json=request).json["cards"]
    assert topics(cards)["antithrombotic-reversal"]["summary"].startswith("Reverse warfarin now")
    from hooks.massive_hemoptysis.prefetch import PREFETCH
    assert "_include=MedicationRequest:medication" in PREFETCH["medicationRequests"]


def test_questionnaire_volume_in_litres_and_unknown_unit(client):
    answer = e.intake({"volume-single-ml": 0.2}, qr_id="qr-l")
    answer["item"][0]["answer"][0]["valueQuantity"].update({"unit": "L", "code": "L"})
    cards = post(client, [answer, f.spo2(97), *STABLE])
    escalation = topics(cards)["massive-hemoptysis-escalation"]
    assert "200 mL" in escalation["summary"] and "single expectoration >= 150 mL" in escalation["detail"]
    odd = e.intake({"volume-single-ml": 2}, qr_id="qr-cup")
    odd["item"][0]["answer"][0]["valueQuantity"].update({"unit": "cup", "code": "[cup_us]"})
    cards = post(client, [f.hemoptysis(), odd, f.spo2(97), *STABLE])
    assert "`QuestionnaireResponse/qr-cup`: answer 'volume-single-ml' unit '[cup_us]' is not recognised" in everything(cards)
