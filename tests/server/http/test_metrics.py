"""GET /metrics: after a known set of calls the scrape holds exactly those counts, no patient data, and only
audit readers may read it when authentication is required."""
from __future__ import annotations

from dataclasses import replace

import pytest
import requests
import responses
from prometheus_client.parser import text_string_to_metric_families

from server.http.app import create_app
from tests.support import fhir_factory as f
from tests.support import jwt_kit
from tests.conftest import FHIR_BASE, SignedClient

URL = "/cds-services/massive-hemoptysis"
REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition, keyed by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def _massive_request(patient_id: str = "pat-1") -> dict:
    resources = [f.patient(patient_id), f.hemoptysis(patient_id=patient_id), f.spo2(86, patient_id=patient_id),
                 f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet", patient_id=patient_id)]
    return f.patient_view_request(resources, patient_id=patient_id)


def test_metrics_count_exactly_the_calls_made(client):
    answered = client.post(URL, json=_massive_request())
    cards = answered.json["cards"]
    nothing = client.post(URL, json=f.patient_view_request([f.patient(), f.spo2(97)]))
    assert nothing.status_code == 200 and nothing.json["cards"] == []
    assert client.post(URL, json=_massive_request(), headers={"Authorization": ""}).status_code == 401
    assert client.post(URL, json=_massive_request(), headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post("/cds-services/no-such-service", json=_massive_request()).status_code == 404
    # feedback: one override with a reason the card offered, one with a reason in the client's own system
    card = cards[0]
    offered = card["overrideReasons"][0]
    items = [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
              "overrideReason": {"reason": offered}},
             {"card": cards[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:01:00Z",
              "overrideReason": {"reason": {"system": "https://ehr.example.org/reasons", "code": "pat-1-said-no"}}}]
    assert client.post(f"{URL}/feedback", json={"feedback": items}).status_code == 200

    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.mimetype == "text/plain"
    text = scrape.get_data(as_text=True)
    got = samples(text)
    service = "massive-hemoptysis"
    assert value(got, "hemoptysis_cds_calls_total", kind="service", service=service, status="200") == 2
    assert value(got, "hemoptysis_cds_calls_total", kind="service", service=service, status="401") == 2
    assert value(got, "hemoptysis_cds_calls_total", kind="service", service="unknown", status="404") == 1
    assert value(got, "hemoptysis_cds_calls_total", kind="feedback", service=service, status="200") == 1
    assert value(got, "hemoptysis_cds_auth_refusals_total", reason="missing-token") == 1
    assert value(got, "hemoptysis_cds_auth_refusals_total", reason="not-bearer") == 1
    # latency: one observation per call that reached the phase
    assert value(got, "hemoptysis_cds_call_seconds_count", kind="service", service=service) == 4
    assert value(got, "hemoptysis_cds_prefetch_seconds_count", service=service) == 2
    assert value(got, "hemoptysis_cds_engine_seconds_count", service=service) == 2
    # cards by topic and indicator: exactly the cards answered
    by_card = {}
    for issued in cards:
        key = (issued["source"]["topic"]["code"], issued["indicator"])
        by_card[key] = by_card.get(key, 0) + 1
    counted = {(dict(labels)["topic"], dict(labels)["indicator"]): v for (name, labels), v in got.items()
               if name == "hemoptysis_cds_cards_total"}
    assert counted == by_card
    topic0, topic1 = card["source"]["topic"]["code"], cards[1]["source"]["topic"]["code"]
    assert value(got, "hemoptysis_cds_feedback_total", service=service, topic=topic0, outcome="overridden",
                 override_reason=offered["code"]) == 1
    assert value(got, "hemoptysis_cds_feedback_total", service=service, topic=topic1, outcome="overridden",
                 override_reason="client-defined") == 1
    # no patient data in any label: the patient id, the client's free code and the hook instance never appear
    assert "pat-1" not in text and answered.json["cards"][0]["uuid"] not in text


def test_fhir_callbacks_are_counted_by_outcome(client):
    request = f.patient_view_request([f.patient(), f.hemoptysis()], fhir_server=FHIR_BASE)
    del request["prefetch"]["conditions"]  # a required key: a failed call-back for it is a 412
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FHIR_BASE}/Condition", json=f.searchset([f.hemoptysis()]))
        assert client.post(URL, json=request).status_code == 200
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FHIR_BASE}/Condition", status=503)
        assert client.post(URL, json=request).status_code == 412
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FHIR_BASE}/Condition", body=requests.exceptions.ReadTimeout("slow"))
        assert client.post(URL, json=request).status_code == 412
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FHIR_BASE}/Condition", status=302, headers={"Location": "https://elsewhere.example.net/"})
        assert client.post(URL, json=request).status_code == 412
    got = samples(client.get("/metrics").get_data(as_text=True))
    assert value(got, "hemoptysis_cds_fhir_callbacks_total", outcome="ok") == 1
    assert value(got, "hemoptysis_cds_fhir_callbacks_total", outcome="http-5xx") == 1
    assert value(got, "hemoptysis_cds_fhir_callbacks_total", outcome="timeout") == 1
    assert value(got, "hemoptysis_cds_fhir_callbacks_total", outcome="redirect") == 1
    assert value(got, "hemoptysis_cds_calls_total", kind="service", service="massive-hemoptysis", status="412") == 3


def test_metrics_are_an_audit_read(settings, tmp_path):
    clients = jwt_kit.write_clients_file(tmp_path, [jwt_kit.default_client(audit_reader=False)])
    app = create_app(replace(settings, clients_file=str(clients)))
    app.test_client_class = SignedClient
    client = app.test_client()
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    refused = client.get("/metrics")
    assert refused.status_code == 403 and "may not read the audit trail" in refused.json["issue"][0]["diagnostics"]


def test_metrics_can_be_switched_off(settings):
    app = create_app(replace(settings, metrics_enabled=False))
    app.test_client_class = SignedClient
    client = app.test_client()
    assert client.post(URL, json=_massive_request()).status_code == 200
    assert client.get("/metrics").status_code == 404


def test_settings_read_metrics_switch_from_the_environment():
    from server.config import Settings
    assert Settings.from_env({"HEMOPTYSIS_CDS_METRICS_ENABLED": "false"}).metrics_enabled is False
    assert Settings.from_env({}).metrics_enabled is True


@pytest.mark.parametrize("reason, code", [("alg-not-allowed (HS256)", "alg-not-allowed"),
                                          ("missing-claim (exp)", "missing-claim"), (None, "unknown")])
def test_refusal_reasons_become_bounded_codes(reason, code):
    from server.http.metrics import reason_code
    assert reason_code(reason) == code


def test_label_children_are_kept_per_tuple_and_count_as_prometheus_does():
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    from server.http.metrics import LabelChildren
    registry = CollectorRegistry()
    calls = LabelChildren(Counter("t_calls", "test", ["kind", "status"], registry=registry))
    assert calls.labels("service", "200") is calls.labels("service", "200")
    assert calls.labels("service", "200") is not calls.labels("service", "400")
    for _ in range(3):
        calls.labels("service", "200").inc()
    calls.labels("service", "400").inc()
    scraped = samples(generate_latest(registry).decode())
    assert value(scraped, "t_calls_total", kind="service", status="200") == 3.0
    assert value(scraped, "t_calls_total", kind="service", status="400") == 1.0
