"""The card gallery: every scenario of the fixture library run through the live engine when the page loads.

Scenarios are discovered from the folders at each load (a new family appears without a change here), their dates
moved to now as replay does, and each request goes through a private development-mode instance of this same app
(request validation, prefetch, engine, cards) with a throw-away database, so a committee reviews what the service
answers today, never a stored copy. Its answer is also compared with the scenario's golden.
"""
from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from server.config import Settings
from server.replay import golden
from server.replay.request_files import RequestFileError, load_request

DEFAULT_SCENARIOS = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"
_running = threading.local()


class _QuietWhileRunning(logging.Filter):
    """The private instance's lines ("call refused" for a scenario whose golden is a 412, ...) are about fixtures,
    not about this service's callers: dropped on the thread running the gallery, kept everywhere else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_running, "active", False)


class GalleryBusy(Exception):
    """A gallery run is already under way in this process."""


@dataclass
class ServiceAnswer:
    service_id: str
    status: int
    cards: list[dict]
    problem: str = ""  # the OperationOutcome's text when the status is not 200
    golden: str = "no golden"  # matches golden | differs from golden | no golden


@dataclass
class Scenario:
    family: str
    name: str
    title: str
    covers: list[str]
    record: list[dict] = field(default_factory=list)  # the record summarised (record_summary below)
    context: dict = field(default_factory=dict)
    answers: list[ServiceAnswer] = field(default_factory=list)
    error: str = ""

    @property
    def anchor(self) -> str:
        return f"{self.family}-{self.name}".replace("/", "-")


def scenario_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if not golden.is_golden(p))


# ------------------------------------------------------------------------------------------ the record summarised
def _concept(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or ():
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or f"{coding.get('system', '')}|{coding.get('code')}")
    return ""


def _quantity(value: Any) -> str:
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']} {value.get('unit') or value.get('code') or ''}".strip()
    return ""


def _observation_value(resource: dict) -> str:
    for key in ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger"):
        if key in resource:
            value = resource[key]
            return _quantity(value) or _concept(value) or str(value)
    parts = [f"{_concept(c.get('code'))} {_quantity(c.get('valueQuantity'))}".strip()
             for c in resource.get("component") or () if isinstance(c, dict)]
    return "; ".join(part for part in parts if part)


def _when(resource: dict) -> str:
    for key in ("effectiveDateTime", "onsetDateTime", "authoredOn", "recordedDate", "issued", "birthDate"):
        if isinstance(resource.get(key), str):
            return resource[key]
    period = resource.get("effectivePeriod") or {}
    return period.get("start", "") if isinstance(period, dict) else ""


def describe(resource: dict) -> dict:
    """One line a reviewer reads: the resource's kind, what it is, its value and when."""
    kind = resource.get("resourceType", "?")
    what = (_concept(resource.get("code")) or _concept(resource.get("medicationCodeableConcept"))
            or _concept(resource.get("type")))
    value = ""
    if kind == "Observation":
        value = _observation_value(resource)
    elif kind == "Patient":
        what = f"{resource.get('gender', 'gender not recorded')}, born {resource.get('birthDate', 'date not recorded')}"
    elif kind in ("MedicationRequest", "MedicationStatement"):
        value = resource.get("status", "")
    elif kind == "Condition":
        value = _concept(resource.get("clinicalStatus")) or _concept(resource.get("verificationStatus"))
    elif kind == "QuestionnaireResponse":
        what = f"{len(resource.get('item') or ())} answers"
    return {"type": kind, "id": resource.get("id", ""), "what": what, "value": value, "when": _when(resource)}


def record_summary(prefetch: Any) -> list[dict]:
    rows: list[dict] = []
    for key, value in (prefetch or {}).items():
        if not isinstance(value, dict):
            continue
        resources = ([e.get("resource") for e in value.get("entry") or () if isinstance(e, dict)]
                     if value.get("resourceType") == "Bundle" else [value])
        rows += [{"key": key, **describe(r)} for r in resources if isinstance(r, dict)]
    return rows


# ------------------------------------------------------------------------------------------ running the engine
class Gallery:
    def __init__(self, settings: Settings, make_app: Callable[[Settings], Any]):
        self._make_app = make_app  # create_app, passed in: the app module builds the pages, so it is not imported here
        self.root = Path(settings.gallery_dir) if settings.gallery_dir else DEFAULT_SCENARIOS
        self._public_base_url = settings.public_base_url
        self._engine_base_url = settings.engine_base_url
        self._client = None
        self._lock = threading.Lock()  # one test client, shared by a worker's threads

    def _engine_client(self):
        """A development-mode instance of this app, made once: its links use the real public URL, it counts no
        metrics, writes a throw-away database and calls no FHIR server back."""
        if self._client is None:
            directory = tempfile.mkdtemp(prefix="hemoptysis-cds-gallery-")
            settings = Settings.from_env({
                "HEMOPTYSIS_CDS_AUTH_MODE": "development",
                "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{directory}/gallery.sqlite3",
                "HEMOPTYSIS_CDS_SQLITE_SYNCHRONOUS": "OFF",
                "HEMOPTYSIS_CDS_PUBLIC_BASE_URL": self._public_base_url,
                "HEMOPTYSIS_CDS_ENGINE_BASE_URL": self._engine_base_url,
                "HEMOPTYSIS_CDS_FHIR_ALLOWED_SERVERS": "",
                "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": f"{directory}/audit.key",
                "HEMOPTYSIS_CDS_METRICS_ENABLED": "false",
            })
            logging.getLogger("hemoptysis_cds").addFilter(_QuietWhileRunning())
            self._client = self._make_app(settings).test_client()
        return self._client

    def run(self, family: str | None = None) -> list[Scenario]:
        """Every scenario run now. One run at a time per process: the page is open (it holds fixtures only) and
        costs about a second of CPU, so a second load while one runs is refused (GalleryBusy), never queued."""
        now = datetime.now(timezone.utc)
        if not self._lock.acquire(blocking=False):
            raise GalleryBusy()
        _running.active = True
        try:
            client = self._engine_client()
            services = client.get("/cds-services").get_json()["services"]
            return [self._one(path, now, client, services) for path in scenario_files(self.root)
                    if family is None or path.parent.relative_to(self.root).as_posix() == family]
        finally:
            _running.active = False
            self._lock.release()

    def families(self) -> list[str]:
        return sorted({p.parent.relative_to(self.root).as_posix() for p in scenario_files(self.root)})

    def _one(self, path: Path, now: datetime, client, services: list[dict]) -> Scenario:
        scenario = Scenario(family=path.parent.relative_to(self.root).as_posix(), name=path.stem, title=path.stem,
                            covers=[])
        try:
            loaded = load_request(path, now)
        except RequestFileError as error:
            scenario.error = str(error)
            return scenario
        fixture = loaded.fixture
        scenario.title = str(fixture.get("title") or path.stem)
        scenario.covers = [str(c) for c in fixture.get("covers") or ()]
        scenario.context = loaded.body.get("context") or {}
        scenario.record = record_summary(loaded.body.get("prefetch"))
        wanted = fixture.get("service")
        ids = [s["id"] for s in services if (s["id"] == wanted if wanted else s["hook"] == loaded.body["hook"])]
        expected = self._golden(path)
        for service_id in ids:
            response = client.post(f"/cds-services/{service_id}", data=json.dumps(loaded.body),
                                   content_type="application/json")
            body = response.get_json(silent=True) or {}
            answer = ServiceAnswer(service_id, response.status_code, list(body.get("cards") or ()))
            if response.status_code != 200:
                answer.problem = "; ".join(str(i.get("diagnostics", "")) for i in body.get("issue") or ())
            if expected is not None:
                projected = golden.project_answer(response.status_code, body, self._public_base_url)
                answer.golden = ("matches golden" if expected.get("services", {}).get(service_id) == projected
                                 else "differs from golden")
            scenario.answers.append(answer)
        return scenario

    @staticmethod
    def _golden(path: Path) -> dict | None:
        golden_file = golden.golden_path(path)
        try:
            return golden.load(golden_file) if golden_file.exists() else None
        except ValueError:
            return None


def order_summary(resource: Any) -> str:
    """A suggestion's order as the clinician signs it: its kind, what, dose, and status/intent."""
    if not isinstance(resource, dict):
        return ""
    kind = resource.get("resourceType", "")
    what = (_concept(resource.get("code")) or _concept(resource.get("medicationCodeableConcept"))
            or _concept(resource.get("category", [{}])[0] if resource.get("category") else None))
    doses = [d.get("text") for d in resource.get("dosageInstruction") or () if isinstance(d, dict) and d.get("text")]
    parts = [kind, what, "; ".join(doses), "/".join(v for v in (resource.get("status"), resource.get("intent")) if v)]
    return " · ".join(part for part in parts if part)
