"""Every card of every fixture in fixtures/ (the replay library), answered by the real app, checked against the
CDS Hooks 2.0 response rules (tests/cds_validator.py) and every suggested resource against FHIR R4."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from server.replay.request_files import load_request, request_files
from server.replay.runner import _services_for
from tests.cds_validator import fhir_problems, response_problems

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REQUESTS = [path for path, _ in request_files([FIXTURES])]


def test_the_fixture_library_is_there():
    assert len(REQUESTS) >= 30


@pytest.mark.parametrize("path", REQUESTS, ids=[str(p.relative_to(FIXTURES)) for p in REQUESTS])
def test_every_fixture_card_conforms(client, path):
    loaded = load_request(path, datetime.now(timezone.utc))
    services = client.get("/cds-services").json["services"]
    for service_id in _services_for(loaded, services):
        response = client.post(f"/cds-services/{service_id}", json=loaded.body)
        if response.status_code != 200:  # fixtures of refused calls (server not allowed, prefetch missing)
            assert 400 <= response.status_code < 500 and response.json["resourceType"] == "OperationOutcome"
            continue
        assert response_problems(response.json) == []
        for card in response.json["cards"]:
            for suggestion in card.get("suggestions", ()):
                for action in suggestion["actions"]:
                    if "resource" in action:
                        assert fhir_problems(action["resource"], suggestion["label"]) == []
