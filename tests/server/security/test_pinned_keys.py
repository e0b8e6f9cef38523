"""A key pinned in the clients file is used when its kid matches, even when the JWT names a jku (issue 11 item 14):
no outbound HTTPS is needed to trust a registered client; the jku is fetched only for a kid not pinned."""
from __future__ import annotations

import responses

from tests.support import fhir_factory as f
from tests.support import jwt_kit as k
from tests.server.security.test_security_auth import AUD, _app_with_clients, _post


def test_a_pinned_key_is_used_without_fetching_the_jku_the_header_names(settings, tmp_path):
    pinned = k.new_key("ES384", kid="sandbox-pinned")
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=k.jwks(pinned))])
    with responses.RequestsMock() as mock:  # any outbound call fails the test (and no jku is registered)
        response = _post(app.test_client(), k.sign(pinned, k.claims(AUD), jku=k.JKU))
        assert len(mock.calls) == 0
    assert response.status_code == 200, response.json


@responses.activate
def test_a_kid_not_pinned_is_looked_up_in_the_named_jku(settings, tmp_path):
    pinned, rotated = k.new_key("ES384", kid="pinned"), k.new_key("ES384", kid="rotated")
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=k.jwks(pinned))])
    responses.add(responses.GET, k.JKU, json=k.jwks(rotated))
    assert _post(app.test_client(), k.sign(rotated, k.claims(AUD), jku=k.JKU)).status_code == 200
    assert [call.request.url for call in responses.calls] == [k.JKU]


def test_a_pinned_kid_with_another_key_behind_it_is_still_refused(settings, tmp_path):
    pinned, impostor = k.new_key("ES384", kid="same-kid"), k.new_key("ES384", kid="same-kid")
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=k.jwks(pinned))])
    with responses.RequestsMock():
        assert _post(app.test_client(), k.sign(impostor, k.claims(AUD), jku=k.JKU)).status_code == 401


def test_a_jku_off_the_allowlist_is_refused_even_with_a_pinned_kid(settings, tmp_path):
    pinned = k.new_key("ES384", kid="pinned")
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=k.jwks(pinned))])
    with responses.RequestsMock():
        token = k.sign(pinned, k.claims(AUD), jku="https://attacker.example.net/jwks.json")
        assert app.test_client().post("/cds-services/massive-hemoptysis", headers=k.bearer(token),
                                      json=f.patient_view_request([f.patient()])).status_code == 401
