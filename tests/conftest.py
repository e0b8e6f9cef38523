from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.app import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from tests import jwt_kit  # noqa: E402

FHIR_BASE = jwt_kit.FHIR_BASE
PUBLIC_BASE_URL = "https://cds.example.org"


@pytest.fixture
def settings(tmp_path) -> Settings:
    clients_file = jwt_kit.write_clients_file(tmp_path, [jwt_kit.default_client()])
    return Settings(database_url=f"sqlite:///{tmp_path}/cds.sqlite3", fhir_allowed_servers=(FHIR_BASE,),
                    public_base_url=PUBLIC_BASE_URL, sqlite_synchronous="NORMAL",
                    auth_mode="required", clients_file=str(clients_file),
                    audit_key_file=str(tmp_path / "audit.key"))


@pytest.fixture
def app(settings):
    return create_app(settings)


class SignedClient(FlaskClient):
    """A Flask test client that behaves like an EHR's CDS client: every request carries a fresh ES384 JWT with
    `aud` = the exact endpoint URL (public base URL + path), so every test goes through real verification.
    Pass `headers={"Authorization": ...}` to send your own (or an empty string to send none)."""

    def open(self, *args, **kwargs):
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path")
        headers = dict(kwargs.pop("headers", None) or {})
        if isinstance(path, str) and "Authorization" not in headers:
            settings = self.application.extensions["hemoptysis_cds"]["settings"]
            audience = settings.public_base_url + urlsplit(path).path
            token = jwt_kit.sign(jwt_kit.session_key("ES384"), jwt_kit.claims(audience))
            headers["Authorization"] = f"Bearer {token}"
        if headers.get("Authorization") == "":
            del headers["Authorization"]
        return super().open(*args, headers=headers, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = SignedClient
    return app.test_client()
