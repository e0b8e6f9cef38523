"""What the fast path must not lose: the JSON it accepts and refuses, and the selection of resources before
validation (malformed codes are passed over, never a 500; unread codes never reach a model)."""
from __future__ import annotations

import json

from cql_equivalents.fhir_select import pool_from_values
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def _request(resources: list[dict]) -> dict:
    return f.patient_view_request(resources)


def test_a_body_starting_with_a_utf8_bom_is_read(client):
    raw = b"\xef\xbb\xbf" + json.dumps(_request([f.patient(), f.hemoptysis(), f.spo2(86)])).encode()
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 200, response.json
    assert any(card["indicator"] == "critical" for card in response.json["cards"])


def test_nan_is_not_json(client):
    raw = json.dumps(_request([f.patient(), f.hemoptysis(), f.spo2(86)])).replace("86", "NaN").encode()
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON (line 1" in response.json["issue"][0]["diagnostics"]


def test_malformed_codes_are_passed_over_not_a_500(client):
    broken = [
        {**f.hemoglobin(6.1), "code": {"coding": {"system": f.LOINC, "code": "718-7"}}},  # coding not a list
        {**f.hemoglobin(6.2), "code": {"coding": [{"system": f.LOINC, "code": ["718-7"]}]}},  # code not a string
        {**f.hemoglobin(6.3), "code": "718-7"},  # CodeableConcept not an object
        {**f.hemoglobin(6.4), "code": {"coding": ["718-7", None, 3]}},
    ]
    body = _request([f.patient(), f.hemoptysis(), f.spo2(86)])
    body["prefetch"]["labs"]["entry"] += [{"resource": resource, "search": {"mode": "match"}} for resource in broken]
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.json
    # none of them was read as a hemoglobin (a valid one shows as "Hemoglobin | 6.1 g/dL | ..." in the values)
    assert "Hemoglobin | 6." not in json.dumps(response.json)


def test_a_valid_hemoglobin_among_them_is_read(client):
    body = _request([f.patient(), f.hemoptysis(), f.spo2(86), f.hemoglobin(6.1)])
    body["prefetch"]["labs"]["entry"].append(
        {"resource": {**f.hemoglobin(6.2), "code": {"coding": {"system": f.LOINC}}}, "search": {"mode": "match"}})
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200 and "Hemoglobin | 6.1 g/dL" in json.dumps(response.json)


def test_selection_yields_only_wanted_codes_and_keeps_every_wanted_coding():
    two_codes = f.spo2(91)
    two_codes["code"]["coding"].append({"system": f.LOINC, "code": "2708-6"})
    temperature = f.observation("8310-5", 37.2, "Cel", display="Body temperature")
    pool = pool_from_values({"vitals": f.searchset([two_codes, temperature, f.heart_rate(80)])})
    selected = list(pool.coded("Observation", f.LOINC, frozenset({"59408-5", "2708-6"})))
    assert [(resource["id"], codes) for resource, codes in selected] == [(two_codes["id"], ["59408-5", "2708-6"])]
    assert len(pool.of("Observation")) == 3  # the pool keeps everything; selection only narrows what is read


def test_operation_outcome_in_place_of_data_is_a_problem_not_a_resource():
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout",
                                                              "diagnostics": "search timed out"}]}
    bundle = f.searchset([f.spo2(90)])
    bundle["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    pool = pool_from_values({"vitals": bundle, "labs": outcome, "conditions": None})
    assert len(pool.of("Observation")) == 1 and not pool.of("OperationOutcome")
    assert pool.problems == ["prefetch 'vitals' failed at the client: search timed out",
                             "prefetch 'labs' failed at the client: search timed out"]


def test_classification_runs_once_per_distinct_code_and_keeps_chart_order():
    first, second, third = f.spo2(91), f.spo2(88), f.spo2(86)
    heart, broken = f.heart_rate(80), {**f.spo2(70), "code": {"coding": ["59408-5"]}}
    pool = pool_from_values({"vitals": f.searchset([first, heart, second, broken, third])})
    seen: list[str] = []

    def classify(resource: dict) -> str:
        seen.append(resource["id"])
        return resource["code"]["coding"][0] if resource is broken else resource["code"]["coding"][0]["code"]

    results = list(pool.matching("Observation", classify))
    assert [resource["id"] for resource, _ in results] == [r["id"] for r in (first, heart, second, broken, third)]
    assert [result for _, result in results] == ["59408-5", "8867-4", "59408-5", "59408-5", "59408-5"]
    # one call per distinct code; the malformed code is classified on its own
    assert seen == [first["id"], heart["id"], broken["id"]]


def test_a_resource_carrying_another_key_the_classifier_reads_is_classified_alone():
    plain, described = f.spo2(91), {**f.spo2(90), "description": "bronchoscopy"}
    pool = pool_from_values({"vitals": f.searchset([plain, described])})
    results = list(pool.matching("Observation", lambda resource: resource.get("description", "-"),
                                   also_reads=("description",)))
    assert [result for _, result in results] == ["-", "bronchoscopy"]


def test_a_subject_already_seen_as_this_patients_is_not_judged_again_but_nothing_else_is_let_through():
    """The pool's fast path (fhir_select.ResourcePool.add): after one record shows `Patient/pat-1` is this patient,
    later records with that subject are kept without a second look; a Patient resource with another id (even one
    carrying that subject member) and records naming anyone else are still left out and named."""
    from cql_equivalents.fhir_select import pool_from_values
    own = [f.spo2(86 + index) for index in range(3)]
    other = {**f.spo2(70), "subject": {"reference": "Patient/someone-else"}}
    odd_patient = {**f.patient("intruder"), "subject": {"reference": "Patient/pat-1"}}
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": r} for r in (own[0], other, own[1], odd_patient, own[2])]}
    pool = pool_from_values({"vitals": bundle}, patient_id="pat-1")
    assert [r["id"] for r in pool.of("Observation")] == [r["id"] for r in own]
    assert pool.foreign_patients == ["Patient/intruder"]
    assert any("someone-else" not in problem and other["id"] in problem for problem in pool.problems)
