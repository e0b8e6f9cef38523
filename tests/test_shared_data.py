"""Every public FHIR / CDS Hooks file in ../shared/data replays through the service without a 5xx.

FHIR bundles, single resources and NDJSON exports become one patient-view request per patient (the
request-from-bundle code); CDS Hooks requests are sent as they are. Files that are not JSON (or not valid JSON,
some on purpose) are reported as skipped, with the reason. The counts of resources read, by type, are printed
and written to var/shared-data-report.json.
"""
from __future__ import annotations

import json
import os
import textwrap
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from hooks import SERVICES
from server.replay.bundle_reading import BundleError, ReadResult, read_text, resources_in, with_server_references
from server.replay.patients import by_patient
from server.replay.request_builder import build_request
from server.http.app import create_app

ROOT = Path(__file__).resolve().parent.parent
# CI clones the repository with shared/ beside it; HEMOPTYSIS_CDS_SHARED_DATA points elsewhere if needed.
SHARED_DATA = Path(os.environ.get("HEMOPTYSIS_CDS_SHARED_DATA", ROOT.parent / "shared" / "data"))
REPORT = ROOT / "var" / "shared-data-report.json"


def _unwrap(document: dict):
    """Resources wrapped in a non-FHIR envelope (AHRQ CQL Services exec: {"data": [...]}) are read as a list."""
    for value in document.values():
        if isinstance(value, list) and value and all(isinstance(i, dict) and "resourceType" in i for i in value):
            return value
    return document


class Walk:
    def __init__(self, client):
        self.client = client
        self.read = Counter()  # resources read, by type
        self.sent = Counter()  # resources sent to the service in prefetch, by type
        self.statuses = Counter()  # answers to the requests built from the data, and to hook requests as they are
        self.cards = Counter()  # cards answered, by topic
        self.raw_statuses = Counter()  # answers to each JSON file's bytes posted as they are
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.requests = 0

    def post(self, service_id: str, body: dict, origin: str, must_succeed: bool) -> None:
        response = self.client.post(f"/cds-services/{service_id}", data=json.dumps(body),
                                    content_type="application/json")
        self.requests += 1
        self.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.cards.update(c["source"]["topic"]["code"] for c in response.get_json()["cards"])
        if response.status_code >= 500 or (must_succeed and response.status_code != 200):
            self.failures.append(f"{origin}: {response.status_code} {response.get_data(as_text=True)[:300]}")

    def raw(self, data: bytes, origin: str) -> None:
        """The file's bytes as a hook request body, whatever they are: bad input gets a 4xx, never a 5xx."""
        response = self.client.post("/cds-services/massive-hemoptysis", data=data, content_type="application/json")
        self.raw_statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.failures.append(f"{origin} posted as is: {response.status_code}")

    def hook_request(self, document: dict, origin: str) -> None:
        """Sent as it is (its own prefetch keys, its fhirServer): a 4xx naming the problem is a fair answer.
        Then its patient data, under this service's prefetch keys: that call must succeed."""
        services = [s.id for s in SERVICES.values() if s.hook == document.get("hook")]
        # a request for a hook no service answers must still get a 4xx, not a crash
        for service_id in services or ["massive-hemoptysis"]:
            self.post(service_id, document, origin, must_succeed=False)
        pairs = [pair for value in (document.get("prefetch") or {}).values() if isinstance(value, dict)
                 for pair in resources_in(value)]
        if pairs:
            self.resources(with_server_references(pairs), f"{origin} (its prefetch data)")

    def resources(self, resources: list[dict], origin: str) -> None:
        self.read.update(r["resourceType"] for r in resources)
        groups = by_patient(resources)
        if not groups:
            self.notes.append(f"{origin}: no resource about a patient ({len(resources)} resources read)")
        for patient_id, items in sorted(groups.items()):
            try:
                request, _ = build_request(items, patient_id, hook="patient-view", services=SERVICES.values(),
                                               title=origin)
            except BundleError as error:  # e.g. a patient id that is not a FHIR id: named, not sent
                self.notes.append(f"{origin}: {error}")
                continue
            request.pop("_fixture")
            for value in request["prefetch"].values():
                for resource, _ in resources_in(value):
                    self.sent[resource["resourceType"]] += 1
            self.post("massive-hemoptysis", request, f"{origin} patient {patient_id}", must_succeed=True)

    def json_file(self, path: Path, origin: str) -> None:
        self.raw(path.read_bytes(), origin)
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError:
            self.skipped[origin] = "not UTF-8 text"
            return
        except json.JSONDecodeError as error:
            self.skipped[origin] = f"not valid JSON (line {error.lineno}: {error.msg})"
            return
        if isinstance(document, dict) and not isinstance(document.get("resourceType"), str):
            document = _unwrap(document)
        if isinstance(document, dict) and "hook" in document and "context" in document:
            self.hook_request(document, origin)
        elif isinstance(document, dict) and ("cards" in document or "services" in document):
            self.skipped[origin] = "a CDS Hooks response or discovery document, not a request"
        else:
            pairs = [pair for item in (document if isinstance(document, list) else [document])
                     for pair in resources_in(item)]
            if not pairs:
                self.skipped[origin] = "JSON without a FHIR resourceType"
                return
            self.resources(with_server_references(pairs), origin)

    def ndjson_directory(self, directory: Path, files: list[Path]) -> None:
        origin = str(directory.relative_to(SHARED_DATA)) + "/*.ndjson"
        read = ReadResult()
        for file in files:
            read_text(file.read_text(encoding="utf-8-sig"), str(file.relative_to(SHARED_DATA)), read)
        self.notes += read.skipped
        self.resources(read.resources, origin)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data not found at {SHARED_DATA} "
                    "(CI clones the repository with shared/ beside it; or set HEMOPTYSIS_CDS_SHARED_DATA)")
def test_every_shared_file_replays_without_a_server_error(settings, client, capsys):
    # The suite's settings and test client (whatever authentication they carry), with no FHIR server to call
    # back: a request whose prefetch is incomplete gets its 4xx, never a fetch.
    app = create_app(replace(settings, fhir_allowed_servers=()))
    app.test_client_class = type(client)
    client = app.test_client()
    started = time.perf_counter()
    walk = Walk(client)
    ndjson: dict[Path, list[Path]] = {}
    files = sorted(p for p in SHARED_DATA.rglob("*") if p.is_file())
    for path in files:
        origin = str(path.relative_to(SHARED_DATA))
        if path.suffix == ".ndjson":
            ndjson.setdefault(path.parent, []).append(path)  # one export: its files together, grouped by patient
        elif path.suffix == ".json":
            walk.json_file(path, origin)
        else:
            walk.skipped[origin] = f"not JSON ({path.suffix or 'no extension'})"
    for directory, members in sorted(ndjson.items()):
        walk.ndjson_directory(directory, members)
    seconds = time.perf_counter() - started

    report = {
        "shared_data": str(SHARED_DATA), "files": len(files), "seconds": round(seconds, 2),
        "requests": walk.requests, "statuses": {str(k): v for k, v in sorted(walk.statuses.items())},
        "raw_posts": {str(k): v for k, v in sorted(walk.raw_statuses.items())},
        "cards": dict(walk.cards.most_common()),
        "resources_read": dict(walk.read.most_common()), "resources_sent_in_prefetch": dict(walk.sent.most_common()),
        "skipped": walk.skipped, "notes": walk.notes, "failures": walk.failures,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    skipped_reasons = Counter(reason.split(" (line")[0] for reason in walk.skipped.values())
    lines = [
        f"shared data: {len(files)} files read in {seconds:.1f} s; {walk.requests} hook calls, statuses "
        f"{dict(sorted(walk.statuses.items()))}; each JSON file also posted as is: {dict(sorted(walk.raw_statuses.items()))}",
        f"resources read: {sum(walk.read.values())} in {len(walk.read)} types; sent in prefetch: "
        f"{sum(walk.sent.values())}; cards answered: {dict(walk.cards.most_common()) or 'none'}",
        "read (sent) by type: " + ", ".join(f"{t} {n} ({walk.sent.get(t, 0)})" for t, n in walk.read.most_common()),
        f"skipped {len(walk.skipped)} files: " + "; ".join(f"{n} {reason}" for reason, n in skipped_reasons.most_common()),
        f"details: {REPORT}",
    ]
    with capsys.disabled():  # the counts are the point of this test: shown even under pytest -q
        print("\n" + "\n".join(textwrap.fill(line, 118, subsequent_indent="    ") for line in lines))

    assert not walk.failures, "\n".join(walk.failures[:20])
    assert sum(walk.read.values()) > 0 and sum(walk.sent.values()) > 0 and walk.requests > 0
    assert walk.statuses[200] > 0
    assert seconds < 60, f"the shared-data walk took {seconds:.0f} s (budget 60 s)"
    for resource_type in ("Patient", "Observation", "Condition", "MedicationRequest"):
        assert walk.read[resource_type] > 0 and walk.sent[resource_type] > 0, resource_type
