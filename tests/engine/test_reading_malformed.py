"""A malformed value anywhere is skipped and named, never a 500, and the other cards still come back (issue 11
item 8): the sites an attack run found, and a property-based test (hypothesis) that puts any JSON value at any
place of a realistic chart, bounded in examples and time."""
from __future__ import annotations

import copy
import gzip
import json

import pytest
import responses
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support import engine_factory as e
from tests.support import fhir_factory as f
from tests.conftest import FHIR_BASE

URL = "/cds-services/massive-hemoptysis"


def _chart() -> list[dict]:
    """Massive hemoptysis on warfarin (by medicationReference and contained Medication), with every kind of
    record the engine reads: vitals, BP panel, labs, administrations, reports, procedures, intake answers."""
    warfarin_by_reference = f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet", med_id="warfarin-1")
    concept = warfarin_by_reference.pop("medicationCodeableConcept")
    warfarin_by_reference["contained"] = [{"resourceType": "Medication", "id": "med", "code": concept}]
    warfarin_by_reference["medicationReference"] = {"reference": "#med"}
    return [f.patient(), f.hemoptysis(cond_id="hemoptysis-1"), f.condition("12295008", "Bronchiectasis"),
            f.spo2(86, obs_id="spo2-1"), f.respiratory_rate(28), f.heart_rate(118), f.blood_pressure(96, 60),
            f.inr(3.4), f.hemoglobin(9.1), f.weight(82), warfarin_by_reference,
            f.medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet"),
            e.administration("855332", "Warfarin Sodium 5 MG Oral Tablet", hours_ago=20, dose=5),
            e.report("CT angiography chest", "Right upper lobe bronchial artery hypertrophy, active extravasation"),
            e.procedure("Bronchoscopy", outcome="bleeding from right upper lobe"),
            e.intake({"volume-single": 150}), e.type_and_screen()]


def _post(client, body) -> dict:
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, (response.status_code, response.json)
    return response.json


def _entry_resource(body: dict, key: str, index: int = 0) -> dict:
    return body["prefetch"][key]["entry"][index]["resource"]


def _by_id(body: dict, key: str, resource_id: str) -> dict:
    return next(entry["resource"] for entry in body["prefetch"][key]["entry"] if entry["resource"]["id"] == resource_id)


def _mutated(change) -> dict:
    body = f.patient_view_request(_chart())
    change(body)
    return body


@pytest.mark.parametrize("change, named", [
    (lambda body: body["prefetch"]["labs"].__setitem__("entry", 3), "prefetch 'labs' has an `entry` that is a JSON number"),
    (lambda body: _by_id(body, "vitals", "spo2-1").__setitem__("status", ["final"]), "status 'list' is not a result"),
    (lambda body: next(entry["resource"] for entry in body["prefetch"]["vitals"]["entry"]
                       if entry["resource"]["id"].startswith("bp-")).__setitem__("component", 7), None),
    (lambda body: _entry_resource(body, "medicationStatements").__setitem__("medicationReference", "#med"), None),
    (lambda body: _entry_resource(body, "questionnaireResponses").__setitem__("item", 5), None),
    (lambda body: _entry_resource(body, "diagnosticReports").__setitem__("note", 5), None),
    # a key holding a resource of another type than its template asks for is named, not read as something else
    (lambda body: body["prefetch"].__setitem__("questionnaireResponses", {"resourceType": "Banana", "id": "b"}),
     "prefetch 'questionnaireResponses' holds a Banana, not a Bundle of QuestionnaireResponse as its template asks"),
    (lambda body: body["prefetch"].__setitem__("procedures", {"resourceType": "Patient", "id": "pat-1"}),
     "prefetch 'procedures' holds a Patient, not a Bundle of Procedure as its template asks"),
], ids=["entry an int", "status a list", "component an int", "medicationReference a string", "item an int",
        "note an int", "a Banana for a search", "a Patient for a search"])
def test_a_malformed_member_is_skipped_and_the_other_cards_come_back(client, change, named):
    cards = _post(client, _mutated(change))["cards"]
    assert any(card["indicator"] == "critical" for card in cards), [card["summary"] for card in cards]
    if named:
        assert named in json.dumps(cards)


def test_deep_extension_nesting_is_rejected_not_a_recursion_error(client):
    extension: dict = {"url": "http://example.org/x", "valueString": "deepest"}
    for _ in range(400):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    body = f.patient_view_request(_chart())
    _by_id(body, "vitals", "spo2-1")["extension"] = [extension]
    cards = _post(client, body)["cards"]
    assert "`Observation/spo2-1`: not valid FHIR JSON (nested deeper than 32 levels" in json.dumps(cards)


@responses.activate
def test_a_seven_deep_content_encoding_chain_is_named_not_a_500(client):
    payload = json.dumps(f.searchset([f.spo2(84)])).encode()
    for _ in range(7):
        payload = gzip.compress(payload)
    responses.add(responses.GET, f"{FHIR_BASE}/Observation", body=payload,
                  headers={"Content-Encoding": ", ".join(["gzip"] * 7), "Content-Type": "application/fhir+json"})
    body = f.patient_view_request(_chart(), fhir_server=FHIR_BASE)
    del body["prefetch"]["vitals"]  # an optional key: the key is named, the other cards still come back
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert response.json["cards"]
    assert "'vitals' could not be fetched (the FHIR server's answer could not be read (DecodeError))" in json.dumps(response.json)


# ------------------------------------------------------------------------------------------ property-based

_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.sampled_from(["final", "active", "86", "%", "59408-5", "Patient/pat-1"]))
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.sampled_from(["coding", "code", "value", "system", "reference", "text", "status", "entry"]),
                                                                        inner, max_size=3)), max_leaves=8)
_BASE = f.patient_view_request(_chart())


def _places(value, path=()):
    """Every (container, key) inside the prefetch resources: where a mutation may land."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,)
            yield from _places(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield path + (index,)
            yield from _places(item, path + (index,))


_PLACES = [place for place in _places(_BASE["prefetch"]) if len(place) >= 2]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(place=st.sampled_from(_PLACES), value=_VALUES, drop=st.booleans())
def test_any_json_value_anywhere_in_fhir_content_never_gives_a_500(client, place, value, drop):
    body = copy.deepcopy(_BASE)
    holder = body["prefetch"]
    for step in place[:-1]:
        holder = holder[step]
    if drop and isinstance(holder, dict):
        del holder[place[-1]]
    else:
        holder[place[-1]] = value
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 400), (place, value, response.json)
    if response.status_code == 200 and place[0] not in ("conditions", "patient"):
        # the hemoptysis record and the patient untouched: its cards still come back (an escalation, or the card
        # saying what is missing when the mutation took the vitals away)
        assert response.json["cards"], (place, value)


_ORDER_BASE = f.order_sign_request([f.patient(), f.hemoptysis()],
                                   [f.draft_medication_request("855332", "Warfarin Sodium 5 MG Oral Tablet")])
_ORDER_PLACES = [("context", "draftOrders", *place) for place in _places(_ORDER_BASE["context"]["draftOrders"])
                 if len(place) >= 2]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(place=st.sampled_from(_ORDER_PLACES), value=_VALUES)
def test_any_json_value_anywhere_in_draft_orders_never_gives_a_500(client, place, value):
    body = copy.deepcopy(_ORDER_BASE)
    holder = body
    for step in place[:-1]:
        holder = holder[step]
    holder[place[-1]] = value
    response = client.post("/cds-services/hemoptysis-order-safety", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code in (200, 400), (place, value, response.json)


def test_a_patient_key_of_another_type_is_named_and_the_age_asked_for(client):
    body = f.patient_view_request(_chart())
    body["prefetch"]["patient"] = {"resourceType": "Observation", "id": "o-9", "status": "final",
                                   "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                                   "subject": {"reference": "Patient/pat-1"}, "valueQuantity": {"value": 99, "unit": "%"}}
    cards = _post(client, body)["cards"]
    text = json.dumps(cards)
    assert "prefetch 'patient' holds an Observation, not a Patient as its template asks" in text
    assert "Age not on record" in text and "o-9" not in text  # the stray record is not read as a vital sign
    assert any(card["indicator"] == "critical" for card in cards)


def test_a_condition_code_that_cannot_be_read_is_named_and_the_others_are_read(client, monkeypatch):
    # Condition codes are classified once per distinct code (readers/conditions.py): a code whose reading raises
    # is named as malformed for its record, and the hemoptysis Condition is still read
    from cql_equivalents.readers import conditions
    real = conditions.condition_concept

    def trips_on_bronchiectasis(concept):
        if "12295008" in json.dumps(concept):
            raise TypeError("a code the reader cannot read")
        return real(concept)

    monkeypatch.setattr(conditions, "condition_concept", trips_on_bronchiectasis)
    monkeypatch.setattr(conditions, "_CONDITION_CONCEPTS", conditions.CodeMemo("condition concept (test)"))
    cards = _post(client, f.patient_view_request(_chart()))["cards"]
    assert any(card["indicator"] == "critical" for card in cards)
    text = json.dumps(cards)
    assert "malformed FHIR (TypeError while reading it)" in text and "hemoptysis-1" in text
