"""Orders on patient-view cards: the right FHIR resources, computed doses from the record, no guessed dose,
override reasons, links from configuration, and card hygiene."""
from __future__ import annotations

from dataclasses import replace

from hooks.cards import builder
from server.http.app import create_app
from server.config import Settings
from tests.support import fhir_factory as f
from tests.support import scenarios

URL = "/cds-services/massive-hemoptysis"


def _cards(client, resources) -> dict[str, list[dict]]:
    response = client.post(URL, json=f.patient_view_request(resources))
    assert response.status_code == 200, response.json
    by_topic: dict[str, list[dict]] = {}
    for card in response.json["cards"]:
        by_topic.setdefault(card["source"]["topic"]["code"], []).append(card)
    return by_topic


def _orders(card: dict) -> dict[str, dict]:
    """label -> (suggestion, resource) of each create suggestion."""
    return {s["label"]: {"suggestion": s, "resource": s["actions"][0]["resource"]} for s in card.get("suggestions", ())
            if s["actions"][0]["type"] == "create"}


def _dose(resource: dict) -> dict:
    return resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]


def test_escalation_orders_icu_ir_imaging_bronchoscopy_crossmatch_and_txa(client):
    card = _cards(client, scenarios.massive_on_apixaban())["massive-hemoptysis-escalation"][0]
    orders = _orders(card)
    assert card["selectionBehavior"] == "any"
    services = {label: o for label, o in orders.items() if o["resource"]["resourceType"] == "ServiceRequest"}
    assert set(services) == {"Transfer to the ICU", "Interventional radiology: bronchial artery embolisation",
                             "Type and crossmatch", "CT angiography of the chest", "Bronchoscopy (rigid preferred if massive)"}
    for order in services.values():
        assert order["suggestion"]["isRecommended"] is True
        resource = order["resource"]
        assert (resource["status"], resource["intent"], resource["priority"]) == ("draft", "proposal", "stat")
        assert resource["reasonReference"] == [{"reference": "Condition/hemoptysis-1"}]
        assert resource["code"]["text"] and "coding" not in resource["code"]  # no confirmed code: text only
    nebulised = orders["Tranexamic acid 500 mg nebulised three times daily"]
    assert "isRecommended" not in nebulised["suggestion"]  # Wand 2018 excluded massive hemoptysis
    txa = nebulised["resource"]
    assert txa["medicationCodeableConcept"]["coding"] == [
        {"system": f.RXNORM, "code": "10691", "display": "tranexamic acid"}]
    assert _dose(txa) == {"value": 500, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert txa["dosageInstruction"][0]["timing"] == {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}
    assert "PMID 30321510" in txa["note"][0]["text"]
    assert "Tranexamic acid 500 mg IV three times daily" in orders


def test_warfarin_reversal_orders_carry_the_computed_dose(client):
    card = _cards(client, scenarios.PATIENT_VIEW["massive, warfarin, INR and weight"]())["antithrombotic-reversal"][0]
    orders = _orders(card)
    pcc = next(o for label, o in orders.items() if label.startswith("4F-PCC"))
    # Kcentra PI: INR 3.4 -> 25 U/kg, 82 kg -> 2,050 U
    assert _dose(pcc["resource"]) == {"value": 2050, "unit": "units (factor IX)", "system": "http://unitsofmeasure.org",
                                      "code": "[iU]"}
    assert "coding" not in pcc["resource"]["medicationCodeableConcept"]  # 4F-PCC RxNorm is a name match only
    vitamin_k = next(o for label, o in orders.items() if label.startswith("Vitamin K1"))
    assert vitamin_k["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "8308"
    assert _dose(vitamin_k["resource"])["value"] == 10
    assert all(o["suggestion"]["isRecommended"] is True for o in orders.values())  # massive: reverse now


def test_no_weight_means_no_pcc_order_and_the_card_says_obtain_weight(client):
    card = _cards(client, scenarios.PATIENT_VIEW["massive, warfarin, no weight"]())["antithrombotic-reversal"][0]
    labels = list(_orders(card))
    assert not any(label.startswith("4F-PCC") for label in labels)
    assert any(label.startswith("Vitamin K1") for label in labels)  # fixed dose: needs no weight
    assert "Obtain to complete the dose: Body weight" in card["detail"]


def test_no_inr_means_no_pcc_order_and_the_card_says_obtain_inr(client):
    card = _cards(client, scenarios.PATIENT_VIEW["massive, warfarin, no INR"]())["antithrombotic-reversal"][0]
    assert not any(label.startswith("4F-PCC") for label in _orders(card))
    assert "INR not on record: obtain INR now" in card["detail"]


def test_inr_below_the_label_bands_gets_no_pcc_order(client):
    card = _cards(client, scenarios.PATIENT_VIEW["massive, warfarin, INR below 2"]())["antithrombotic-reversal"][0]
    assert not any(label.startswith("4F-PCC") for label in _orders(card))


def test_apixaban_pcc_50_units_per_kg_and_no_andexanet_order(client):
    card = _cards(client, scenarios.massive_on_apixaban())["antithrombotic-reversal"][0]
    orders = _orders(card)
    assert [_dose(o["resource"])["value"] for label, o in orders.items() if label.startswith("4F-PCC")] == [3700]  # 50 x 74
    assert not any("andexanet" in label.lower() for label in orders)


def test_dabigatran_gets_idarucizumab_5_g(client):
    card = _cards(client, scenarios.PATIENT_VIEW["massive, dabigatran"]())["antithrombotic-reversal"][0]
    order = next(o for label, o in _orders(card).items() if label.startswith("Idarucizumab"))
    assert _dose(order["resource"]) == {"value": 5, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}


def test_heparin_reversal_has_no_order_since_the_dose_depends_on_heparin_given(client):
    card = _cards(client, scenarios.PATIENT_VIEW["massive, heparin"]())["antithrombotic-reversal"][0]
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "bedside" in card["detail"]  # the heparin given is counted at the bedside (or from the MAR)
    assert card["overrideReasons"]


def test_non_massive_aspirin_says_when_desmopressin_is_due_without_ordering_it(client):
    """ACC 2020 ECDP: a reversal agent for life-threatening bleeding only; otherwise hold and say when (issue 14)."""
    by_topic = _cards(client, scenarios.non_massive_on_aspirin())
    reversal = by_topic["antithrombotic-reversal"][0]
    assert not _orders(reversal)  # no desmopressin (or any reversal agent) order for non-massive bleeding
    assert "**desmopressin**: 28 ug IV once = 0.4 ug/kg x 70 kg" in reversal["detail"]  # the dose, when due
    assert "if bleeding becomes life-threatening" in reversal["detail"]
    first_line = _orders(by_topic["hemoptysis-first-line"][0])
    recommended = {label for label, o in first_line.items() if o["suggestion"].get("isRecommended")}
    assert recommended == {"CT angiography of the chest", "Tranexamic acid 500 mg nebulised three times daily"}


def test_undetermined_card_offers_no_order_but_can_be_overridden(client):
    cards = _cards(client, [f.patient(), f.hemoptysis()])["hemoptysis-missing-physiology"]
    assert "suggestions" not in cards[0]
    assert {r["code"] for r in cards[0]["overrideReasons"]} >= {"need-more-info", "cds-not-applicable"}


def test_override_reasons_have_system_code_and_display(client):
    for cards in _cards(client, scenarios.massive_on_apixaban()).values():
        for card in cards:
            if card["indicator"] == "info":
                continue
            assert card["overrideReasons"]
            for reason in card["overrideReasons"]:
                assert reason["system"] == "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
                assert reason["code"] and reason["display"]


def test_links_come_from_configuration(settings, client):
    configured = replace(settings, smart_app_url="https://apps.example.org/launch", smart_app_label="Hemoptysis app",
                         engine_base_url="https://engines.example.org/v1")
    app = create_app(configured)
    app.test_client_class = type(client)  # the same kind of client as the fixture (it signs requests if auth is on)
    client = app.test_client()
    by_topic = _cards(client, scenarios.massive_on_apixaban())
    escalation = by_topic["massive-hemoptysis-escalation"][0]
    smart = [link for link in escalation["links"] if link["type"] == "smart"]
    assert smart == [{"label": "Hemoptysis app", "url": "https://apps.example.org/launch", "type": "smart",
                      "appContext": '{"engine":"pulm.massive-hemoptysis.v1","topic":"massive-hemoptysis-escalation"}'}]
    assert {"label": "Massive hemoptysis engine dossier", "url": "https://cds.example.org/docs/engine",
            "type": "absolute"} in escalation["links"]
    siblings = by_topic["sibling-engines"][0]["links"]
    assert "https://engines.example.org/v1/pulm.bronchiectasis.core.v1" in [link["url"] for link in siblings]


def test_no_smart_link_without_a_configured_app(client):
    for cards in _cards(client, scenarios.massive_on_apixaban()).values():
        for card in cards:
            assert all(link["type"] == "absolute" and "appContext" not in link for link in card.get("links", ()))


def test_smart_settings_from_environment():
    settings = Settings.from_env({"HEMOPTYSIS_CDS_SMART_APP_URL": "https://apps.example.org/launch",
                                  "HEMOPTYSIS_CDS_SMART_APP_LABEL": "Open app"})
    assert (settings.smart_app_url, settings.smart_app_label) == ("https://apps.example.org/launch", "Open app")


def test_cards_are_in_stable_order_critical_first(client):
    resources = scenarios.PATIENT_VIEW["massive, two agents (warfarin + aspirin)"]()
    first = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    second = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert [c["summary"] for c in first] == [c["summary"] for c in second]
    order = [builder.INDICATOR_ORDER[c["indicator"]] for c in first]
    assert order == sorted(order) and order[0] == 0
    reversal = [c["summary"] for c in first if c["source"]["topic"]["code"] == "antithrombotic-reversal"]
    assert len(reversal) == 1 and reversal[0].startswith("Reverse warfarin + aspirin")  # one plan, VKA first


def test_the_same_drug_recorded_twice_gives_one_reversal_card(client):
    resources = [*scenarios.massive_on_apixaban(), f.medication_request("1364430", "apixaban", med_id="apixaban-order")]
    assert len(_cards(client, resources)["antithrombotic-reversal"]) == 1


def test_tidy_drops_duplicate_cards_and_orders_them():
    source = builder.source("https://cds.example.org", "t")
    info = builder.card("same", "info", "d", source)
    duplicate = {**info, "uuid": "another-uuid"}
    critical = builder.card("urgent", "critical", "d", source)
    warning = builder.card("careful", "warning", "d", source)
    assert builder.tidy([info, warning, duplicate, critical]) == [critical, warning, info]



def test_tidy_keeps_cards_that_share_a_summary_but_say_something_else():
    """Cards are written out for comparison only when their summaries meet: one differing in any member but the
    summary is kept, a duplicate of the first of a group (not the last) is dropped, whatever its key order."""
    source = builder.source("https://cds.example.org", "t")
    first = builder.card("same", "warning", "detail one", source)
    other_detail = builder.card("same", "warning", "detail two", source)
    other_indicator = builder.card("same", "critical", "detail one", source)
    reordered = dict(reversed(list({**first, "uuid": "copied"}.items())))
    answer = builder.tidy([first, other_detail, other_indicator, reordered, dict(other_detail)])
    assert [(card["indicator"], card["detail"]) for card in answer] == [
        ("critical", "detail one"), ("warning", "detail one"), ("warning", "detail two")]
    assert all(list(card)[0] == "uuid" for card in answer)
    assert builder.tidy([first, {**first, "summary": "not same"}]) == [first, {**first, "summary": "not same"}]


def test_dah_vasculitis_gets_no_bae_order(client):
    """Seed 004: DAH / vasculitis is not a BAE target; the ICU, imaging and crossmatch orders stay."""
    escalation = _cards(client, scenarios.dah_on_no_anticoagulant())["massive-hemoptysis-escalation"][0]
    labels = set(_orders(escalation))
    assert "Interventional radiology: bronchial artery embolisation" not in labels
    assert {"Transfer to the ICU", "CT angiography of the chest", "Type and crossmatch"} <= labels
    assert "antithrombotic-reversal" not in _cards(client, scenarios.dah_on_no_anticoagulant())


def test_active_anticoagulant_order_gets_a_hold_suggestion(client):
    order = f.medication_request("1364430", "apixaban 5 MG Oral Tablet", med_id="apixaban-order")
    resources = [r for r in scenarios.massive_on_apixaban() if r["resourceType"] != "MedicationStatement"] + [order]
    card = _cards(client, resources)["antithrombotic-reversal"][0]
    holds = [s for s in card["suggestions"] if s["actions"][0]["type"] == "update"]
    assert [h["label"] for h in holds] == ["Hold apixaban (MedicationRequest/apixaban-order)"]
    held = holds[0]["actions"][0]["resource"]
    assert held["id"] == "apixaban-order" and held["status"] == "on-hold" and held["statusReason"]["text"]
    assert {k: v for k, v in held.items() if k not in ("status", "statusReason")} == {
        k: v for k, v in order.items() if k != "status"}  # the whole resource, only the status changed
    assert holds[0]["isRecommended"] is True


def test_patient_reported_statement_gets_no_hold(client):
    card = _cards(client, scenarios.massive_on_apixaban())["antithrombotic-reversal"][0]
    assert all(s["actions"][0]["type"] == "create" for s in card["suggestions"])


def test_an_order_that_is_not_valid_r4_is_never_sent(caplog):
    from hooks.cards import fhir_orders, suggestions
    target = fhir_orders.OrderTarget("pat-9", "enc-9", priority=" stat")  # a FHIR code has no leading space
    assert suggestions.order("cta_chest", target, True) is None
    assert suggestions.with_suggestions([suggestions.order("cta_chest", target, True)]) == {}  # no empty suggestions member
    assert "failed FHIR R4 validation" in caplog.text and "pat-9" not in caplog.text  # no patient id in the log
    good = suggestions.order("cta_chest", fhir_orders.OrderTarget("pat-10", None, "urgent", ("Condition/c-1",)), True)
    assert good["actions"][0]["resource"]["subject"] == {"reference": "Patient/pat-10"}
    assert fhir_orders.valid(good["actions"][0]["resource"])
