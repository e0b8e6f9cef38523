"""One wall-clock deadline for all FHIR call-backs of a call (issue 11 item 5): a server trickling a byte at a
time, or slow page after slow page, gets a 412 naming it when the deadline passes, with an audit row; the fetch
threads are let go; call-backs in flight to one server are capped."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from hooks import SERVICES
from server.http.app import create_app
from server.storage.schema import audit_events
from tests import fhir_factory as f
from tests.slow_servers import send_json, slow_fhir_server

pytestmark = pytest.mark.slow
URL = "/cds-services/massive-hemoptysis"
DEADLINE = 1.2


def _app(settings, server, **overrides):
    chosen = {"fhir_deadline_seconds": DEADLINE, "fhir_read_timeout": 5.0, **overrides}
    return create_app(replace(settings, auth_mode="development", fhir_allowed_servers=(server.base_url,), **chosen))


def _call(app, server) -> tuple[object, float]:
    request = f.patient_view_request([], with_prefetch=False, fhir_server=server.base_url, access_token="tok")
    started = time.monotonic()
    response = app.test_client().post(URL, json=request)
    return response, time.monotonic() - started


def _trickling_conditions(server, handler, path):
    if path.endswith("/Condition"):  # a byte every 0.25 s: no socket read ever waits the 5 s read timeout
        send_json(handler, f.searchset([f.hemoptysis()]), byte_delay=0.25)
    elif "/Patient/" in path:
        send_json(handler, f.patient())
    else:
        send_json(handler, f.searchset([]))


def test_a_trickling_fhir_server_gets_412_naming_it_at_the_deadline_with_an_audit_row(settings):
    with slow_fhir_server(_trickling_conditions) as server:
        app = _app(settings, server)
        response, took = _call(app, server)
        assert response.status_code == 412
        issue = response.json["issue"][0]
        assert issue["code"] == "timeout" and server.base_url in issue["diagnostics"]
        assert f"deadline of {DEADLINE:g} s" in issue["diagnostics"]
        assert took < DEADLINE + 1.0, took  # before: the trickle held the worker for its whole length
        cut = time.monotonic()
        while not server.cut_at and time.monotonic() - cut < 2:
            time.sleep(0.05)
        assert server.cut_at, "the trickling read was not cut: a fetch thread is still held"
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        row = connection.execute(select(audit_events).order_by(audit_events.c.id.desc())).first()
    assert row.status == 412 and row.kind == "service"


def _slow_pages(server, handler, path):
    if path.endswith("/Condition"):
        time.sleep(0.5)  # each page in time for the read timeout, but ten of them are not
        page = f.searchset([f.hemoptysis()])
        page["link"] = [{"relation": "next", "url": f"{server.base_url}/Condition?page={server.requests}"}]
        send_json(handler, page)
    elif "/Patient/" in path:
        send_json(handler, f.patient())
    else:
        send_json(handler, f.searchset([]))


def test_slow_pages_add_up_to_one_deadline_not_one_timeout_each(settings):
    with slow_fhir_server(_slow_pages) as server:
        response, took = _call(_app(settings, server, fhir_max_pages=10), server)
    assert response.status_code == 412 and response.json["issue"][0]["code"] == "timeout"
    assert took < DEADLINE + 0.8, took


def _holding(server, handler, path):
    time.sleep(0.3)
    send_json(handler, f.patient() if "/Patient/" in path else f.searchset([]))


def test_call_backs_in_flight_to_one_fhir_server_are_capped(settings):
    with slow_fhir_server(_holding) as server:
        response, _ = _call(_app(settings, server, fhir_max_concurrent_per_server=2,
                                 fhir_deadline_seconds=5.0), server)
    assert response.status_code == 200, response.json
    # one call-back per prefetch key the service declares (no prefetch was sent), never more than 2 at once
    assert server.requests == len(SERVICES["massive-hemoptysis"].prefetch) and server.most_in_flight <= 2
