"""The validation verdict is remembered by content (cql_equivalents/fhir_valid.py): a record sent again is not
modelled again, a record that changed is judged again, and the memo is bounded and keeps no patient data."""
from __future__ import annotations

import json
import re

from fhir.resources.R4B.observation import Observation

from cql_equivalents import fhir_valid
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _answer(client, request: dict) -> tuple[str, int]:
    built = fhir_valid.models_built
    response = client.post(URL, data=json.dumps(request), content_type="application/json")
    assert response.status_code == 200, response.json
    return _UUID.sub("<uuid>", response.get_data(as_text=True)), fhir_valid.models_built - built


def _request(spo2_record: dict, others: list[dict]) -> dict:
    return f.patient_view_request([f.patient(), *others, spo2_record])


def _others() -> list[dict]:
    return [f.hemoptysis(), f.respiratory_rate(32), f.heart_rate(128), f.blood_pressure(84, 50)]


def test_the_same_records_sent_again_build_no_model_and_answer_the_same(client):
    fhir_valid.forget_verdicts()
    request = _request(f.spo2(86), _others())
    first, built_first = _answer(client, request)
    again, built_again = _answer(client, request)
    assert built_first >= 4  # the Condition and the vitals a value is taken from
    assert built_again == 0
    assert again == first
    assert "| SpO2 | 86" in json.loads(again)["cards"][0]["detail"]


def test_a_record_that_changed_is_judged_again(client):
    """The same Observation id, now with an `issued` that is not a FHIR instant: not the remembered verdict."""
    fhir_valid.forget_verdicts()
    record, others = f.spo2(86), _others()
    _answer(client, _request(record, others))
    changed = {**record, "issued": "not recorded"}
    answer, built = _answer(client, _request(changed, others))
    details = "\n".join(card["detail"] for card in json.loads(answer)["cards"])
    assert built == 1
    assert f"`Observation/{record['id']}`: not a valid FHIR record (field issued)" in details
    assert "| SpO2 | 86" not in details


def test_the_memo_keeps_the_newest_verdicts_up_to_its_bound():
    memo = fhir_valid._VerdictMemo(3)
    records = [f.spo2(80 + index) for index in range(5)]
    digests = [memo.digest(Observation, record) for record in records]
    for digest in digests:
        memo.put(digest, "")
    assert [memo.get(digest) for digest in digests] == [None, None, "", "", ""]


def test_the_digest_is_keyed_per_process_and_names_the_model():
    """A digest cannot be matched outside the process (random key), and the same JSON judged against another
    model is another verdict."""
    record = f.spo2(86)
    one, other = fhir_valid._VerdictMemo(8), fhir_valid._VerdictMemo(8)
    assert one.digest(Observation, record) == one.digest(Observation, dict(record))
    assert one.digest(Observation, record) != other.digest(Observation, record)
    from fhir.resources.R4B.condition import Condition
    assert one.digest(Observation, record) != one.digest(Condition, record)
    assert len(one.digest(Observation, record)) == 20
