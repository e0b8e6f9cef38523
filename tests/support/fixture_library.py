"""The fixture library's hook requests, as tests replay them offline."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from server.replay import golden
from server.replay.request_files import load_request

SCENARIOS = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"


def offline_requests() -> Iterator[tuple[str, dict]]:
    """(name under fixtures/scenarios, request body) for every fixture request, times moved to now and without
    fhirServer: an incomplete prefetch is then answered 412 and no test reaches out to a FHIR server."""
    now = datetime.now(timezone.utc)
    for path in sorted(SCENARIOS.rglob("*.json")):
        if golden.is_golden(path):
            continue
        body = load_request(path, now).body
        body.pop("fhirServer", None)
        yield path.relative_to(SCENARIOS).as_posix(), body
