"""The committed OpenAPI 3.1 description (docs/openapi.json, served at /openapi.json) matches the app, and a bounded
schemathesis run over it, in both authentication modes, finds no server error (5xx) and no HTML answer."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from server.http.app import create_app
from server.config import Settings
from tests import jwt_kit as k
from tests.conftest import FHIR_BASE, PUBLIC_BASE_URL

pytestmark = pytest.mark.slow

EXAMPLES = 15  # per operation and mode (plus the explicit examples): about 15 s for both modes
_WORK = Path(tempfile.mkdtemp(prefix="hemoptysis-openapi-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)


def _app(mode: str):
    directory = _WORK / mode
    directory.mkdir()
    clients = k.write_clients_file(directory, [k.default_client()])
    return create_app(Settings(database_url=f"sqlite:///{directory}/cds.sqlite3", fhir_allowed_servers=(FHIR_BASE,),
                               public_base_url=PUBLIC_BASE_URL, auth_mode=mode, clients_file=str(clients),
                               audit_key_file=str(directory / "audit.key")))


REQUIRED_APP, DEVELOPMENT_APP = _app("required"), _app("development")
REQUIRED = schemathesis.openapi.from_wsgi("/openapi.json", REQUIRED_APP)
DEVELOPMENT = schemathesis.openapi.from_wsgi("/openapi.json", DEVELOPMENT_APP)
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                   phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def _no_server_error_no_html(case, response) -> None:
    case.validate_response(response, checks=[not_a_server_error])
    assert "text/html" not in response.headers.get("Content-Type", "") or case.path.startswith(("/docs/", "/engines/"))


@DEVELOPMENT.parametrize()
@BOUNDED
def test_no_server_error_in_development_mode(case):
    _no_server_error_no_html(case, case.call())


@REQUIRED.parametrize()
@BOUNDED
def test_no_server_error_with_client_jwts(case):
    audience = PUBLIC_BASE_URL + unquote(case.formatted_path)
    token = k.sign(k.session_key("ES384"), k.claims(audience))
    _no_server_error_no_html(case, case.call(headers={"Authorization": f"Bearer {token}"}))


def test_the_description_names_every_route_and_only_those():
    document = DEVELOPMENT_APP.test_client().get("/openapi.json").json
    assert document["openapi"].startswith("3.1") and document["servers"] == [{"url": PUBLIC_BASE_URL}]
    routes = {(rule.rule.replace("<", "{").replace(">", "}"), method.lower())
              for rule in DEVELOPMENT_APP.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == routes
