"""The patient-view service end to end, through the real Flask app with real FHIR JSON."""
from __future__ import annotations

import json

import pytest
import responses

from tests import fhir_factory as f
from tests.conftest import FHIR_BASE

URL = "/cds-services/massive-hemoptysis"
# Resource types the service searches besides Patient, Condition and Observation (hooks/massive_hemoptysis/prefetch.py).
OTHER_SEARCHED = ("MedicationStatement", "MedicationRequest", "MedicationAdministration", "Procedure",
                  "DiagnosticReport", "ImagingStudy", "QuestionnaireResponse", "DeviceUseStatement", "DeviceRequest")


def massive_on_warfarin() -> list[dict]:
    return [
        f.patient(), f.hemoptysis(cond_id="hemoptysis-1"), f.spo2(86, obs_id="spo2-1"), f.respiratory_rate(22),
        f.heart_rate(104), f.blood_pressure(118, 70), f.inr(3.1, obs_id="inr-1"), f.hemoglobin(11.2), f.weight(82),
        f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet", med_id="warfarin-1"),
    ]


def by_topic(cards: list[dict]) -> dict[str, dict]:
    return {card["source"]["topic"]["code"]: card for card in cards}


def test_massive_hemoptysis_on_warfarin_gets_escalation_and_reversal(client):
    response = client.post(URL, json=f.patient_view_request(massive_on_warfarin()))
    assert response.status_code == 200, response.json
    cards = response.json["cards"]
    topics = by_topic(cards)
    escalation = topics["massive-hemoptysis-escalation"]
    assert escalation["indicator"] == "critical"
    assert "SpO2 86 %" in escalation["summary"]
    for words in ("Airway first", "bleeding side down", "ICU", "Bronchial artery embolisation", "CT angiography"):
        assert words in escalation["detail"]
    assert "`Observation/spo2-1`" in escalation["detail"]  # every value names its record
    reversal = topics["antithrombotic-reversal"]
    assert reversal["indicator"] == "critical"
    assert "4F-PCC" in reversal["summary"] and "vitamin K" in reversal["summary"]
    assert "INR 3.1" in reversal["summary"]
    # Kcentra PI: INR 2-<4 -> 25 U/kg, 82 kg -> 2,050 U
    assert "2,050 U IV = 25 U/kg" in reversal["detail"]
    assert "10 mg IV" in reversal["detail"]
    assert "`MedicationStatement/warfarin-1`" in reversal["detail"]
    assert [card["indicator"] for card in cards] == sorted(
        (card["indicator"] for card in cards), key=["critical", "warning", "info"].index)
    for card in cards:
        assert len(card["summary"]) < 140 and card["source"]["label"] and card["uuid"]


def _register_fhir_server(resources: list[dict]) -> None:
    """Answer the service's own prefetch queries the way a FHIR server would."""
    prefetch = f.split_prefetch(resources)
    patient = prefetch.pop("patient")
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=patient, status=200)
    paths = {"conditions": "Condition", "vitals": "Observation", "labs": "Observation",
             "medicationStatements": "MedicationStatement", "medicationRequests": "MedicationRequest",
             "medicationAdministrations": "MedicationAdministration", "procedures": "Procedure",
             "diagnosticReports": "DiagnosticReport", "imagingStudies": "ImagingStudy",
             "questionnaireResponses": "QuestionnaireResponse", "deviceUseStatements": "DeviceUseStatement",
             "deviceRequests": "DeviceRequest"}
    for key, resource_type in paths.items():
        bundle = prefetch[key]
        if key in ("vitals", "labs"):
            wanted = "59408-5" if key == "vitals" else "718-7"
            responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}",
                          match=[_code_param_contains(wanted)], json=bundle, status=200)
        else:
            responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=bundle, status=200)


def _code_param_contains(code: str):
    def match(request):
        return (code in (request.params or {}).get("code", ""), f"code param lacks {code}")
    return match


@responses.activate
def test_same_cards_when_the_service_fetches_from_fhir_server(client):
    resources = massive_on_warfarin()
    with_prefetch = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    _register_fhir_server(resources)
    request = f.patient_view_request(resources, with_prefetch=False, fhir_server=FHIR_BASE, access_token="secret-token-1")
    response = client.post(URL, json=request)
    assert response.status_code == 200, response.json
    fetched = response.json["cards"]
    assert [(c["indicator"], c["summary"]) for c in fetched] == [(c["indicator"], c["summary"]) for c in with_prefetch]
    from hooks.massive_hemoptysis.prefetch import PREFETCH
    assert len(responses.calls) == len(PREFETCH)
    for call in responses.calls:
        assert call.request.headers["Authorization"] == "Bearer secret-token-1"


def test_no_hemoptysis_gets_no_card(client):
    resources = [r for r in massive_on_warfarin() if r["resourceType"] != "Condition"]
    response = client.post(URL, json=f.patient_view_request(resources))
    assert response.status_code == 200
    assert response.json == {"cards": []}


def test_non_massive_gets_first_line_card_and_hold_reversal(client):
    resources = [f.patient(), f.hemoptysis(), f.spo2(97), f.respiratory_rate(16), f.heart_rate(80),
                 f.blood_pressure(132, 80), f.medication_statement("1191", "aspirin")]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    topics = by_topic(cards)
    assert "massive-hemoptysis-escalation" not in topics
    first_line = topics["hemoptysis-first-line"]
    assert first_line["indicator"] == "warning"
    assert "CT angiography" in first_line["summary"]
    assert topics["antithrombotic-reversal"]["indicator"] == "warning"
    assert "desmopressin" in topics["antithrombotic-reversal"]["summary"]


def test_hemoptysis_without_vitals_says_what_to_obtain(client):
    resources = [f.patient(), f.hemoptysis()]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["hemoptysis-missing-physiology"]
    assert "not excluded" in cards[0]["summary"] and cards[0]["summary"].startswith("Obtain SpO2, RR and BP")
    assert "Missing from the record (obtain): SpO2, Respiratory rate, Heart rate, Systolic BP" in cards[0]["detail"]


def test_hypotension_alone_is_massive(client):
    resources = [f.patient(), f.hemoptysis(), f.spo2(95), f.blood_pressure(84, 50)]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert cards[0]["indicator"] == "critical"
    assert "Systolic BP 84 mmHg" in cards[0]["summary"]


def test_entered_in_error_records_never_count(client):
    resources = [f.patient(), f.hemoptysis(verification="entered-in-error"), f.spo2(86)]
    assert client.post(URL, json=f.patient_view_request(resources)).json["cards"] == []
    resources = [f.patient(), f.hemoptysis(), f.spo2(84, status="entered-in-error", when=f.ago(minutes=1)),
                 f.spo2(97, when=f.ago(minutes=30), obs_id="good-spo2"), f.respiratory_rate(16), f.blood_pressure(120, 80)]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert cards[0]["indicator"] == "warning"
    assert "`Observation/good-spo2`" in cards[0]["detail"]


def test_newest_valid_value_wins_and_implausible_value_is_named(client):
    resources = [f.patient(), f.hemoptysis(), f.spo2(97, when=f.ago(hours=5)), f.spo2(88, when=f.ago(hours=1), obs_id="newest"),
                 f.spo2(9, when=f.ago(minutes=5), obs_id="typo")]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert "SpO2 88 %" in cards[0]["summary"]
    assert "`Observation/typo`: SpO2 9 % is outside the plausible range 50-100" in cards[0]["detail"]


def test_units_are_converted(client):
    fraction = f.observation("2708-6", 0.86, "1", display="Oxygen saturation")
    resources = [f.patient(), f.hemoptysis(), fraction, f.hemoglobin(112, unit="g/L")]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert "SpO2 86 %" in cards[0]["summary"]
    assert "11.2 g/dL (sent as 112 g/L)" in cards[0]["detail"]


def test_invalid_resource_is_skipped_and_reported(client):
    broken = f.spo2(80, obs_id="broken")
    broken["subject"] = "Patient/pat-1"  # a string where FHIR wants a Reference
    resources = [f.patient(), f.hemoptysis(), broken, f.spo2(95, when=f.ago(hours=2)), f.blood_pressure(125, 80)]
    response = client.post(URL, json=f.patient_view_request(resources))
    assert response.status_code == 200
    card = response.json["cards"][0]
    assert card["indicator"] == "warning"
    assert "`Observation/broken`: not a valid FHIR record (field subject" in card["detail"]


def test_product_rxcui_and_atc_map_to_their_ingredient(client):
    resources = [f.patient(), f.hemoptysis(), f.spo2(85),
                 f.medication_request("B01AF02", "Eliquis 5 mg", system="http://www.whocc.no/atc"),
                 f.medication_request("309362", "Clopidogrel 75 MG Oral Tablet")]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    reversal = [c for c in cards if c["source"]["topic"]["code"] == "antithrombotic-reversal"]
    assert len(reversal) == 1  # one patient, one reversal plan (issue 14)
    assert reversal[0]["summary"].startswith("Reverse apixaban + clopidogrel now")


def test_stopped_and_do_not_perform_orders_do_not_count(client):
    stopped = f.medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet", status="stopped")
    refused = f.medication_request("1191", "aspirin")
    refused["doNotPerform"] = True
    resources = [f.patient(), f.hemoptysis(), f.spo2(97), stopped, refused]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    assert all(c["source"]["topic"]["code"] != "antithrombotic-reversal" for c in cards)


def test_sibling_engine_links(client):
    resources = [f.patient(), f.hemoptysis(), f.spo2(97), f.condition("154283005", "Pulmonary tuberculosis"),
                 f.condition("A15.0", "Tuberculosis of lung", system=f.ICD10CM),
                 f.condition("195353004", "Wegener's granulomatosis")]
    cards = client.post(URL, json=f.patient_view_request(resources)).json["cards"]
    links_card = by_topic(cards)["sibling-engines"]
    urls = [link["url"] for link in links_card["links"]]
    assert "https://cds.example.org/engines/pulm.tuberculosis.v1" in urls
    assert all(link["type"] == "absolute" for link in links_card["links"])
    assert "the dossier names no sibling engine" in links_card["detail"]
    engine_page = client.get("/engines/pulm.tuberculosis.v1", headers={"Accept": "application/json"})
    assert engine_page.status_code == 200 and engine_page.json["id"] == "pulm.tuberculosis.v1"


def test_null_prefetch_means_nothing_found_and_is_not_fetched(client):
    request = f.patient_view_request([f.patient(), f.hemoptysis()], fhir_server=FHIR_BASE)
    for key in ("vitals", "labs", "medicationStatements", "medicationRequests"):
        request["prefetch"][key] = None
    with responses.RequestsMock() as mock:  # any outgoing call would fail this test
        response = client.post(URL, json=request)
        assert len(mock.calls) == 0
    assert response.status_code == 200
    assert "not excluded" in response.json["cards"][0]["summary"]


def test_operation_outcome_in_prefetch_is_reported(client):
    request = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(96)])
    request["prefetch"]["labs"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "lab system timed out"}]}
    cards = client.post(URL, json=request).json["cards"]
    assert "prefetch 'labs' failed at the client: lab system timed out" in cards[0]["detail"]


def test_missing_required_prefetch_without_fhir_server_is_412(client):
    request = f.patient_view_request([f.patient(), f.hemoptysis()])
    del request["prefetch"]["conditions"]  # required (hooks/massive_hemoptysis/prefetch.py); labs is optional
    response = client.post(URL, json=request)
    assert response.status_code == 412
    assert "conditions" in response.json["issue"][0]["diagnostics"]


def test_fhir_server_not_allowed_is_refused_without_a_call(client):
    request = f.patient_view_request([], with_prefetch=False, fhir_server="https://attacker.example.net/fhir",
                                     access_token="tok")
    with responses.RequestsMock() as mock:
        response = client.post(URL, json=request)
        assert len(mock.calls) == 0
    assert response.status_code == 403


@responses.activate
def test_fhir_server_failure_is_412(client):
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", status=503)
    for resource_type in ("Condition", "Observation", *OTHER_SEARCHED):
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    request = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="tok")
    response = client.post(URL, json=request)
    assert response.status_code == 412
    assert "HTTP 503" in response.json["issue"][0]["diagnostics"]
    assert "tok" not in json.dumps(response.json)


@responses.activate
def test_fhir_redirect_is_not_followed(client):
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", status=302,
                  headers={"Location": "https://elsewhere.example.net/Patient/pat-1"})
    for resource_type in ("Condition", "Observation", *OTHER_SEARCHED):
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    request = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="tok")
    response = client.post(URL, json=request)
    assert response.status_code == 412
    assert "redirect" in response.json["issue"][0]["diagnostics"]
    assert all("elsewhere" not in call.request.url for call in responses.calls)


@responses.activate
def test_fhir_search_pages_are_followed_up_to_the_bound(client, settings):
    observations = [f.spo2(97, when=f.ago(hours=3)), f.spo2(85, when=f.ago(minutes=10), obs_id="page-2-spo2")]
    page_1 = f.searchset([observations[0]])
    page_1["link"] = [{"relation": "next", "url": f"{FHIR_BASE}/Observation?page=2"}]
    page_2 = f.searchset([observations[1]])
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=f.patient())
    responses.add(responses.GET, f"{FHIR_BASE}/Condition", json=f.searchset([f.hemoptysis()]))
    responses.add(responses.GET, f"{FHIR_BASE}/Observation",
                  match=[responses.matchers.query_param_matcher({"page": "2"})], json=page_2)
    responses.add(responses.GET, f"{FHIR_BASE}/Observation", json=page_1)
    for resource_type in OTHER_SEARCHED:
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    request = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE)
    response = client.post(URL, json=request)
    assert response.status_code == 200, response.json
    assert "SpO2 85 %" in response.json["cards"][0]["summary"]


@pytest.mark.parametrize("hook_instance", ["abc", "0e2c3c1e-8d5b-4a1c-9a7e-2f0c1b9d8e7f"])
def test_issued_cards_are_recorded(client, app, hook_instance):
    request = f.patient_view_request(massive_on_warfarin())
    request["hookInstance"] = hook_instance
    cards = client.post(URL, json=request).json["cards"]
    store = app.extensions["hemoptysis_cds"]["store"]
    from sqlalchemy import select
    from server.storage.schema import issued_cards
    with store.engine.connect() as connection:
        rows = connection.execute(select(issued_cards.c.card_uuid, issued_cards.c.hook_instance)).all()
    assert {row.card_uuid for row in rows} >= {card["uuid"] for card in cards}
    assert {row.hook_instance for row in rows} == {hook_instance}
