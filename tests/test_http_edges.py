"""Smaller HTTP promises (issue 11 item 15): a 405 says which methods are allowed; a chunked body over the limit
is a 413, not cut; gunicorn's own error answers are OperationOutcomes (through the server in test_slow_clients)."""
from __future__ import annotations

import io
import json

import pytest

from server.run.gunicorn_worker import error_response
from tests import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"


@pytest.mark.parametrize("method,path,allowed", [("PUT", URL, {"POST", "OPTIONS"}), ("DELETE", "/cds-services", {"GET", "HEAD", "OPTIONS"}),
                                                 ("POST", "/healthz", {"GET", "HEAD", "OPTIONS"}),
                                                 ("GET", f"{URL}/feedback", {"POST", "OPTIONS"})])
def test_405_names_the_allowed_methods(client, method, path, allowed):
    response = client.open(path, method=method, json={})
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed
    assert response.json["resourceType"] == "OperationOutcome" and response.json["issue"][0]["code"] == "not-supported"


def test_a_chunked_body_over_the_limit_is_413_not_cut(client, settings):
    body = json.dumps(f.patient_view_request([f.patient(), f.hemoptysis()])).encode()
    padded = body[:-1] + b', "pad": "' + b"a" * settings.max_body_bytes + b'"}'
    response = client.post(URL, input_stream=io.BytesIO(padded), content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True})  # no Content-Length, as chunked
    assert response.status_code == 413 and response.json["issue"][0]["code"] == "too-costly"


def test_gunicorns_error_page_is_an_operation_outcome():
    head, body = error_response(431, "Request Header Fields Too Large", "Error parsing headers").split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431 ") and b"Content-Type: application/fhir+json" in head
    assert json.loads(body) == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "too-long", "diagnostics": "Error parsing headers"}]}
