"""What a legitimate client can do, and the configuration around it: algorithms, aud forms, jku with caching
and key rotation, replay across processes, feedback and audit endpoints, discovery open, development mode."""
from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest
import responses

from server.http.app import create_app
from server.security.clients import ClientsFileError, load_clients
from tests import fhir_factory as f
from tests import jwt_kit as k
from tests.conftest import PUBLIC_BASE_URL, SignedClient

URL = "/cds-services/massive-hemoptysis"
AUD = PUBLIC_BASE_URL + URL


def _body() -> dict:
    return f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])


def _post(client, token: str, path: str = URL, body: dict | None = None):
    return client.post(path, json=body or _body(), headers=k.bearer(token))


def _app_with_clients(settings, tmp_path, clients: list[dict]):
    path = k.write_clients_file(tmp_path, clients)
    app = create_app(replace(settings, clients_file=str(path)))
    app.test_client_class = SignedClient
    return app


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_recommended_algorithms_are_accepted(client, alg):
    response = _post(client, k.sign(k.session_key(alg), k.claims(AUD)))
    assert response.status_code == 200 and response.json["cards"]


def test_aud_as_an_array_and_extra_claims_are_accepted(client):
    # Epic-style extras (sub, nbf five minutes before iat) are not in CDS Hooks 2.0 but must not be refused
    now = int(time.time())
    token = k.sign(k.session_key("ES384"), k.claims([AUD, "https://other.example.org"], sub="ehr-client-1",
                                                    nbf=now - 300, tenant="hospital-a"))
    assert _post(client, token).status_code == 200


def test_a_small_clock_skew_is_tolerated(client):
    now = int(time.time())
    assert _post(client, k.sign(k.session_key("ES384"), k.claims(AUD, now=now + 10))).status_code == 200


def test_client_narrowed_to_es384_refuses_rs384(settings, tmp_path):
    app = _app_with_clients(settings, tmp_path, [k.default_client(algorithms=["ES384"])])
    client = app.test_client()
    assert _post(client, k.sign(k.session_key("RS384"), k.claims(AUD))).status_code == 401
    assert _post(client, k.sign(k.session_key("ES384"), k.claims(AUD))).status_code == 200


def test_tenant_allowlist(settings, tmp_path):
    app = _app_with_clients(settings, tmp_path, [k.default_client(tenants=["hospital-a"])])
    client = app.test_client()
    key = k.session_key("ES384")
    assert _post(client, k.sign(key, k.claims(AUD, tenant="hospital-a"))).status_code == 200
    assert _post(client, k.sign(key, k.claims(AUD, tenant="hospital-b"))).status_code == 401
    assert _post(client, k.sign(key, k.claims(AUD))).status_code == 401  # a tenant list makes tenant required


@responses.activate
def test_jku_keys_are_fetched_cached_and_refreshed_on_an_unknown_kid(settings, tmp_path):
    first, rotated = k.new_key("ES384", kid="2026-11"), k.new_key("ES384", kid="2026-12")
    settings = replace(settings, jwks_refresh_interval_seconds=0)  # rotation right after the first fetch
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=None)])  # keys only behind the jku
    client = app.test_client()
    responses.add(responses.GET, k.JKU, json=k.jwks(first))
    for _ in range(3):
        assert _post(client, k.sign(first, k.claims(AUD), jku=k.JKU)).status_code == 200
    assert len(responses.calls) == 1  # cached
    # the client rotates its key: the unknown kid triggers one refetch, which finds it
    responses.replace(responses.GET, k.JKU, json=k.jwks(first, rotated))
    assert _post(client, k.sign(rotated, k.claims(AUD), jku=k.JKU)).status_code == 200
    assert len(responses.calls) == 2
    # without a jku header, the client's allowlisted JWK Set is its out-of-band key set
    assert _post(client, k.sign(rotated, k.claims(AUD))).status_code == 200
    assert len(responses.calls) == 2


@responses.activate
def test_unknown_kids_do_not_hammer_the_clients_key_server(settings, tmp_path):
    known = k.new_key("ES384", kid="known")
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=None)])  # default: refetch at most every 10 s
    client = app.test_client()
    responses.add(responses.GET, k.JKU, json=k.jwks(known))
    assert _post(client, k.sign(known, k.claims(AUD), jku=k.JKU)).status_code == 200
    for index in range(5):
        stranger = k.new_key("ES384", kid=f"never-published-{index}")
        assert _post(client, k.sign(stranger, k.claims(AUD), jku=k.JKU)).status_code == 401
    assert len(responses.calls) == 1


@responses.activate
def test_jku_redirect_is_not_followed(settings, tmp_path):
    key = k.new_key("ES384", kid="k1")
    app = _app_with_clients(settings, tmp_path, [k.default_client(jwks=None)])
    responses.add(responses.GET, k.JKU, status=302, headers={"Location": "https://attacker.example.net/jwks.json"})
    assert _post(app.test_client(), k.sign(key, k.claims(AUD), jku=k.JKU)).status_code == 401
    assert [call.request.url for call in responses.calls] == [k.JKU]


def test_replay_through_another_worker_is_refused_by_the_database(settings):
    # Two app instances on one database stand for two gunicorn workers: neither has seen the jti in memory.
    from sqlalchemy import func, select
    from server.storage.schema import issued_cards
    worker_1, worker_2 = create_app(settings), create_app(settings)
    token = k.sign(k.session_key("ES384"), k.claims(AUD))
    first = _post(worker_1.test_client(), token)
    assert first.status_code == 200
    replay = _post(worker_2.test_client(), token)
    assert replay.status_code == 401
    with worker_2.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        issued = connection.execute(select(func.count()).select_from(issued_cards)).scalar()
    assert issued == len(first.json["cards"])  # the replay's cards were rolled back with its jti claim


def test_feedback_needs_its_own_audience(client):
    cards = client.post(URL, json=_body()).json["cards"]
    item = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}]}
    feedback_url = f"{URL}/feedback"
    assert client.post(feedback_url, json=item, headers={"Authorization": ""}).status_code == 401
    service_aud = k.sign(k.session_key("ES384"), k.claims(AUD))  # a token for the service, not for its feedback
    assert client.post(feedback_url, json=item, headers=k.bearer(service_aud)).status_code == 401
    assert client.post(feedback_url, json=item).status_code == 200


def test_audit_read_needs_an_audit_reader(settings, tmp_path):
    app = _app_with_clients(settings, tmp_path, [k.default_client(audit_reader=False)])
    client = app.test_client()
    assert client.get("/audit/feedback/some-card", headers={"Authorization": ""}).status_code == 401
    assert client.get("/audit/feedback/some-card").status_code == 403


def test_discovery_and_health_stay_open(client):
    # No token on purpose: discovery must be readable by any EHR before it is configured (CDS Hooks: SHOULD
    # require authentication only where data is exposed; discovery exposes none).
    assert client.get("/cds-services", headers={"Authorization": ""}).status_code == 200
    assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200


def test_no_clients_configured_refuses_every_call(settings):
    app = create_app(replace(settings, clients_file=""))
    assert _post(app.test_client(), k.sign(k.session_key("ES384"), k.claims(AUD))).status_code == 401


def test_development_mode_is_explicit_and_announced(settings, caplog):
    with caplog.at_level(logging.WARNING):
        app = create_app(replace(settings, auth_mode="development"))
    assert "AUTHENTICATION IS OFF" in caplog.text
    client = app.test_client()  # the plain Flask client on purpose: development mode needs no token
    for response in (client.post(URL, json=_body()), client.get("/cds-services"), client.get("/nope"),
                     client.post(URL, data=b"{", content_type="application/json")):
        assert response.headers["X-Hemoptysis-CDS-Auth"] == "development-unauthenticated"
    assert client.post(URL, json=_body()).status_code == 200


def test_required_mode_sends_no_development_header(client):
    assert "X-Hemoptysis-CDS-Auth" not in client.post(URL, json=_body()).headers


def test_unknown_auth_mode_refuses_to_start(settings):
    with pytest.raises(ValueError, match="HEMOPTYSIS_CDS_AUTH_MODE"):
        create_app(replace(settings, auth_mode="off"))


# ------------------------------------------------------------------------------------------ clients file
def test_clients_file_in_toml_with_a_jwks_file(tmp_path):
    (tmp_path / "ehr-jwks.json").write_text(__import__("json").dumps(k.jwks(k.session_key("ES384"))))
    (tmp_path / "clients.toml").write_text(
        '[clients."https://ehr.example.org"]\njwks_file = "ehr-jwks.json"\nfhir_server = "https://ehr.example.org/fhir"\n'
        'tenant = "hospital-a"\n')
    client = load_clients(tmp_path / "clients.toml")["https://ehr.example.org"]
    assert client.fhir_servers == ("https://ehr.example.org/fhir",) and client.tenants == ("hospital-a",)
    assert client.jwks_file == str((tmp_path / "ehr-jwks.json").resolve())


BAD_CLIENTS = [
    ("symmetric algorithm", {"algorithms": ["HS256"]}, "algorithms"),
    ("private key published", {"jwks": {"keys": [{**k.session_key("ES384").public_jwk(), "d": "c2VjcmV0"}]}}, "private key"),
    ("jku over plain http", {"jku": ["http://ehr.example.org/jwks.json"]}, "https"),
    ("no key at all", {"jwks": None, "jku": []}, "names no public key"),
    ("misspelt option", {"fhir_sever": "https://ehr.example.org/fhir"}, "fhir_sever"),
    ("symmetric JWK", {"jwks": {"keys": [{"kty": "oct", "kid": "x", "k": "c2VjcmV0"}]}}, "RSA or EC"),
]


@pytest.mark.parametrize("name,change,words", BAD_CLIENTS, ids=[b[0] for b in BAD_CLIENTS])
def test_bad_clients_file_refuses_to_start(tmp_path, name, change, words):
    entry = {key: value for key, value in {**k.default_client(), **change}.items() if value is not None}
    path = k.write_clients_file(tmp_path, [entry])
    with pytest.raises(ClientsFileError, match=words):
        load_clients(path)


def test_missing_clients_file_refuses_to_start(settings, tmp_path):
    with pytest.raises(ClientsFileError, match="does not exist"):
        create_app(replace(settings, clients_file=str(tmp_path / "absent.json")))


def test_the_example_clients_file_loads():
    from pathlib import Path
    clients = load_clients(Path(__file__).resolve().parent.parent / "deploy" / "clients.example.toml")
    assert list(clients) == ["https://ehr.example.org"]
    assert clients["https://ehr.example.org"].fhir_servers == ("https://ehr.example.org/fhir",)


def test_security_settings_come_from_the_environment_names_others_rely_on():
    from server.config import Settings
    settings = Settings.from_env({"HEMOPTYSIS_CDS_AUTH_MODE": "development", "HEMOPTYSIS_CDS_CLIENTS_FILE": "/etc/c.json",
                                  "HEMOPTYSIS_CDS_AUDIT_KEY": "k" * 40, "HEMOPTYSIS_CDS_JWT_LEEWAY_SECONDS": "5"})
    assert (settings.auth_mode, settings.clients_file, settings.audit_key, settings.jwt_leeway_seconds) == \
        ("development", "/etc/c.json", "k" * 40, 5)
    assert settings.development_auth and Settings().auth_mode == "required"
    assert "k" * 40 not in repr(settings)  # the audit key never reaches a log through a repr
