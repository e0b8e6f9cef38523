"""The cost of a call is set by what the engine uses, not by what is sent (issue 16, issue 11 item 7): raw reads
choose the candidates, only the records a value is taken from are validated, rejections are capped and summarised,
a large call leaves no cyclic garbage, and building the app leaves the interpreter's collector alone."""
from __future__ import annotations

import gc
import json

import pytest

from bench import shapes
from cql_equivalents import fhir_valid
from cql_equivalents.model import REJECTED_SHOWN_PER_KIND
from cql_equivalents.observation_reading import MAX_INVALID_PER_INPUT
from server.run import runtime
from server.storage import wal_checkpoint
from server.http.app import create_app
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


def _post(client, body: bytes | dict) -> dict:
    response = client.post(URL, data=body if isinstance(body, bytes) else json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 200, response.json
    return response.json


def _validations(client, body) -> tuple[int, dict]:
    before = fhir_valid.validations
    answer = _post(client, body)
    return fhir_valid.validations - before, answer


@pytest.mark.parametrize("shape", ["friendly", "icu", "unknown-units", "implausible"])
def test_validations_do_not_grow_with_the_chart(client, shape):
    """The same chart at 50 and at 2,000 resources: the same records are used, so the same validations."""
    small, _ = _validations(client, shapes.request_body(shape, 50))
    large, _ = _validations(client, shapes.request_body(shape, 2000))
    assert large == small
    assert large <= 20


def test_unknown_units_everywhere_validate_nothing_and_summarise_the_rejections(client):
    count, answer = _validations(client, shapes.request_body("unknown-units", 2000))
    detail = answer["cards"][0]["detail"]
    assert detail.count("SpO2 unit '% saturation' is not recognised") == REJECTED_SHOWN_PER_KIND
    assert "more SpO2 records in an unknown unit" in detail
    assert count <= 2  # the hemoptysis Condition and the warfarin statement: no Observation at all


def test_412_unusable_spo2_are_one_line_on_the_card(client):
    records = [f.spo2(90, when=f.ago(minutes=1 + i)) for i in range(412)]
    for record in records:
        record["valueQuantity"].update(unit="% saturation", code="% saturation")
    detail = _post(client, f.patient_view_request([f.patient(), f.hemoptysis(), *records], search_ignores=("_count",)))["cards"][0]["detail"]
    assert f"- {412 - REJECTED_SHOWN_PER_KIND} more SpO2 records in an unknown unit" in detail
    assert detail.count("is not recognised") == REJECTED_SHOWN_PER_KIND


def test_invalid_records_everywhere_cost_a_bounded_number_of_validations(client):
    """300 SpO2 that look usable but are not valid FHIR: at most MAX_INVALID_PER_INPUT validations, the rest named
    as not checked, and the older valid value still not guessed."""
    records = [{**f.spo2(88, when=f.ago(minutes=1 + i)), "issued": "not recorded"} for i in range(300)]
    fhir_valid.forget_verdicts()
    built = fhir_valid.models_built
    answer = _post(client, f.patient_view_request([f.patient(), f.hemoptysis(), *records], search_ignores=("_count",)))
    # models built, not verdicts asked: the worst-value pass asks again about the same ten and the memo answers
    assert fhir_valid.models_built - built <= MAX_INVALID_PER_INPUT + 2  # + the hemoptysis Condition
    detail = answer["cards"][0]["detail"]
    unchecked = 300 - MAX_INVALID_PER_INPUT - REJECTED_SHOWN_PER_KIND
    assert f"- {unchecked} more SpO2 records not checked after the first invalid ones" in detail
    assert "| SpO2 |" not in detail


def test_a_large_call_leaves_no_cyclic_garbage(client):
    """The collector is off during the call: whatever it then finds is what a call leaves for it. Storing
    validation errors with their tracebacks left ~1.4 million objects per 50,000-entry call."""
    body = shapes.request_body("unusable-50000", 5000)
    _post(client, body)
    # the WAL checkpoint thread may be passing over an earlier test's engine (alive until collected): let it
    # finish first, so what the collector finds below is what this call left (a CI run counted 1,032 otherwise)
    assert wal_checkpoint.settle()
    gc.collect()
    gc.disable()
    try:
        _post(client, body)
        left = gc.collect()
    finally:
        gc.enable()
    assert left < 500


def test_building_the_app_leaves_the_process_collector_alone(settings):
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    create_app(settings)
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == frozen


def test_the_worker_tuning_bounds_the_allocations_between_full_collections():
    young, middle, old = runtime.GC_THRESHOLDS
    assert young * middle * old <= 5_000_000
    assert runtime.collect_after_large_request(str(runtime.COLLECT_AFTER_BYTES)) is True
    assert runtime.collect_after_large_request("1024") is False
    assert runtime.collect_after_large_request("not a number") is False


@pytest.mark.slow
def test_memory_per_worker_levels_off_under_repeated_large_calls():
    """A real gunicorn worker, 8 calls of a 25,000-entry body (~8 MiB): its peak stays within 1.5x of one call's."""
    from bench.memory import worker_memory

    result = worker_memory(shapes.request_body("unusable-50000", 25_000), calls=8)
    assert result.errors == 0
    assert result.peak_mb_after_last <= 1.5 * result.peak_mb_after_first, result


def test_a_ranking_other_than_newest_first_validates_its_choice_and_falls_back(client, monkeypatch):
    """The selection API another rule builds on (e.g. the worst value within a window): rank the candidates,
    validate the chosen one, fall back to the next when it is not valid FHIR."""
    from cql_equivalents.readers import observations as engine_inputs

    def lowest_first(candidates, read):
        readings = [read(candidate) for candidate in candidates]
        usable = sorted((r for r in readings if not r.rejection), key=lambda r: r.value)
        return [*(r for r in readings if r.rejection), *usable]

    monkeypatch.setitem(engine_inputs.OBSERVATION_RANKINGS, "spo2", lowest_first)
    chart = [f.patient(), f.hemoptysis(), f.spo2(95, obs_id="spo2-newest", when=f.ago(minutes=2)),
             {**f.spo2(84, obs_id="spo2-lowest", when=f.ago(minutes=40)), "subject": None},
             f.spo2(88, obs_id="spo2-next", when=f.ago(minutes=60))]
    detail = _post(client, f.patient_view_request(chart, search_ignores=("patient",)))["cards"][0]["detail"]
    assert "| SpO2 | 88 % |" in detail and "`Observation/spo2-next`" in detail
    assert "`Observation/spo2-lowest`: not valid FHIR JSON (subject is null" in detail
