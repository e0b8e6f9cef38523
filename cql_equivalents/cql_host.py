"""Runs the CQL libraries on the reference JavaScript engine (cql-execution + cql-exec-fhir), as a host would.

The translation (cql/node/translate.mjs) writes the ELM to cql/build/elm; `run_cases` sends many patients to
ONE Node process (cql/node/run.mjs): starting Node and loading the ELM costs more than one patient does.
Used by the agreement test (tests/engine/test_cql_agreement.py) and the benchmark; production runs the Python.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from . import fhir_valid
from .fhir_select import ResourcePool, pool_from_values

REPO = Path(__file__).resolve().parents[1]
CQL_DIR = REPO / "cql"
ENTRY_LIBRARY = "MassiveHemoptysisEngine"


class CqlToolchainMissing(RuntimeError):
    """Node or the npm packages are not installed (run `npm ci`, which `make test` does)."""


def node() -> str:
    found = shutil.which("node")
    if found is None or not (REPO / "node_modules" / "cql-execution").is_dir():
        raise CqlToolchainMissing("node and `npm ci` (package-lock.json) are needed to run the CQL")
    return found


def _valid_fhir(resource: dict) -> bool:
    """A CQL engine is handed valid FHIR, as a FHIR server holds: checking the JSON (a number sent as a string, a
    null member, repeated names) is the host's job, done here by the same rule the Python readers apply."""
    try:
        model = get_fhir_model_class(resource.get("resourceType"))
    except (KeyError, ValueError, TypeError):
        return False
    return not fhir_valid.problem(model, resource)


def bundle_of(pool: ResourcePool) -> dict:
    """The valid resources sent, as one collection Bundle (the patient source of cql-exec-fhir)."""
    entries = [{"resource": resource} for resources in pool.by_type.values() for resource in resources
               if resource.get("resourceType") != "OperationOutcome" and _valid_fhir(resource)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def bundle_from_prefetch(prefetch: Mapping[str, Any]) -> dict:
    return bundle_of(pool_from_values(prefetch))


def translate(timeout: float = 600) -> dict:
    """Translate every library; returns cql/build/translation.json (errors and warnings per library)."""
    report_path = CQL_DIR / "build" / "translation.json"
    report_path.unlink(missing_ok=True)  # a crash must not leave the report of an earlier run to be read
    completed = subprocess.run([node(), str(CQL_DIR / "node" / "translate.mjs")], cwd=REPO, capture_output=True,
                               text=True, timeout=timeout)
    if not report_path.exists():
        raise RuntimeError(f"the CQL translation did not run: {completed.stderr[-2000:]}")
    report = json.loads(report_path.read_text())
    report["exit_code"] = completed.returncode
    return report


def run_cases(cases: Iterable[tuple[str, str, dict]], library: str = ENTRY_LIBRARY, timeout: float = 600) -> dict:
    """(id, now ISO instant, bundle) for each patient -> {"milliseconds", "results": {id: {define: value}}}."""
    request = {"library": library, "cases": [{"id": i, "now": now, "bundle": bundle} for i, now, bundle in cases]}
    completed = subprocess.run([node(), str(CQL_DIR / "node" / "run.mjs")], cwd=REPO, input=json.dumps(request),
                               capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"cql-execution failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)
