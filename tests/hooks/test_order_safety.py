"""The order-sign guard, end to end: draftOrders read as the hook's Bundle, conditions from prefetch."""
from __future__ import annotations

import responses

from tests.support import fhir_factory as f
from tests.support import scenarios
from tests.conftest import FHIR_BASE

URL = "/cds-services/hemoptysis-order-safety"


def _cards(client, record, drafts, **kw) -> list[dict]:
    response = client.post(URL, json=f.order_sign_request(record, drafts, **kw))
    assert response.status_code == 200, response.json
    return response.json["cards"]


def test_discovery_lists_the_order_sign_service(client):
    services = {s["id"]: s for s in client.get("/cds-services").json["services"]}
    service = services["hemoptysis-order-safety"]
    assert service["hook"] == "order-sign"
    assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}",
                                   "conditions": "Condition?patient={{context.patientId}}"}


def test_draft_anticoagulant_with_active_hemoptysis_is_critical_with_a_delete(client):
    record, drafts = scenarios.ORDER_SIGN["apixaban drafted, active hemoptysis"]()
    [card] = _cards(client, record, drafts)
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Draft apixaban order with active hemoptysis")
    assert "`Condition/hemoptysis-1`" in card["detail"] and "`MedicationRequest/draft-apixaban`" in card["detail"]
    assert "direct factor Xa inhibitor" in card["detail"]
    [delete] = card["suggestions"]
    assert delete["isRecommended"] is True
    assert delete["actions"] == [{"type": "delete", "resourceId": "MedicationRequest/draft-apixaban",
                                  "description": delete["actions"][0]["description"]}]
    assert "resource" not in delete["actions"][0]


def test_two_antithrombotics_two_cards(client):
    record, drafts = scenarios.ORDER_SIGN["enoxaparin + clopidogrel drafted, active hemoptysis"]()
    cards = _cards(client, record, drafts)
    assert [c["indicator"] for c in cards] == ["critical", "critical"]
    assert {c["suggestions"][0]["actions"][0]["resourceId"] for c in cards} == {
        "MedicationRequest/draft-enox", "MedicationRequest/draft-clop"}


def test_txa_with_active_pe_warns_and_says_the_label_is_unconfirmed(client):
    record, drafts = scenarios.ORDER_SIGN["TXA drafted, active PE"]()
    [card] = _cards(client, record, drafts)
    assert card["indicator"] == "warning"
    assert "pulmonary embolism" in card["summary"] and "unconfirmed" in card["summary"]
    assert "label contraindications were not retrieved" in card["detail"]
    assert "`Condition/pe-1`" in card["detail"]
    [delete] = card["suggestions"]
    assert "isRecommended" not in delete and delete["actions"][0]["resourceId"] == "MedicationRequest/draft-txa"
    assert any(link["url"].endswith("/pulm.pe.core.v1") for link in card["links"])


def test_both_rules_fire_critical_first(client):
    record, drafts = scenarios.ORDER_SIGN["warfarin and TXA drafted, hemoptysis and PE"]()
    cards = _cards(client, record, drafts)
    assert [c["indicator"] for c in cards] == ["critical", "warning"]
    assert "matched by ATC B02AA02" in cards[1]["detail"]


def test_nothing_to_say_gives_no_card(client):
    for name in ("apixaban drafted, no hemoptysis", "TXA drafted, hemoptysis without PE"):
        record, drafts = scenarios.ORDER_SIGN[name]()
        assert _cards(client, record, drafts) == [], name
    unrelated = f.draft_medication_request("8640", "prednisone", med_id="draft-pred")
    assert _cards(client, [f.patient(), f.hemoptysis()], [unrelated]) == []


def test_resolved_hemoptysis_does_not_fire(client):
    record = [f.patient(), f.hemoptysis(clinical="resolved")]
    assert _cards(client, record, [f.draft_medication_request("1364430", "apixaban")]) == []


def test_cancelled_or_do_not_perform_drafts_are_ignored(client):
    cancelled = f.draft_medication_request("1364430", "apixaban", med_id="d1")
    cancelled["status"] = "cancelled"
    refused = f.draft_medication_request("11289", "warfarin", med_id="d2")
    refused["doNotPerform"] = True
    assert _cards(client, [f.patient(), f.hemoptysis()], [cancelled, refused]) == []


def test_draft_without_id_is_warned_but_offers_no_delete(client):
    record, drafts = scenarios.ORDER_SIGN["draft without id"]()
    [card] = _cards(client, record, drafts)
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "remove it in the ordering session" in card["detail"]


def test_published_style_draft_that_is_not_valid_r4_is_still_checked(client):
    """Library 1.0.1 examples send doseAndRate as an object and no Bundle.type: read leniently, reported."""
    draft = f.draft_medication_request("1364430", "apixaban", med_id="draft-bad")
    draft["dosageInstruction"] = [{"doseAndRate": {"doseQuantity": {"value": 5, "unit": "mg"}}}]
    [card] = _cards(client, [f.patient(), f.hemoptysis()], [draft], bundle_type=None)
    assert card["indicator"] == "critical"
    assert "The draft is not a valid FHIR record (field dosageInstruction" in card["detail"]


def test_draft_medication_by_reference_inside_the_bundle(client):
    draft = f.draft_medication_request("0", "x", med_id="draft-ref")
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/med-warf"}
    medication = {"resourceType": "Medication", "id": "med-warf",
                  "code": {"coding": [{"system": f.RXNORM, "code": "11289", "display": "warfarin"}]}}
    request = f.order_sign_request([f.patient(), f.hemoptysis()], [draft])
    request["context"]["draftOrders"]["entry"].append({"resource": medication})
    cards = client.post(URL, json=request).json["cards"]
    assert len(cards) == 1 and "warfarin" in cards[0]["summary"]


def test_draft_orders_must_be_a_bundle(client):
    request = f.order_sign_request([f.patient(), f.hemoptysis()], [])
    request["context"]["draftOrders"] = {"resourceType": "MedicationRequest"}
    response = client.post(URL, json=request)
    assert response.status_code == 400 and "draftOrders must be a FHIR Bundle" in response.json["issue"][0]["diagnostics"]
    del request["context"]["draftOrders"]
    assert client.post(URL, json=request).status_code == 400


def test_patient_view_request_to_the_order_sign_service_is_refused(client):
    response = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis()]))
    assert response.status_code == 400 and "order-sign" in response.json["issue"][0]["diagnostics"]


@responses.activate
def test_conditions_fetched_from_the_fhir_server_when_not_prefetched(client):
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=f.patient())
    responses.add(responses.GET, f"{FHIR_BASE}/Condition", json=f.searchset([f.hemoptysis()]))
    request = f.order_sign_request([], [f.draft_medication_request("1364430", "apixaban")])
    del request["prefetch"]
    request["fhirServer"] = FHIR_BASE
    response = client.post(URL, json=request)
    assert response.status_code == 200, response.json
    assert response.json["cards"][0]["indicator"] == "critical"
    assert len(responses.calls) == 2


def test_a_draft_for_another_patient_is_not_read_as_this_patients_order(client):
    record, drafts = scenarios.ORDER_SIGN["apixaban drafted, active hemoptysis"]()
    for draft in drafts:
        draft["subject"] = {"reference": "Patient/someone-else"}
    assert _cards(client, record, drafts) == []
    for draft in drafts:  # a draft naming no patient is drafted in this chart: still checked
        del draft["subject"]
    [card] = _cards(client, record, drafts)
    assert card["indicator"] == "critical"
