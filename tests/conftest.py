from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.http.app import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from tests import jwt_kit, pg_scratch  # noqa: E402

FHIR_BASE = jwt_kit.FHIR_BASE
PUBLIC_BASE_URL = "https://cds.example.org"


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """A scratch PostgreSQL database for the session (tests/pg_scratch.py), or a skip saying why there is none."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")
    if os.environ.get(pg_scratch.ENV_URL):
        yield os.environ[pg_scratch.ENV_URL]
        return
    reason = pg_scratch.unavailable_reason()
    if reason:
        pytest.skip(f"{reason}, and {pg_scratch.ENV_URL} is not set")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(pg_scratch.local_cluster())
        except (OSError, subprocess.SubprocessError, psycopg.Error) as error:  # a machine that cannot run it: say so
            detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[-300:]
            pytest.skip(f"could not start a local PostgreSQL cluster: {error} {detail}")
        yield url


@pytest.fixture
def postgres_url(postgres_session_url) -> str:
    """The scratch database with its tables dropped: each test starts from an empty schema."""
    pg_scratch.drop_tables(postgres_session_url)
    return postgres_session_url


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


@pytest.fixture
def site_client(settings, tmp_path):
    """A client of a service configured with a site formulary: site_client(["pcc_4f", ...]) (README "Formulary")."""
    from dataclasses import replace

    def make(stocked: list[str], site: str = "Test site"):
        path = tmp_path / "formulary.toml"
        path.write_text(f"site = {site!r}\nstocked = {stocked!r}\n", encoding="utf-8")
        app = create_app(replace(settings, formulary_file=str(path)))
        app.test_client_class = SignedClient
        return app.test_client()
    return make


ALL_STOCKED = ["pcc_4f", "vitamin_k", "idarucizumab", "andexanet", "apcc", "protamine", "desmopressin", "plasma"]
