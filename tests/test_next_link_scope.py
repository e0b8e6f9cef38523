"""`next` links cannot carry the FHIR access token outside the FHIR base (issue 11 item 9): dot segments and
percent-encoded dots are resolved before the check."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import responses

from server.security.url_scope import remove_dot_segments, url_under_base
from tests import fhir_factory as f
from tests.conftest import FHIR_BASE
from tests.test_patient_view import OTHER_SEARCHED, URL

ESCAPING_LINKS = [
    f"{FHIR_BASE}/../../elsewhere/Observation?page=2",
    f"{FHIR_BASE}/Observation/../../elsewhere?page=2",
    f"{FHIR_BASE}/%2e%2e/%2E%2E/elsewhere?page=2",
    f"{FHIR_BASE}/.%2e/admin?page=2",
    f"{FHIR_BASE}/..%2f..%2felsewhere?page=2",
    f"{FHIR_BASE}/..\\..\\elsewhere?page=2",
    f"{FHIR_BASE}x/Observation?page=2",  # a sibling path sharing the prefix
    "https://ehr.example.org@attacker.example.net/fhir/Observation?page=2",
]


@pytest.mark.parametrize("link", ESCAPING_LINKS)
@responses.activate
def test_next_links_escaping_the_fhir_base_are_not_followed_with_the_token(client, link):
    page_1 = f.searchset([f.spo2(97)])
    page_1["link"] = [{"relation": "next", "url": link}]
    responses.add(responses.GET, f"{FHIR_BASE}/Patient/pat-1", json=f.patient())
    responses.add(responses.GET, f"{FHIR_BASE}/Condition", json=f.searchset([f.hemoptysis()]))
    responses.add(responses.GET, f"{FHIR_BASE}/Observation", json=page_1)
    for resource_type in OTHER_SEARCHED:
        responses.add(responses.GET, f"{FHIR_BASE}/{resource_type}", json=f.searchset([]))
    request = f.patient_view_request([], with_prefetch=False, fhir_server=FHIR_BASE, access_token="secret-token-9")
    response = client.post(URL, json=request)
    assert response.status_code in (200, 412)
    for call in responses.calls:
        sent = urlsplit(call.request.url)
        assert sent.hostname == "ehr.example.org" and remove_dot_segments(sent.path).startswith("/fhir/"), call.request.url


def test_links_inside_the_base_are_normalised_and_kept():
    assert url_under_base(f"{FHIR_BASE}/Observation/./x/../?page=2", FHIR_BASE) == f"{FHIR_BASE}/Observation/?page=2"
    assert url_under_base(f"{FHIR_BASE}?_getpages=abc", FHIR_BASE) == f"{FHIR_BASE}?_getpages=abc"
    assert url_under_base("HTTPS://EHR.example.org/fhir/Observation", FHIR_BASE) is not None
    assert url_under_base(f"{FHIR_BASE}/Observation/%2e%2e/%2e%2e", FHIR_BASE) is None
    assert url_under_base("http://ehr.example.org/fhir/Observation", FHIR_BASE) is None  # scheme downgrade
