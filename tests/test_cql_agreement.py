"""The CQL libraries, run as a CQL author runs them: translated by the reference translator (zero errors, no
warning that is not accepted below), executed on the reference JavaScript engine (cql-execution +
cql-exec-fhir) for every fixture in ONE Node process, and compared with the Python in-process.

The comparison rules (numbers, nulls, lists) and the results not compared yet, with why, are written once in
cql_equivalents/cql_agreement.py (and docs/engine.md, "CQL"). Replaces the old name-parity test (issue 15).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cql_equivalents import cql_agreement
from cql_equivalents.cql_host import CqlToolchainMissing, bundle_from_prefetch, node, run_cases, translate
from tests.cql_agreement_cases import cases as built_cases, scenario_cases, shared_data_cases
from tests.cql_reversal_cases import reversal_cases
from tests.cql_agreement_severity_cases import cases as severity_cases

REPO = Path(__file__).resolve().parent.parent
FIXTURES = sorted(p for p in (REPO / "fixtures" / "scenarios").rglob("*.json") if not p.name.endswith(".cards.json"))
# the public FHIR data the shared-data test replays (CI clones shared/ beside the repository)
SHARED_DATA = Path(os.environ.get("HEMOPTYSIS_CDS_SHARED_DATA", REPO.parent / "shared" / "data"))



def _refused_by_the_service(path: Path) -> bool:
    """A fixture the patient-view service answers with no evaluation at all (its golden is not a 200: e.g. a Patient
    resource with another id is a 412 conflict, a required key missing is a 412): nothing to agree on."""
    golden = path.with_name(path.name[: -len(".json")] + ".cards.json")
    if not golden.exists():
        return False
    answer = json.loads(golden.read_text()).get("services", {}).get("massive-hemoptysis")
    return answer is not None and answer.get("status") != 200


# Translator warnings accepted, each with why. Any other warning fails the suite.
ACCEPTED_WARNINGS: dict[str, str] = {}


@pytest.fixture(scope="session")
def translation():
    try:
        node()
    except CqlToolchainMissing as missing:
        pytest.fail(f"{missing}: `make test` runs `npm ci` first")
    started = time.monotonic()
    report = translate()
    report["seconds"] = time.monotonic() - started
    return report


@pytest.fixture(scope="session")
def cql_run(translation):
    assert translation["exit_code"] == 0, "translation failed"
    requests = {str(path.relative_to(REPO)): json.loads(path.read_text()) for path in FIXTURES
                if not _refused_by_the_service(path)}
    requests.update(built_cases())
    requests.update(reversal_cases())
    requests.update(severity_cases())
    requests.update(scenario_cases())
    if SHARED_DATA.is_dir():
        requests.update(shared_data_cases(SHARED_DATA))
    cases = [(key, cql_agreement.reference_instant(request).isoformat(), bundle_from_prefetch(request.get("prefetch") or {}))
             for key, request in requests.items()]
    started = time.monotonic()
    output = run_cases(cases)
    output["seconds"] = time.monotonic() - started
    return requests, output


def test_every_library_translates_with_zero_errors_and_only_accepted_warnings(translation):
    libraries = translation["libraries"]
    assert len(libraries) >= 15  # the 12 engine libraries, FHIRHelpers and the 2 generated ones
    errors = [f"{name} {e['at']}: {e['text']}" for name, r in libraries.items() for e in r["errors"]]
    assert errors == []
    warnings = [f"{name}: {w['text']}" for name, r in libraries.items() for w in r["warnings"]
                if w["text"] not in ACCEPTED_WARNINGS]
    assert warnings == []


def test_the_generated_libraries_match_the_tables():
    completed = subprocess.run([sys.executable, str(REPO / "cql" / "generate.py"), "--check"], capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_python_and_cql_agree_on_every_fixture(cql_run, capsys):
    requests, output = cql_run
    assert len(FIXTURES) >= 60
    compared, disagreements, skipped = 0, [], {}
    for key, request in requests.items():
        raw = output["results"][key]
        assert raw is not None and "error" not in raw, f"{key}: the CQL did not run: {raw}"
        if "skipped" in raw:  # no Patient resource: cql_agreement.NOT_COMPARED
            skipped.setdefault(raw["skipped"], []).append(key)
            continue
        done, different, skips = cql_agreement.compare(
            cql_agreement.python_results(request), cql_agreement.cql_results(raw),
            cql_agreement.uses_contained_medication(request))
        compared += len(done)
        disagreements += [f"{key}: {line}" for line in different]
        for skip in skips:
            skipped.setdefault(skip, []).append(key)
    with capsys.disabled():
        print(f"\nCQL agreement: {len(FIXTURES)} fixtures + {len(requests) - len(FIXTURES)} built / shared-data patients "
              f"(tests/cql_agreement_cases.py, tests/scenarios.py, {SHARED_DATA.name}/), {compared} "
              f"results compared, {len(disagreements)} disagreements; CQL run {output['seconds']:.1f} s "
              f"({output['milliseconds'] / len(requests):.0f} ms "
              f"per fixture in one Node process); skipped: { {k: len(v) for k, v in skipped.items()} }")
    assert disagreements == [], "\n".join(disagreements)
    assert compared >= 20 * len(requests)  # a result family silently dropped would show here


def test_a_disagreement_is_caught(cql_run):
    """The comparison can fail: a changed CQL value on a real fixture is reported."""
    requests, output = cql_run
    path = next(key for key in requests if key.endswith("massive-hypoxia.json"))
    raw = json.loads(json.dumps(output["results"][path]))
    raw["NEWS2"]["value"] = (raw["NEWS2"]["value"] or 0) + 1
    raw["Current Observations"][0]["value"] += 5
    raw["Severity Level"], raw["Severity Triggers"] = "non-massive", []
    raw["Contraindication Rules"] = [key for key in raw["Contraindication Rules"] if key != "airway_before_imaging"]
    _done, different, _skips = cql_agreement.compare(cql_agreement.python_results(requests[path]),
                                                     cql_agreement.cql_results(raw))
    assert any(line.startswith("NEWS2 value") for line in different)
    assert any(line.startswith("observation ") for line in different)
    assert any(line.startswith("Severity Level: Python 'massive'") for line in different)
    assert any(line.startswith("Severity Triggers: Python ['hypoxia'") for line in different)
    assert any(line.startswith("Rules: ") for line in different)


def test_a_reversal_disagreement_is_caught(cql_run):
    """A dose off by more than its rounding, a withheld product given, or an order the CQL misses are reported."""
    requests, output = cql_run
    key = "built:reversal-vka-in-dic"
    python = cql_agreement.python_results(requests[key])
    raw = json.loads(json.dumps(output["results"][key]))
    assert cql_agreement.compare(python, cql_agreement.cql_results(raw))[1] == []
    pcc = raw["Reversal Plans"][0]["steps"][0]
    assert pcc["withheldBy"] == "pcc_in_dic" and pcc["quantity"] is None  # 4F-PCC contraindicated in DIC
    pcc.update(withheldBy=None, quantity=2000, order="pcc_4f")
    raw["Reversal Orders"] = [o for o in raw["Reversal Orders"] if o["order"] != "vitamin_k_iv"]
    different = cql_agreement.compare(python, cql_agreement.cql_results(raw))[1]
    assert any(line.startswith("reversal plan warfarin") for line in different)
    assert any(line.startswith("Reversal Order Keys") for line in different)
    cap = "built:reversal-vka-inr-above-6"
    raw = json.loads(json.dumps(output["results"][cap]))
    raw["Reversal Plans"][0]["steps"][0]["quantity"] += 2  # beyond one unit of the last decimal kept
    assert any(line.startswith("reversal plan warfarin") for line in cql_agreement.compare(
        cql_agreement.python_results(requests[cap]), cql_agreement.cql_results(raw))[1])


def test_every_result_not_compared_is_listed_in_the_engine_doc():
    doc = (REPO / "docs" / "engine.md").read_text()
    assert [name for name in cql_agreement.NOT_COMPARED if name not in doc] == []


def test_the_fhir_library_folder_matches_the_sources_and_their_elm(translation):
    assert translation["exit_code"] == 0
    completed = subprocess.run([sys.executable, str(REPO / "cql" / "package_libraries.py"), "--check"],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    from fhir.resources.R4B.library import Library
    from fhir.resources.R4B.valueset import ValueSet
    for path in sorted((REPO / "cql" / "fhir").glob("*.json")):  # each one valid FHIR (ids, codes, content)
        resource = json.loads(path.read_text())
        {"Library": Library, "ValueSet": ValueSet}[resource["resourceType"]].model_validate(resource)
    library = json.loads((REPO / "cql" / "fhir" / "Library-MassiveHemoptysisEngine.json").read_text())
    assert {c["contentType"] for c in library["content"]} == {"text/cql", "application/elm+json"}
    assert library["parameter"] == [{"name": "Now", "use": "in", "min": 0, "max": "1", "type": "dateTime"}]
