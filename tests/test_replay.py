"""`hemoptysis-cds replay` and `request-from-bundle`, driven through the command line as a user runs them."""
from __future__ import annotations

import json
import shutil
import threading
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from werkzeug.serving import make_server

from hooks import SERVICES
from server.replay import golden
from server.http.app import create_app
from server.cli import main
from server.replay.request_files import load_request
from server.replay.runner import replay
from server.replay.target import InProcessTarget
from server.replay.timeshift import shift_value

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SCENARIOS = FIXTURES / "scenarios"
WARFARIN = SCENARIOS / "antithrombotics" / "vka-warfarin-massive.json"


def _copy_scenario(source: Path, into: Path) -> Path:
    """A scenario copied with a golden recorded now, so these tests check the mechanism whatever the cards say
    today (test_replay_of_the_fixture_library_passes checks the committed goldens)."""
    copied = into / source.name
    shutil.copy(source, copied)
    target = InProcessTarget()
    try:
        replay([copied], target, update=True, echo=lambda line: None)
    finally:
        target.close()
    return copied


def test_replay_of_the_fixture_library_passes(capsys):
    assert main(["replay", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("replay OK: ")
    replayed = int(summary.split(": ")[1].split()[0])
    assert replayed == len([p for p in SCENARIOS.rglob("*.json") if not golden.is_golden(p)]) >= 30
    assert f"{replayed} passed, 0 differ, 0 without golden, 0 failed" in summary
    with capsys.disabled():
        print(f"\n{summary}")


def test_the_library_covers_what_the_issue_asks_for():
    covers = set()
    for path in SCENARIOS.rglob("*.json"):
        if not golden.is_golden(path):
            covers.update(json.loads(path.read_text())["_fixture"]["covers"])
    families = {"escalation", "first-line", "undetermined", "reversal", "sibling-engines"}
    classes = {f"class:{name}" for name in ("vka", "ufh", "lmwh-enoxaparin", "lmwh-other", "ufh-or-lmwh",
                                            "pentasaccharide", "doac-xa", "doac-xa-edoxaban", "doac-iia",
                                            "parenteral-dti", "antiplatelet", "thrombolytic")}
    populations = {f"population:{name}" for name in ("dah-vasculitis", "cf-bronchiectasis", "post-tb-mycetoma",
                                                     "malignancy", "iatrogenic-pa-rupture", "anticoagulated-pe")}
    data = {"frame-gate", "stale-data", "missing-data", "unit-variants", "entered-in-error", "nothing-to-say"}
    assert families | classes | populations | data <= covers, sorted((families | classes | populations | data) - covers)
    goldens = [golden.load(p) for p in SCENARIOS.rglob("*" + golden.GOLDEN_SUFFIX)]
    topics = {card["topic"] for g in goldens for a in g["services"].values() for card in a.get("cards", ())}
    assert {"massive-hemoptysis-escalation", "hemoptysis-first-line", "hemoptysis-missing-physiology",
            "antithrombotic-reversal", "sibling-engines"} <= topics


def test_a_broken_golden_fails_with_a_readable_diff(tmp_path, capsys):
    request = _copy_scenario(WARFARIN, tmp_path)
    golden_file = golden.golden_path(request)
    broken = golden.load(golden_file)
    card = broken["services"]["massive-hemoptysis"]["cards"][1]
    original_summary = card["summary"]
    card["summary"] = "Reverse warfarin now: fresh frozen plasma"
    golden_file.write_text(golden.dumps(broken))

    assert main(["replay", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"DIFF     {request}: differs from {golden_file}" in out
    assert f"--- golden {golden_file}" in out and "+++ replayed now" in out
    assert '-          "summary": "Reverse warfarin now: fresh frozen plasma",' in out
    assert f'+          "summary": "{original_summary}",' in out
    assert out.strip().splitlines()[-1].startswith("replay FAILED: 1 requests: 0 passed, 1 differ")
    assert golden.load(golden_file) == broken  # a failing replay never touches the golden


def test_update_rewrites_goldens_only_when_asked(tmp_path, capsys):
    request = _copy_scenario(WARFARIN, tmp_path)
    golden_file = golden.golden_path(request)
    original = golden_file.read_text()
    golden_file.unlink()
    assert main(["replay", str(request)]) == 1
    assert "NEW      " in capsys.readouterr().out and not golden_file.exists()
    assert main(["replay", str(request), "--update"]) == 0
    assert golden_file.read_text() == original
    assert main(["replay", str(request)]) == 0


def test_a_request_missing_declared_prefetch_keys_is_noted(tmp_path, capsys):
    request = _copy_scenario(WARFARIN, tmp_path)
    body = json.loads(request.read_text())
    del body["prefetch"]["labs"]  # as if the service had gained a prefetch key after the fixture was written
    request.write_text(json.dumps(body))
    assert main(["replay", str(request)]) == 1  # 412 now, where the golden holds cards
    out = capsys.readouterr().out
    assert "note: the request lacks prefetch labs that 'massive-hemoptysis' declares" in out
    assert "1 lack declared prefetch keys (see notes)" in out
    # a fixture that omits keys on purpose says so, and is not noted
    body["_fixture"]["omitsPrefetch"] = ["labs"]
    request.write_text(json.dumps(body))
    main(["replay", str(request)])
    assert "note:" not in capsys.readouterr().out


def test_a_server_error_is_never_recorded_as_a_golden(tmp_path, capsys, monkeypatch):
    request = _copy_scenario(WARFARIN, tmp_path)
    golden_file = golden.golden_path(request)
    before = golden_file.read_text()

    def crash(evaluation):
        raise RuntimeError("engine bug")

    # an engine bug, simulated: the service object (frozen) is swapped for one whose evaluation raises
    monkeypatch.setitem(SERVICES, "massive-hemoptysis", replace(SERVICES["massive-hemoptysis"], evaluate=crash))
    assert main(["replay", str(request), "--update"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR    {request}: massive-hemoptysis answered 500" in out
    assert golden_file.read_text() == before


def test_unreadable_and_foreign_files_are_reported_not_fatal(tmp_path, capsys):
    _copy_scenario(WARFARIN, tmp_path)
    (tmp_path / "broken.json").write_text('{"hook": "patient-view", ')
    (tmp_path / "a-bundle.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    assert main(["replay", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR    {tmp_path / 'broken.json'}: not JSON" in out
    assert f"skipped  {tmp_path / 'a-bundle.json'}: not a CDS Hooks request" in out
    assert "1 passed, 0 differ, 0 without golden, 1 failed" in out
    assert main(["replay", str(tmp_path / "a-bundle.json")]) == 1  # named explicitly: an error, not a skip


def test_a_golden_keeps_what_matters_and_drops_what_changes_every_call():
    card = {
        "uuid": "0b3e7f4c-1111-4222-8333-944455556666", "summary": "Reverse warfarin now", "indicator": "critical",
        "detail": "long Markdown that other layers reword", "selectionBehavior": "any",
        "source": {"label": "hemoptysis-cds", "url": "https://cds.example.org/docs/engine",
                   "topic": {"system": "https://cds.example.org/topics", "code": "antithrombotic-reversal"}},
        "suggestions": [
            {"uuid": "5d0e0a4e-aaaa-4bbb-8ccc-000000000001", "label": "Order 4F-PCC", "isRecommended": True,
             "actions": [{"type": "create", "description": "order", "resource": {"resourceType": "MedicationRequest"}}]},
            {"uuid": "5d0e0a4e-aaaa-4bbb-8ccc-000000000002", "label": "Stop warfarin",
             "actions": [{"type": "delete", "description": "stop", "resourceId": "MedicationRequest/mr-7"}]},
        ],
        "links": [{"label": "Engine", "url": "https://cds.example.org/engines/pulm.pe.core.v1", "type": "absolute"},
                  {"label": "App", "url": "https://smart.example.org/launch", "type": "smart"}],
    }
    assert golden.project_card(card, "https://cds.example.org") == {
        "indicator": "critical", "summary": "Reverse warfarin now", "topic": "antithrombotic-reversal",
        "selectionBehavior": "any",
        "suggestions": [
            {"label": "Order 4F-PCC", "isRecommended": True,
             "actions": [{"type": "create", "resourceType": "MedicationRequest"}]},
            {"label": "Stop warfarin", "actions": [{"type": "delete", "resourceType": "MedicationRequest"}]},
        ],
        "links": [{"url": "{base}/engines/pulm.pe.core.v1", "type": "absolute"},
                  {"url": "https://smart.example.org/launch", "type": "smart"}],
    }
    refused = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found",
                                                              "diagnostics": "prefetch incomplete: vitals"}]}
    assert golden.project_answer(412, refused, "https://cds.example.org") == {"status": 412, "issueCodes": ["not-found"]}


def test_fixture_dates_move_with_the_clock():
    reference = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    later = reference + timedelta(days=400, hours=5)
    original = json.loads(WARFARIN.read_text())
    loaded = load_request(WARFARIN, later)
    assert "_fixture" not in loaded.body
    vitals = loaded.body["prefetch"]["vitals"]["entry"][0]["resource"]
    before = datetime.fromisoformat(original["prefetch"]["vitals"]["entry"][0]["resource"]["effectiveDateTime"].replace("Z", "+00:00"))
    after = datetime.fromisoformat(vitals["effectiveDateTime"].replace("Z", "+00:00"))
    assert after - before == later - reference
    patient = loaded.body["prefetch"]["patient"]
    assert patient["birthDate"] == "1959-04-18"  # 1958-03-14 + 400 days: the age stays the same
    assert patient["id"] == original["prefetch"]["patient"]["id"]  # ids and codes are not dates
    assert loaded.body["hookInstance"] == original["hookInstance"]
    # precision and zone are kept; partial dates are left alone
    delta = timedelta(days=1, hours=2)
    assert shift_value("2026-01-31T23:30:00.250+02:00", delta) == "2026-02-02T01:30:00.250+02:00"
    assert shift_value("2026-01-31", delta) == "2026-02-01"
    assert shift_value("2026-01", delta) == "2026-01" and shift_value("2026", delta) == "2026"


@contextmanager
def serving(make_app):
    """A real HTTP server on loopback around make_app(base_url); records the Authorization headers it receives."""
    holder: dict = {"seen": []}

    def application(environ, start_response):
        holder["seen"].append(environ.get("HTTP_AUTHORIZATION"))
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, application, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    holder["app"] = make_app(base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, holder["seen"]
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_server(settings):
    """The suite's settings with this server's address, no FHIR server to call back, and development auth where
    the settings have an auth mode: the replayed bearer token is an opaque value to pass through, not a JWT."""
    development = {"auth_mode": "development"} if "auth_mode" in {f.name for f in fields(settings)} else {}
    with serving(lambda base: create_app(replace(settings, public_base_url=base, fhir_allowed_servers=(),
                                                 **development))) as served:
        yield served


def test_replay_against_a_running_server_with_a_bearer_token(live_server, tmp_path, capsys):
    base, seen = live_server
    for folder, name in (("antithrombotics", "vka-warfarin-massive"), ("populations", "pe-on-rivaroxaban"),
                         ("data-quality", "prefetch-missing-keys")):
        _copy_scenario(SCENARIOS / folder / f"{name}.json", tmp_path)
    assert main(["replay", str(tmp_path), "--url", f"{base}/cds-services", "--bearer", "replay-token-1"]) == 0
    out = capsys.readouterr().out
    assert "3 passed, 0 differ" in out
    assert seen and set(seen) == {"Bearer replay-token-1"}
    assert "replay-token-1" not in out  # the token is sent, never printed


def test_replay_signs_a_fresh_jwt_per_call_for_a_server_that_requires_one(settings, tmp_path, capsys):
    jwt_kit = pytest.importorskip("tests.jwt_kit")  # the security layer's test keys and clients file
    key = jwt_kit.session_key("ES384")
    pem = tmp_path / "client-key.pem"
    pem.write_bytes(key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    requests_dir = tmp_path / "requests"
    requests_dir.mkdir()
    for folder, name in (("antithrombotics", "vka-warfarin-massive"), ("populations", "cf-massive")):
        _copy_scenario(SCENARIOS / folder / f"{name}.json", requests_dir)
    with serving(lambda base: create_app(replace(settings, public_base_url=base, fhir_allowed_servers=()))) as (base, seen):
        signed = ["replay", str(requests_dir), "--url", base, "--jwt-key", str(pem), "--jwt-issuer", jwt_kit.ISSUER,
                  "--jwt-kid", key.kid]
        assert main(signed) == 0
        assert main(signed) == 0  # again: every token is new, so the replay guard lets each through
        assert "2 passed, 0 differ" in capsys.readouterr().out
        tokens = [header for header in seen if header]
        assert len(tokens) == len(set(tokens)) == 6  # a fresh token for each discovery and service call
        assert main(["replay", str(requests_dir), "--url", base, "--bearer", "not-a-jwt"]) == 1  # refused: 401s
        assert "0 passed, 2 differ" in capsys.readouterr().out


def test_replay_against_an_unreachable_server_fails_cleanly(tmp_path, capsys):
    _copy_scenario(WARFARIN, tmp_path)
    assert main(["replay", str(tmp_path), "--url", "http://127.0.0.1:9"]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "ConnectionError" in out


def _transaction_bundle() -> dict:
    """A Synthea-shaped transaction bundle: references by urn:uuid, BP as the 55284-4 panel."""
    patient, hemoptysis, spo2, bp, inr, weight, med = (f"urn:uuid:0000000{i}-aaaa-4bbb-8ccc-dddddddddddd" for i in range(7))
    subject = {"reference": patient}

    def quantity(value, unit):
        return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}

    def entry(full_url, resource):
        resource["id"] = full_url.removeprefix("urn:uuid:")
        return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}

    when = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    loinc = "http://loinc.org"
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        entry(patient, {"resourceType": "Patient", "gender": "male", "birthDate": "1950-02-01",
                        "name": [{"family": "Bundle", "given": ["Test"]}]}),
        entry(hemoptysis, {"resourceType": "Condition", "subject": subject, "onsetDateTime": when,
                           "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                           "code": {"coding": [{"system": "http://snomed.info/sct", "code": "66857006", "display": "Hemoptysis"}]}}),
        entry(spo2, {"resourceType": "Observation", "status": "final", "subject": subject, "effectiveDateTime": when,
                     "code": {"coding": [{"system": loinc, "code": "2708-6", "display": "Oxygen saturation"}]},
                     "valueQuantity": quantity(87, "%")}),
        entry(bp, {"resourceType": "Observation", "status": "final", "subject": subject, "effectiveDateTime": when,
                   "code": {"coding": [{"system": loinc, "code": "55284-4", "display": "Blood Pressure"}]},
                   "component": [{"code": {"coding": [{"system": loinc, "code": "8480-6"}]}, "valueQuantity": quantity(121, "mm[Hg]")},
                                 {"code": {"coding": [{"system": loinc, "code": "8462-4"}]}, "valueQuantity": quantity(77, "mm[Hg]")}]}),
        entry(inr, {"resourceType": "Observation", "status": "final", "subject": subject, "effectiveDateTime": when,
                    "code": {"coding": [{"system": loinc, "code": "6301-6", "display": "INR"}]},
                    "valueQuantity": quantity(3.4, "{INR}")}),
        entry(weight, {"resourceType": "Observation", "status": "final", "subject": subject, "effectiveDateTime": when,
                       "code": {"coding": [{"system": loinc, "code": "29463-7", "display": "Body weight"}]},
                       "valueQuantity": quantity(70, "kg")}),
        entry(med, {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject,
                    "authoredOn": when, "medicationCodeableConcept": {"coding": [{
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "855332",
                        "display": "Warfarin Sodium 5 MG Oral Tablet"}]}}),
    ]}


def test_request_from_bundle_then_replay(tmp_path, capsys):
    bundle = tmp_path / "synthea-like.json"
    bundle.write_text(json.dumps(_transaction_bundle()))
    request_file = tmp_path / "requests" / "from-bundle.json"
    assert main(["request-from-bundle", str(bundle), "--hook", "patient-view", "-o", str(request_file)]) == 0
    request = json.loads(request_file.read_text())
    assert request["hook"] == "patient-view" and request["context"]["patientId"] == "00000000-aaaa-4bbb-8ccc-dddddddddddd"
    assert set(request["prefetch"]) == set(SERVICES["massive-hemoptysis"].prefetch)  # every template, filled
    assert request["prefetch"]["vitals"]["total"] == 3 and request["prefetch"]["labs"]["total"] == 1
    assert request["prefetch"]["medicationStatements"]["total"] == 0
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    assert condition["subject"]["reference"] == "Patient/00000000-aaaa-4bbb-8ccc-dddddddddddd"  # urn:uuid rewritten
    assert request["_fixture"]["referenceInstant"]

    assert main(["replay", str(request_file), "--update"]) == 0
    cards = golden.load(golden.golden_path(request_file))["services"]["massive-hemoptysis"]["cards"]
    assert cards[0]["topic"] == "massive-hemoptysis-escalation" and cards[0]["indicator"] == "critical"  # SpO2 87 %
    assert "antithrombotic-reversal" in [c["topic"] for c in cards]  # the warfarin order, read from the bundle
    assert main(["replay", str(request_file)]) == 0
    capsys.readouterr()


def test_request_from_bundle_with_several_patients_and_ndjson(tmp_path, capsys):
    lines = []
    for patient_id in ("p-1", "p-2"):
        lines.append({"resourceType": "Patient", "id": patient_id, "birthDate": "1970-01-01"})
        lines.append({"resourceType": "Condition", "id": f"c-{patient_id}", "subject": {"reference": f"Patient/{patient_id}"},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R04.2"}]}})
    ndjson = tmp_path / "export.ndjson"
    ndjson.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json}\n")
    assert main(["request-from-bundle", str(ndjson)]) == 2
    assert "2 patients in the input (p-1, p-2): pick one with --patient" in capsys.readouterr().err
    out_dir = tmp_path / "requests"
    out_dir.mkdir()
    assert main(["request-from-bundle", str(ndjson), "-o", str(out_dir)]) == 0
    err = capsys.readouterr().err
    assert "line 5: not JSON" in err
    built = sorted(p.name for p in out_dir.iterdir())
    assert built == ["export.p-1.json", "export.p-2.json"]
    assert main(["request-from-bundle", str(ndjson), "--patient", "p-2"]) == 0
    request = json.loads(capsys.readouterr().out)
    assert request["context"]["patientId"] == "p-2"
    assert [e["resource"]["id"] for e in request["prefetch"]["conditions"]["entry"]] == ["c-p-2"]
    assert main(["request-from-bundle", str(ndjson), "--hook", "order-sign", "--patient", "p-1"]) == 2
    assert "hook 'order-sign' is not supported" in capsys.readouterr().err
    bad_id = tmp_path / "bad-id.json"
    bad_id.write_text(json.dumps({"resourceType": "Patient", "id": "not_a_fhir_id"}))
    assert main(["request-from-bundle", str(bad_id)]) == 2
    assert "patient id 'not_a_fhir_id' is not a FHIR id" in capsys.readouterr().err
    assert main(["request-from-bundle", str(ndjson), "--patient", "p-9"]) == 2
    assert "patient 'p-9' is not in the input; it holds p-1, p-2" in capsys.readouterr().err
    assert main(["request-from-bundle", str(ndjson), "--patient", "p-1", "--reference-instant", "yesterday"]) == 2
    assert "--reference-instant" in capsys.readouterr().err


def test_local_search_covers_the_date_sorts_prefetch_templates_use():
    from server.replay.local_search import prefetch_for
    subject = {"reference": "Patient/p-1"}
    resources = [
        {"resourceType": "QuestionnaireResponse", "id": "q-old", "status": "completed", "subject": subject, "authored": "2026-01-01T08:00:00Z"},
        {"resourceType": "QuestionnaireResponse", "id": "q-new", "status": "completed", "subject": subject, "authored": "2026-02-01T08:00:00Z"},
        {"resourceType": "Procedure", "id": "pr-1", "status": "completed", "subject": subject, "performedPeriod": {"start": "2025-05-01"}},
        {"resourceType": "MedicationAdministration", "id": "ma-1", "status": "completed", "subject": subject,
         "effectiveDateTime": "2026-01-03T10:00:00Z"},
        {"resourceType": "MedicationAdministration", "id": "ma-other", "status": "completed",
         "subject": {"reference": "Patient/p-2"}, "effectiveDateTime": "2026-01-03T10:00:00Z"},
        {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active", "intent": "order", "subject": subject,
         "medicationReference": {"reference": "Medication/med-1"}},
        {"resourceType": "Medication", "id": "med-1", "code": {"text": "warfarin 5 mg"}},
        {"resourceType": "Medication", "id": "med-unused", "code": {"text": "paracetamol"}},
    ]
    templates = {
        "administrations": "MedicationAdministration?patient={{context.patientId}}&_sort=-effective-time&_count=50",
        "procedures": "Procedure?patient={{context.patientId}}&_sort=-date&_count=50",
        "answers": "QuestionnaireResponse?patient={{context.patientId}}&_sort=-authored&_count=1",
        "orders": "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
        "unsupported": "Observation?patient={{context.patientId}}&_has:Group:member:_id=g-1",
    }
    values, left_out = prefetch_for(templates, {"patientId": "p-1", "userId": "Practitioner/x"}, resources)
    ids = {key: [entry["resource"]["id"] for entry in value["entry"]] for key, value in values.items()}
    assert ids == {"administrations": ["ma-1"], "procedures": ["pr-1"], "answers": ["q-new"], "orders": ["mr-1", "med-1"]}
    assert values["orders"]["total"] == 1 and values["orders"]["entry"][1]["search"]["mode"] == "include"
    assert left_out == ["unsupported: search parameter _has:Group:member:_id=g-1 is not evaluated locally"]


def test_reference_instant_latest_makes_old_data_current(tmp_path, capsys):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "old-1", "birthDate": "1940-05-05"}},
        {"resource": {"resourceType": "Condition", "id": "c-1", "subject": {"reference": "Patient/old-1"},
                      "recordedDate": "2019-03-01T08:00:00Z",
                      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "66857006"}]}}},
        {"resource": {"resourceType": "Observation", "id": "o-1", "status": "final", "subject": {"reference": "Patient/old-1"},
                      "effectiveDateTime": "2019-03-01T08:30:00Z",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                      "valueQuantity": {"value": 95, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}},
    ]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(bundle))
    assert main(["request-from-bundle", str(path), "--reference-instant", "latest", "-o", str(tmp_path / "r.json")]) == 0
    capsys.readouterr()
    request = json.loads((tmp_path / "r.json").read_text())
    assert request["_fixture"]["referenceInstant"] == "2019-03-01T08:30:00Z"
    now = datetime.now(timezone.utc)
    sent = load_request(tmp_path / "r.json", now).body
    observed = sent["prefetch"]["vitals"]["entry"][0]["resource"]["effectiveDateTime"]
    assert abs(datetime.fromisoformat(observed.replace("Z", "+00:00")) - now) < timedelta(seconds=2)
