from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.app import create_app  # noqa: E402
from server.config import Settings  # noqa: E402

FHIR_BASE = "https://ehr.example.org/fhir"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/cds.sqlite3", fhir_allowed_servers=(FHIR_BASE,),
                    public_base_url="https://cds.example.org", sqlite_synchronous="NORMAL")


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()
