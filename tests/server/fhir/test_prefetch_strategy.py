"""Each prefetch key declares what happens when its data cannot be had (issue 11 item 2): a required key gives a
412 naming the key, the FHIR server's status and a fitting issue type; an optional key is named on the cards,
which are still made."""
from __future__ import annotations

import pytest
import responses

from hooks import SERVICES
from hooks.prefetch_keys import OPTIONAL, REQUIRED, strategy_of
from tests.support import fhir_factory as f
from tests.conftest import FHIR_BASE
from tests.hooks.test_patient_view import URL, by_topic, massive_on_warfarin

SERVED = ("Condition", "Observation", "MedicationStatement", "MedicationRequest", "MedicationAdministration",
          "Procedure", "DiagnosticReport")


def _server(resources: list[dict], failing: dict[str, int]) -> None:
    """A FHIR server holding `resources`, answering `failing` resource types with an HTTP error status."""
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=f.patient())
    for resource_type in (*SERVED, "ImagingStudy", "QuestionnaireResponse"):
        if resource_type in failing:
            responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", status=failing[resource_type], json={
                "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported"}]})
        else:
            responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset(by_type.get(resource_type, [])))


def _fetching_request() -> dict:
    return f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="tok")


def test_every_prefetch_key_declares_its_strategy_next_to_its_template():
    for service in SERVICES.values():
        for key, template in service.prefetch.items():
            assert strategy_of(template) in (REQUIRED, OPTIONAL), key
            assert type(service.discovery()["prefetch"][key]) in (str, type(template)) and str(template).count("{{")
    declared = SERVICES["massive-hemoptysis"].prefetch
    assert strategy_of(declared["patient"]) == REQUIRED and strategy_of(declared["imagingStudies"]) == OPTIONAL


@responses.activate
def test_a_server_without_imaging_and_questionnaires_still_gets_the_massive_cards_with_a_note(client):
    resources = [r for r in massive_on_warfarin() if r["resourceType"] != "Patient"]
    _server(resources, {"ImagingStudy": 400, "QuestionnaireResponse": 404})
    response = client.post(URL, json=_fetching_request())
    assert response.status_code == 200, response.json
    topics = by_topic(response.json["cards"])
    escalation = topics["massive-hemoptysis-escalation"]
    assert escalation["indicator"] == "critical" and "antithrombotic-reversal" in topics
    assert "imaging studies (localisation): prefetch 'imagingStudies' could not be fetched (the FHIR server " \
           "answered HTTP 400)" in escalation["detail"]
    assert "prefetch 'questionnaireResponses' could not be fetched" in escalation["detail"]


@pytest.mark.parametrize("status,code", [(400, "not-supported"), (422, "not-supported"), (503, "transient"),
                                         (403, "security"), (429, "throttled")])
@responses.activate
def test_a_required_key_that_fails_is_412_naming_it_with_the_server_status_and_a_fitting_code(client, status, code):
    _server([], {"Condition": status})
    response = client.post(URL, json=_fetching_request())
    assert response.status_code == 412
    top = response.json["issue"][0]
    assert top["code"] == code and top["code"] != "not-found"
    assert "conditions" in top["diagnostics"] and str(status) in top["diagnostics"]
    assert response.json["issue"][1]["expression"] == ["prefetch.conditions"]
    assert "tok" not in str(response.json)


def test_a_required_key_the_client_answered_with_an_operation_outcome_is_412(client):
    request = f.patient_view_request(massive_on_warfarin())
    request["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "condition search timed out"}]}
    response = client.post(URL, json=request)
    assert response.status_code == 412 and response.json["issue"][0]["code"] == "incomplete"
    assert "conditions" in response.json["issue"][0]["diagnostics"]


def test_an_optional_key_not_sent_without_fhir_server_is_named_on_the_cards(client):
    request = f.patient_view_request(massive_on_warfarin())
    del request["prefetch"]["imagingStudies"]
    response = client.post(URL, json=request)
    assert response.status_code == 200
    escalation = by_topic(response.json["cards"])["massive-hemoptysis-escalation"]
    assert "prefetch 'imagingStudies' was not sent and there is no fhirServer to fetch it from" in escalation["detail"]
