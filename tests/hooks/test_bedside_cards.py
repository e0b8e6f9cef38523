"""Issue 13, cards and orders: the rules behind the bedside fixtures, on records the fixtures do not hold.
DAH / PA-source evidence wherever it is charted, context that changes the plan (pregnancy, DNR, a child's airway
emergency), causes seen only on imaging, and negated report words. Through the real HTTP app."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support import engine_factory as e
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"
MASSIVE = [f.spo2(86), f.respiratory_rate(28), f.heart_rate(110), f.blood_pressure(124, 70)]
CALM = [f.spo2(97), f.respiratory_rate(16), f.heart_rate(80), f.blood_pressure(130, 80)]
BAE = "Interventional radiology: bronchial artery embolisation"
PA = "Interventional radiology: pulmonary angiography, PA-targeted embolisation"


def answer(client, resources, birth_date: str = "1961-04-02") -> list[dict]:
    response = client.post(URL, json=f.patient_view_request([f.patient(birth_date=birth_date), f.hemoptysis(), *resources]))
    assert response.status_code == 200, response.json
    return response.json["cards"]


def offered(cards: list[dict]) -> dict[str, bool | None]:
    return {s["label"]: s.get("isRecommended") for card in cards for s in card.get("suggestions", ())}


def status_observation(code: str, display: str, *, when: str, **value) -> dict:
    return {"resourceType": "Observation", "id": f"obs-{code}-{when[:13]}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": when, **value}


# ------------------------------------------------------------------------------------------ DAH / PA source

@pytest.mark.parametrize("evidence, instead", [
    (f.condition("M32.14", "Glomerular disease in systemic lupus erythematosus", system=f.ICD10CM), "Methylprednisolone"),
    (f.condition("R04.89", "Diffuse alveolar hemorrhage", system=f.ICD10CM), "Methylprednisolone"),
    (f.condition("x-1", "Diffuse alveolar haemorrhage", system="http://hospital.example.org/problems"), "Methylprednisolone"),
    (e.coded_lab("6968-2", "Proteinase 3 Ab", "POS"), "Vasculitis team"),
    (e.coded_lab("31254-6", "Glomerular basement membrane Ab", "POS"), "Plasma exchange"),
    (e.report("CT chest", "Bilateral ground glass in keeping with alveolar haemorrhage"), "Methylprednisolone"),
    (f.condition("x-2", "Rasmussen aneurysm, left upper lobe", system="http://hospital.example.org/problems"), PA),
    (e.procedure("Transbronchial lung biopsy", when=f.ago(days=2)), PA),
    (e.report("CT angiography chest", "Pulmonary artery pseudoaneurysm in the right lower lobe"), PA),
])
def test_dah_or_a_pa_source_never_offers_bae_and_offers_what_the_dossier_says(client, evidence, instead):
    cards = answer(client, [*MASSIVE, evidence])
    orders = offered(cards)
    assert BAE not in orders
    assert any(label.startswith(instead) for label in orders), orders
    assert "ir_bae" in cards[0]["extension"]["hemoptysis-cds.advises-against"]


def test_anti_gbm_plasma_exchange_is_recommended_never_not_routinely(client):
    cards = answer(client, [*MASSIVE, f.condition("M31.0", "Goodpasture syndrome", system=f.ICD10CM)])
    assert offered(cards)["Plasma exchange (apheresis team)"] is True
    text = " ".join(card["detail"] for card in cards)
    assert "KDIGO 2021" in text and "not routinely" not in text


@pytest.mark.parametrize("conclusion, dah", [
    ("No evidence of diffuse alveolar haemorrhage. Right upper lobe bronchiectasis.", False),
    ("No change in the diffuse alveolar haemorrhage pattern.", True),
])
def test_a_negated_report_word_does_not_count(client, conclusion, dah):
    orders = offered(answer(client, [*MASSIVE, e.report("CT chest", conclusion)]))
    assert (BAE not in orders) is dah


# ------------------------------------------------------------------------------------------ care context

def test_pregnancy_from_a_condition_calls_the_obstetric_team(client):
    cards = answer(client, [*MASSIVE, f.condition("Z33.1", "Pregnant state, incidental", system=f.ICD10CM)])
    assert cards[0]["detail"].startswith("**Pregnant**") and "obstetric team" in cards[0]["summary"]
    assert offered(cards)["Obstetric team review now (pregnant patient)"] is True
    assert "Warfarin crosses the placenta" not in cards[0]["detail"]  # no warfarin on record: no warfarin caution


def test_a_newer_not_pregnant_status_outweighs_an_older_pregnant_one(client):
    older = status_observation("82810-3", "Pregnancy status", when=f.ago(days=30), valueCodeableConcept={
        "coding": [{"system": "http://snomed.info/sct", "code": "77386006"}]})
    newer = status_observation("82810-3", "Pregnancy status", when=f.ago(days=1), valueCodeableConcept={
        "coding": [{"system": "http://snomed.info/sct", "code": "60001007"}]})
    assert not answer(client, [*MASSIVE, older, newer])[0]["detail"].startswith("**Pregnant**")
    assert answer(client, [*MASSIVE, older])[0]["detail"].startswith("**Pregnant**")


@pytest.mark.parametrize("record, limits", [
    (status_observation("81351-9", "DNR order in place", when=f.ago(days=3), valueBoolean=True), True),
    (status_observation("81351-9", "DNR order in place", when=f.ago(days=3), valueBoolean=False), False),
    (f.condition("x-3", "Comfort care only", system="http://hospital.example.org/problems"), True),
])
def test_a_limit_of_treatment_is_said_first_and_no_order_is_pushed(client, record, limits):
    cards = answer(client, [*MASSIVE, record])
    assert cards[0]["summary"].startswith("Check goals of care") is limits
    assert any(flag is True for flag in offered(cards).values()) is not limits


@pytest.mark.parametrize("resources, critical", [
    ([f.spo2(84), f.respiratory_rate(30)], True),
    ([f.spo2(96), e.procedure("Endotracheal intubation", when=f.ago(hours=1))], True),
    ([f.spo2(96), f.respiratory_rate(22)], False),
])
def test_a_child_in_an_airway_emergency_gets_a_critical_card_without_adult_orders(client, resources, critical):
    born = (datetime.now(timezone.utc) - timedelta(days=365 * 15 + 30)).strftime("%Y-%m-%d")
    cards = answer(client, [*resources, f.inr(3.0), f.weight(50),
                            f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")], birth_date=born)
    assert [card["source"]["topic"]["code"] for card in cards] == ["hemoptysis-not-adult"]
    assert (cards[0]["indicator"] == "critical") is critical and offered(cards) == {}
    assert "U/kg" not in cards[0]["detail"] and "paediatric" in cards[0]["summary"]


@pytest.mark.parametrize("birth_date", [None, "not a date", "1850-01-01"])
def test_an_adult_pathway_applied_without_an_age_says_so(client, birth_date):
    """No usable birthDate (absent, unreadable, implausible): the adult cards still come, and say the age is not
    on record and the adult pathway was applied; with one on record, nothing is said."""
    patient = f.patient()
    if birth_date is None:
        del patient["birthDate"]
    else:
        patient["birthDate"] = birth_date
    response = client.post(URL, json=f.patient_view_request([patient, f.hemoptysis(), f.spo2(84)]))
    assert response.status_code == 200, response.json
    bleeding = response.json["cards"][0]
    assert bleeding["source"]["topic"]["code"] == "massive-hemoptysis-escalation"
    assert "Age not on record (no usable Patient.birthDate)" in bleeding["detail"]
    assert "for 18 years and over" in bleeding["detail"]
    assert "Age not on record" not in answer(client, [f.spo2(84)])[0]["detail"]


# ------------------------------------------------------------------------------------------ imaging-only causes

@pytest.mark.parametrize("conclusion, engine", [
    ("Thick-walled cavitary lesion of the right apex", "pulm.tuberculosis.v1"),
    ("Fungus ball within an old cavity", "pulm.abpa.v1"),
    ("3 cm spiculated mass of the left lower lobe", "onc.lung-cancer.core.v1"),
])
def test_a_cause_seen_only_on_imaging_opens_its_engine(client, conclusion, engine):
    cards = answer(client, [*CALM, e.report("CT chest", conclusion, report_id="ct-1")])
    siblings = next(card for card in cards if card["source"]["topic"]["code"] == "sibling-engines")
    assert any(link["url"].endswith(engine) for link in siblings["links"]) and "`DiagnosticReport/ct-1`" in siblings["detail"]


def test_no_cavitation_opens_nothing(client):
    cards = answer(client, [*CALM, e.report("CT chest", "No cavitation. No mass. Mild emphysema.")])
    assert "sibling-engines" not in [card["source"]["topic"]["code"] for card in cards]


CTA = "CT angiography of the chest"


@pytest.mark.parametrize("vitals, topic", [(MASSIVE, "massive-hemoptysis-escalation"), (CALM, "hemoptysis-first-line")])
def test_a_cta_of_this_episode_is_not_ordered_again(client, vitals, topic):
    """A CT angiography already on record (within findings.toml fresh_hours) that found its target: the card says
    it is on record and offers no second one (orders.toml not_repeated_when_on_record)."""
    done = e.report("CT angiography chest", "Hypertrophied right bronchial artery; active extravasation right upper lobe.",
                    report_id="cta-done", when=f.ago(hours=3))
    before, after = answer(client, vitals), answer(client, [*vitals, done])
    assert CTA in offered(before) and CTA not in offered(after)
    card = next(c for c in after if c["source"]["topic"]["code"] == topic)
    assert "**CT angiography on record** (`DiagnosticReport/cta-done`" in card["detail"]
    assert "urgent CT angiography" not in card["summary"]


def test_a_negative_cta_in_a_quiet_interval_is_asked_again(client):
    quiet = e.report("CT angiography chest", "No active extravasation. No bleeding source identified.", report_id="cta-q")
    cards = answer(client, [*MASSIVE, quiet])
    assert offered(cards).get(CTA) is True
    assert "**CT angiography on record**" not in cards[0]["detail"]


def test_a_cta_older_than_its_window_is_asked_again(client):
    old = e.report("CT angiography chest", "Active extravasation right upper lobe.", report_id="cta-old",
                   when=f.ago(hours=24 * 8))  # findings.toml: 168 h
    assert offered(answer(client, [*CALM, old])).get(CTA) is True


def test_a_bronchoscopy_on_record_does_not_stop_the_massive_card_offering_one(client):
    # in massive hemoptysis bronchoscopy is also airway control and tamponade (Charya 2021), not only a diagnosis
    earlier = e.procedure("Diagnostic fiberoptic bronchoscopy", snomed="173160006", proc_id="bronch-1",
                          outcome="Blood in the right upper lobe bronchus")
    assert offered(answer(client, [*MASSIVE, earlier])).get("Bronchoscopy (rigid preferred if massive)") is True
