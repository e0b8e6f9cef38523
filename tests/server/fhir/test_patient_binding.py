"""Another patient's records never become this patient's cards (issue 11 item 1): resources whose subject /
patient is not context.patientId are left out and named; a Patient resource with another id is a 412."""
from __future__ import annotations

import json

import responses

from cql_equivalents.patient_binding import foreign_reason, referenced_patient
from tests.support import fhir_factory as f
from tests.conftest import FHIR_BASE
from tests.hooks.test_patient_view import OTHER_SEARCHED, URL, by_topic, massive_on_warfarin


def test_another_patients_condition_and_spo2_give_no_critical_card_and_are_named(client):
    resources = [f.patient(), f.hemoptysis(patient_id="someone-else", cond_id="their-hemoptysis"),
                 f.spo2(84, patient_id="someone-else", obs_id="their-spo2"), f.spo2(97, obs_id="own-spo2"),
                 f.inr(3.4, patient_id="someone-else"), f.weight(80),
                 f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet", patient_id="someone-else")]
    response = client.post(URL, json=f.patient_view_request(resources, search_ignores=("patient",)))
    assert response.status_code == 200, response.json
    cards = response.json["cards"]
    assert all(card["indicator"] != "critical" for card in cards)
    assert "antithrombotic-reversal" not in by_topic(cards)
    assert "someone-else" not in json.dumps(cards)  # the other patient's id is not shown to this patient's clinician


def test_another_patients_records_are_named_on_the_cards_of_this_patient(client):
    resources = [*massive_on_warfarin(), f.spo2(70, patient_id="someone-else", obs_id="their-spo2")]
    response = client.post(URL, json=f.patient_view_request(resources, search_ignores=("patient",)))
    cards = response.json["cards"]
    escalation = by_topic(cards)["massive-hemoptysis-escalation"]
    assert "`Observation/their-spo2`: its subject is another patient; not used for this patient" in escalation["detail"]
    assert "SpO2 86 %" in escalation["summary"]  # this patient's own value, not the other's 70 %


def test_a_patient_resource_with_another_id_is_412_naming_it(client):
    request = f.patient_view_request(massive_on_warfarin())
    request["prefetch"]["conditions"]["entry"].append({"resource": f.patient("intruder")})
    response = client.post(URL, json=request)
    assert response.status_code == 412
    assert response.json["issue"][0]["code"] == "conflict"
    assert "Patient/intruder" in response.json["issue"][0]["diagnostics"]


def test_the_patient_key_holding_another_patient_is_412(client):
    request = f.patient_view_request(massive_on_warfarin())
    request["prefetch"]["patient"] = f.patient("p2")
    assert client.post(URL, json=request).status_code == 412


@responses.activate
def test_a_fhir_server_that_ignores_the_patient_parameter_cannot_put_others_data_on_the_cards(client):
    everybody = [f.hemoptysis(patient_id="p9"), f.spo2(80, patient_id="p9"), f.respiratory_rate(30, patient_id="p9")]
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=f.patient())
    responses.add(responses.GET, f"{FHIR_BASE}/Condition", json=f.searchset(everybody[:1]))
    responses.add(responses.GET, f"{FHIR_BASE}/Observation", json=f.searchset(everybody[1:]))
    for resource_type in OTHER_SEARCHED:
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    request = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE)
    response = client.post(URL, json=request)
    assert response.status_code == 200, response.json
    assert response.json["cards"] == []  # no hemoptysis of this patient's own: nothing to say


def test_references_that_cannot_be_tied_to_the_patient_are_not_used():
    assert referenced_patient("Patient/p1") == "p1"
    assert referenced_patient("https://ehr.example.org/fhir/Patient/p1/_history/3") == "p1"
    assert referenced_patient("Group/p1") is None
    spo2 = f.spo2(90, patient_id="p1")
    assert foreign_reason(spo2, "p1") is None
    for subject, words in (({"reference": "Group/ward-3"}, "a Group"), ({"reference": "#contained"}, "contained"),
                           ({"identifier": {"value": "MRN-1"}}, "cannot be tied"),
                           ({"reference": "urn:uuid:1234"}, "urn")):
        assert words in foreign_reason({**spo2, "subject": subject}, "p1")
    assert foreign_reason({**spo2, "subject": "Patient/p1"}, "p1") is None  # not a Reference: validation names it
    assert foreign_reason({"resourceType": "Medication", "id": "m1"}, "p1") is None  # about no patient


def test_a_clinical_record_naming_no_patient_is_not_used_and_is_named(client):
    resources = massive_on_warfarin()
    orphan = f.spo2(70, obs_id="orphan-spo2")
    del orphan["subject"]  # Observation.subject is 0..1: a server ignoring ?patient= can return such records
    response = client.post(URL, json=f.patient_view_request([*resources, orphan], search_ignores=("patient",)))
    escalation = by_topic(response.json["cards"])["massive-hemoptysis-escalation"]
    assert "`Observation/orphan-spo2`: it names no patient (no subject)" in escalation["detail"]
    assert "SpO2 86 %" in escalation["summary"]  # this patient's own value, not the orphan's 70 %


def test_a_patient_resource_without_an_id_is_invalid_not_another_patient():
    assert foreign_reason({"resourceType": "Patient"}, "pat-1") is None
    assert foreign_reason({"resourceType": "Medication", "id": "m1"}, "pat-1") is None  # about no patient
    assert foreign_reason({"resourceType": "Condition", "id": "c1"}, "pat-1").startswith("it names no patient")
