"""Issue 14 items 5 and 6: one reversal plan per patient (agents by urgency, orders once, DAPT after a stent asks
cardiology first) and the haemostatic plan without an anticoagulant (targets at their edges; DIC / HIT never point
to 4F-PCC; DIC never offers tranexamic acid). Through the real HTTP app with FHIR JSON."""
from __future__ import annotations

import pytest

from tests.support import engine_factory as e
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"
MASSIVE = [f.spo2(85), f.respiratory_rate(28), f.blood_pressure(110, 70)]
STABLE = [f.spo2(97), f.respiratory_rate(16), f.heart_rate(80), f.blood_pressure(130, 80)]
WARFARIN = f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")


def answer(client, resources) -> list[dict]:
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), *resources]))
    assert response.status_code == 200, response.json
    return response.json["cards"]


def by_topic(cards) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for card in cards:
        found.setdefault(card["source"]["topic"]["code"], []).append(card)
    return found


def orders(cards) -> list[str]:
    """The text of every order the answer proposes (MedicationRequest medication / ServiceRequest code)."""
    texts = []
    for card in cards:
        for suggestion in card.get("suggestions", ()):
            for action in suggestion["actions"]:
                resource = action.get("resource") or {}
                if action["type"] == "create":
                    concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
                    route = (resource.get("dosageInstruction") or [{}])[0].get("route", {}).get("text", "")
                    texts.append(concept.get("text", "") + (f" ({route})" if route else ""))
    return texts


# ------------------------------------------------------------------------------------------ one plan

@pytest.mark.parametrize("drugs, first", [
    ([f.medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet"), f.medication_request("1191", "aspirin")],
     "warfarin"),
    ([f.medication_request("1191", "aspirin"), f.medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet")],
     "warfarin"),  # urgency, not record order, decides
    ([f.medication_request("1191", "aspirin"), f.medication_request("613391", "prasugrel")], "aspirin"),
    ([f.medication_statement("1364430", "apixaban"), f.medication_statement("32968", "clopidogrel")], "apixaban"),
])
def test_one_reversal_card_with_agents_by_urgency(client, drugs, first):
    cards = answer(client, [*MASSIVE, f.weight(80), f.inr(2.6), *drugs])
    reversal = by_topic(cards)["antithrombotic-reversal"]
    assert len(reversal) == 1
    detail = reversal[0]["detail"]
    assert detail.index(f"**1. {first}**") < detail.index("**2. ")
    texts = orders(cards)
    assert len(texts) == len(set(texts)), texts  # no duplicate order in the answer


def test_two_anticoagulants_get_one_pcc_order_within_the_label(client):
    cards = answer(client, [*MASSIVE, f.weight(90), f.inr(7.0), WARFARIN,
                            f.medication_statement("1364430", "apixaban")])
    reversal = by_topic(cards)["antithrombotic-reversal"][0]
    pcc = [s for s in reversal["suggestions"] if s["label"].startswith("4F-PCC")]
    assert len(pcc) == 1 and pcc[0]["label"].startswith("4F-PCC 4,500 units")  # max(50 x 90 by INR, 50 x 90)


def procedure_pci(days_ago: float) -> dict:
    resource = e.procedure("Percutaneous coronary intervention, drug-eluting stent to LAD")
    resource["performedDateTime"] = f.ago(days=days_ago)
    return resource


@pytest.mark.parametrize("days_ago, flagged", [(60, True), (364, True), (366, False)])
def test_dapt_after_a_recent_stent_asks_cardiology_before_stopping(client, days_ago, flagged):
    dapt = [f.medication_request("1191", "aspirin"), f.medication_request("613391", "prasugrel")]
    cards = answer(client, [*STABLE, f.weight(80), procedure_pci(days_ago), *dapt])
    card = by_topic(cards)["antithrombotic-reversal"][0]
    labels = {s["label"]: s.get("isRecommended") for s in card["suggestions"]}
    consult = "Cardiology consult: antiplatelet therapy after a recent coronary stent"
    assert (consult in labels) is flagged
    assert ("stent thrombosis" in card["detail"]) is flagged
    holds = [recommended for label, recommended in labels.items() if label.startswith("Hold ")]
    assert len(holds) == 2
    assert all(r is None for r in holds) if flagged else all(r is True for r in holds)
    if flagged:
        assert labels[consult] is True and "cardiology before stopping" in card["summary"]
        assert "hold it" not in card["summary"]


# ------------------------------------------------------------------------------------------ DIC / HIT

DIC = f.condition("D65", "Disseminated intravascular coagulation", system="http://hl7.org/fhir/sid/icd-10-cm")
HIT = f.condition("x", "Heparin-induced thrombocytopenia", system="http://example.org/local")


@pytest.mark.parametrize("condition", [DIC, HIT], ids=["DIC", "HIT"])
@pytest.mark.parametrize("drug", [WARFARIN, f.medication_statement("1364430", "apixaban"),
                                  f.medication_statement("1599538", "edoxaban")], ids=["warfarin", "apixaban", "edoxaban"])
def test_no_card_points_to_4f_pcc_in_dic_or_hit(client, condition, drug):
    cards = answer(client, [*MASSIVE, f.weight(75), f.inr(3.2), condition, drug])
    assert not any(text.startswith("4-factor prothrombin complex concentrate") for text in orders(cards))
    assert any(text.startswith("Plasma (FFP)") for text in orders(cards)) or "apixaban" in str(drug) or \
        "edoxaban" in str(drug)  # warfarin: plasma corrects the INR when 4F-PCC may not
    for card in cards:
        assert "4F-PCC" not in card["summary"] or "contraindicated" in card["summary"] or "no 4F-PCC" in card["summary"]
    reversal = by_topic(cards)["antithrombotic-reversal"][0]
    assert "**not given: contraindicated**" in reversal["detail"]
    # no step still points to the product ruled out (the VKA plan's vitamin K and plasma steps)
    for words in ("given with the PCC", "only if PCC unavailable", "prefers 4F-PCC over FFP"):
        assert words not in reversal["detail"]


def test_dic_withholds_tranexamic_acid_everywhere(client):
    cards = answer(client, [*MASSIVE, f.weight(75), DIC, f.lab("777-3", 30, "10*3/uL")])
    assert not any(text.startswith("tranexamic acid") for text in orders(cards))
    escalation = by_topic(cards)["massive-hemoptysis-escalation"][0]
    assert "tranexamic acid is not offered" in escalation["detail"]
    assert "nebulised 500 mg three times daily" not in escalation["detail"]
    plan = by_topic(cards)["haemostatic-plan"][0]
    assert "no tranexamic acid" in plan["summary"] and "no 4F-PCC" in plan["summary"]


def test_without_dic_tranexamic_acid_is_still_offered(client):
    assert "tranexamic acid (intravenous)" in orders(answer(client, MASSIVE))


# ------------------------------------------------------------------------------------------ haemostatic targets

def plan_card(client, resources):
    return by_topic(answer(client, [*MASSIVE, f.weight(70), *resources])).get("haemostatic-plan", [None])[0]


# Rossaint 2023: platelets < 50 x10^9/L, fibrinogen <= 1.5 g/L; PT > 1.5 x normal (INR > 1.5 as its proxy)
@pytest.mark.parametrize("resource, product, off", [
    (f.lab("777-3", 49, "10*3/uL"), "Platelet transfusion", True),
    (f.lab("777-3", 50, "10*3/uL"), "Platelet transfusion", False),
    (f.lab("777-3", 51, "10*3/uL"), "Platelet transfusion", False),
    (f.lab("3255-7", 1.4, "g/L"), "Fibrinogen concentrate", True),
    (f.lab("3255-7", 1.5, "g/L"), "Fibrinogen concentrate", True),
    (f.lab("3255-7", 1.6, "g/L"), "Fibrinogen concentrate", False),
    (f.lab("3255-7", 150, "mg/dL"), "Fibrinogen concentrate", True),
    (f.inr(1.49), "Plasma (FFP)", False),
    (f.inr(1.5), "Plasma (FFP)", False),
    (f.inr(1.51), "Plasma (FFP)", True),
])
def test_haemostatic_targets_at_their_edges(client, resource, product, off):
    card = plan_card(client, [resource])
    offered = [s["label"] for s in card["suggestions"]] if card else []
    assert any(label.startswith(product) for label in offered) is off


def test_platelets_9_get_a_recommended_transfusion_and_no_patch_text(client):
    card = plan_card(client, [f.lab("777-3", 9, "10*3/uL"), f.medication_statement("1191", "aspirin")])
    assert card["indicator"] == "critical"
    assert [s.get("isRecommended") for s in card["suggestions"] if s["label"].startswith("Platelet")] == [True]
    cards = answer(client, [*MASSIVE, f.weight(70), f.lab("777-3", 9, "10*3/uL"), f.medication_statement("1191", "aspirin")])
    reversal = by_topic(cards)["antithrombotic-reversal"][0]
    assert "transfuse for the count" in reversal["detail"] and "not routinely" not in reversal["detail"]


def test_an_anticoagulant_explains_the_inr_first(client):
    card = plan_card(client, [f.inr(3.0), WARFARIN])
    assert card is None  # the INR is the warfarin's: the reversal card treats it, no plasma order beside 4F-PCC


def test_fibrinogen_concentrate_is_a_dose_range_and_cryoprecipitate_an_alternative(client):
    card = plan_card(client, [f.lab("3255-7", 0.9, "g/L")])
    suggestions = {s["label"]: s for s in card["suggestions"]}
    concentrate = suggestions["Fibrinogen concentrate 3-4 g IV"]
    dose = concentrate["actions"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseRange"]
    assert (dose["low"]["value"], dose["high"]["value"], dose["low"]["code"]) == (3, 4, "g")
    assert concentrate.get("isRecommended") is True
    assert suggestions["Cryoprecipitate, adult dose"].get("isRecommended") is None


def test_dic_plan_reads_pt_and_d_dimer(client):
    card = plan_card(client, [DIC, f.lab("5902-2", 31.5, "s"), f.lab("48065-7", 18.4, "ug/mL{FEU}"),
                              f.lab("48065-7", 900, "ng/mL{FEU}", when=f.ago(hours=30))])
    assert "| Prothrombin time (PT) | 31.5 s |" in card["detail"]
    assert "| D-dimer (FEU) | 18.4 ug/mL{FEU} |" in card["detail"]
    assert "The cornerstone of DIC treatment" in card["detail"] or "underlying condition" in card["detail"]


@pytest.mark.parametrize("count, patch_shown", [(49, False), (50, True), (51, True)])
def test_patch_caution_gives_way_below_the_platelet_target(client, count, patch_shown):
    cards = answer(client, [*STABLE, f.weight(70), f.lab("777-3", count, "10*3/uL"), f.medication_statement("1191", "aspirin")])
    reversal = by_topic(cards)["antithrombotic-reversal"][0]
    assert ("caution: platelet transfusion" in reversal["detail"]) is patch_shown
    plan = by_topic(cards).get("haemostatic-plan")
    assert (plan is not None) is (not patch_shown)  # platelets offered only where PATCH is not quoted


def test_hit_leaves_platelets_to_haematology(client):
    cards = answer(client, [*MASSIVE, f.weight(80), HIT, f.lab("777-3", 45, "10*3/uL"),
                            f.medication_request("15202", "argatroban")])
    plan = by_topic(cards)["haemostatic-plan"][0]
    platelets = [s for s in plan["suggestions"] if s["label"].startswith("Platelet")]
    assert len(platelets) == 1 and platelets[0].get("isRecommended") is None
    assert "no 4F-PCC" in plan["summary"]
