"""Invalid FHIR is never used as valid (issue 11 item 4): what fhir.resources lets through (a number sent as a
string, null members, a long id) and what a JSON parser hides (repeated member names) is rejected and named,
and the next valid value is used instead."""
from __future__ import annotations

import json

import pytest

from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def _chart(newest_spo2: dict) -> list[dict]:
    """The newest SpO2 is the record under test; an older valid 96 % is there to fall back on."""
    return [f.patient(), f.hemoptysis(), newest_spo2, f.spo2(96, when=f.ago(minutes=50), obs_id="spo2-older"),
            f.respiratory_rate(18), f.heart_rate(80), f.blood_pressure(130, 80)]


def _severity_detail(client, body) -> str:
    response = client.post(URL, data=body if isinstance(body, bytes) else json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 200, response.json
    return response.json["cards"][0]["detail"]


def _spo2(**changes) -> dict:
    record = f.spo2(86, obs_id="spo2-newest", when=f.ago(minutes=5))
    record["valueQuantity"].update(changes.pop("quantity", {}))
    record.update(changes)
    return record


@pytest.mark.parametrize("record, named", [
    (_spo2(quantity={"value": "86"}), "SpO2 value is '86', not a JSON number"),
    (_spo2(quantity={"unit": None}), "valueQuantity.unit is null"),
    (_spo2(subject=None), "subject is null"),
    (_spo2(id="x" * 65), "id is not a FHIR id (1-64 letters"),
], ids=["value a JSON string", "unit null", "subject null", "id over 64 characters"])
def test_invalid_spo2_is_rejected_named_and_the_older_valid_value_used(client, record, named):
    detail = _severity_detail(client, f.patient_view_request(_chart(record), search_ignores=("patient",)))
    assert named in detail
    assert "| SpO2 | 96 % |" in detail and "`Observation/spo2-older`" in detail
    assert "SpO2 | 86" not in detail


def test_repeated_json_names_in_a_record_reject_it_at_parse_time(client):
    """`"value": 97, "value": 86`: one reader takes the last, another the first; neither is used."""
    body = json.dumps(f.patient_view_request(_chart(_spo2(quantity={"value": 12345}))))
    body = body.replace('"value": 12345', '"value": 97, "value": 86', 1)
    detail = _severity_detail(client, body.encode())
    assert ("`Observation/spo2-newest`: repeated JSON member names ('value' in "
            "$.prefetch.vitals.entry[0].resource.valueQuantity)") in detail
    assert "| SpO2 | 96 % |" in detail


def test_repeated_json_names_outside_any_resource_are_a_400_naming_them(client):
    body = json.dumps(f.patient_view_request(_chart(f.spo2(86))))
    body = body.replace('"patientId": "pat-1"', '"patientId": "pat-1", "patientId": "pat-2"', 1)
    response = client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert "'patientId' in $.context" in response.json["issue"][0]["diagnostics"]


def test_strings_that_merely_look_like_names_are_not_repeats(client):
    """A string holding a quote and a colon (what a member name ends with) is not a repeated name."""
    record = f.spo2(86, obs_id="spo2-noted")
    record["note"] = [{"text": 'patient said ":" twice'}]
    body = f.patient_view_request([f.patient(), f.hemoptysis(), record])
    detail = _severity_detail(client, body)
    assert "| SpO2 | 86 % |" in detail and "repeated JSON member names" not in detail
