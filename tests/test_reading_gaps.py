"""Nothing sent is dropped without a word (issue 11 item 3): a search cut short by paging, a prefetch key of the
wrong shape and a rejected bleeding record are named on the cards (or in a response-level note when there is no
card); "missing from the record" is said only when nothing was sent."""
from __future__ import annotations

import json

import responses

from server.http.response_notes import EXTENSION
from tests import fhir_factory as f
from tests.conftest import FHIR_BASE

URL = "/cds-services/massive-hemoptysis"


def _post(client, body):
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.json
    return response.json


def _massive() -> list[dict]:
    return [f.patient(), f.hemoptysis(), f.spo2(86), f.respiratory_rate(28), f.heart_rate(118),
            f.blood_pressure(96, 60)]


@responses.activate
def test_a_search_cut_short_by_paging_is_named_on_every_card(client):
    """A warfarin record on page 6 of 6 is never read: every card must say the medication search was cut short."""
    body = f.patient_view_request(_massive())
    del body["prefetch"]["medicationStatements"]
    body["fhirServer"] = FHIR_BASE
    for page in range(1, 7):
        bundle = f.searchset([f.medication_statement("314076", "lisinopril 10 MG Oral Tablet")])
        if page < 6:
            bundle["link"] = [{"relation": "next", "url": f"{FHIR_BASE}/MedicationStatement?page={page + 1}"}]
        url = f"{FHIR_BASE}/MedicationStatement" if page == 1 else f"{FHIR_BASE}/MedicationStatement?page={page}"
        responses.add(responses.GET, url, json=bundle, match=[responses.matchers.query_param_matcher(
            {"page": str(page)} if page > 1 else {"patient": "pat-1", "_include": "MedicationStatement:medication"})])
    cards = _post(client, body)["cards"]
    assert cards
    for card in cards:
        assert "search 'medicationStatements' was cut short (only the first 5 pages were read)" in card["detail"], card["summary"]


def test_a_truncation_tag_sent_in_prefetch_is_named_too(client):
    body = f.patient_view_request(_massive())
    body["prefetch"]["medicationRequests"]["meta"] = {"tag": [{"system": "urn:hemoptysis-cds", "code": "truncated",
                                                              "display": "only the first 2 pages were read"}]}
    cards = _post(client, body)["cards"]
    assert all("search 'medicationRequests' was cut short" in card["detail"] for card in cards)


def test_a_prefetch_key_whose_entry_is_an_object_is_unusable_not_absent(client):
    """`entry` an object used to read as "no SpO2 on record" though one was sent."""
    body = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])
    vitals = body["prefetch"]["vitals"]
    vitals["entry"] = vitals["entry"][0]
    cards = _post(client, body)["cards"]
    text = json.dumps(cards)
    assert "prefetch 'vitals' has an `entry` that is a JSON object, not a list" in text
    severity = cards[0]["detail"]
    assert "Missing from the record (obtain)" not in severity
    assert "Not known: prefetch 'vitals' could not be read, so these may be on record" in severity


def test_a_rejected_spo2_is_sent_but_not_usable_not_missing(client):
    body = f.patient_view_request([f.patient(), f.hemoptysis(), {**f.spo2(86), "subject": None},
                                   f.respiratory_rate(18), f.heart_rate(80), f.blood_pressure(130, 80)])
    severity = _post(client, body)["cards"][0]["detail"]
    assert "Sent but not usable (see Records not used; obtain a valid value): SpO2" in severity
    missing = [part for part in severity.split(". ") if "Missing from the record" in part]
    assert all("SpO2" not in line for line in missing)


def test_the_only_hemoptysis_condition_failing_validation_is_not_an_empty_answer(client):
    broken = {**f.hemoptysis(cond_id="hemoptysis-1"), "onsetDateTime": "yesterday"}
    answer = _post(client, f.patient_view_request([f.patient(), broken, f.spo2(86)]))
    assert answer["cards"], "an unreadable hemoptysis record must not look like a patient who never bled"
    card = answer["cards"][0]
    assert card["summary"].startswith("Check the hemoptysis record: it cannot be read")
    assert "`Condition/hemoptysis-1`: not a valid FHIR record (field onsetDateTime" in card["detail"]


def test_no_card_but_a_key_not_read_gives_a_response_level_note(client):
    body = f.patient_view_request([f.patient(), f.spo2(96)])
    body["prefetch"]["conditions"]["entry"] = 7
    answer = _post(client, body)
    assert answer["cards"] == []
    notes = answer["extension"][EXTENSION]["notes"]
    assert any("prefetch 'conditions' has an `entry` that is a JSON number, not a list" in note for note in notes)


def test_nothing_sent_means_missing_and_no_note(client):
    answer = _post(client, f.patient_view_request([f.patient(), f.spo2(96)]))
    assert answer == {"cards": []}
    severity = _post(client, f.patient_view_request([f.patient(), f.hemoptysis()]))["cards"][0]["detail"]
    assert "Missing from the record (obtain): SpO2" in severity


def test_entries_without_a_resource_are_counted_and_named(client):
    body = f.patient_view_request(_massive())
    body["prefetch"]["labs"]["entry"] += [3, {"resource": "Observation"}, {"fullUrl": "urn:uuid:x"}]
    text = json.dumps(_post(client, body)["cards"])
    assert "prefetch 'labs': 3 entries without a FHIR resource (no resource object or no resourceType) skipped" in text
