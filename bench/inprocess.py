"""In-process latency: the real Flask app, called through its WSGI interface as a server calls it
(bench/wsgi_call.py), against the bare `json` parse of the same body (the floor: no service can answer before it
has read the request). werkzeug's test client, which every run before session 5 used, is timed call by call beside
it (`test_client_ms`), so old and new figures compare."""
from __future__ import annotations

import gc
import itertools
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from server.http.app import create_app
from server.config import Settings
from server.run.runtime import tune_garbage_collector
from server.storage.wal_checkpoint import settle

from . import charts
from .stats import Summary, summarise
from .wsgi_call import WsgiCall

SERVICE_URL = "/cds-services/massive-hemoptysis"
TEST_CLIENT_PAIRED_UP_TO = 500  # resources


@dataclass(frozen=True)
class LatencyResult:
    size: int
    body_bytes: int
    requests: int
    errors: int
    cards: int
    service_ms: Summary
    json_parse_ms: Summary
    ratio_p50: float  # service p50 / json parse p50
    sqlite_synchronous: str
    auth: str
    # CPU time this process got / wall time of the timed loop: well under 1.0 means other processes took the
    # cores (the figures are then pessimistic), and SQLite fsync waits show here too.
    cpu_share: float
    # "same": one chart posted again and again (what an EHR does for one patient, and what the per-process
    # memos remember); "new each call": every call another chart (other times and values: nothing remembered
    # about its records, as for a patient the worker has not seen)
    chart: str = "same"
    # with `paired_development`: the development app's latency for the same body, measured call by call between
    # this app's calls (so the difference between the two is not the machine's drift between two runs)
    paired_development_ms: Summary | None = None
    # the same app through werkzeug's test client, timed after each call (development auth only: a signed call
    # cannot be sent twice); what every run before session 5 reported as its in-process figure
    test_client_ms: Summary | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def development_settings(database_dir: Path, synchronous: str, extra: dict[str, str] | None = None) -> Settings:
    """Settings as an operator would set them; unknown variables are ignored until their layer lands."""
    return Settings.from_env({
        "HEMOPTYSIS_CDS_AUTH_MODE": "development",
        "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{database_dir}/bench.sqlite3",
        "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": f"{database_dir}/audit.key",
        "HEMOPTYSIS_CDS_SQLITE_SYNCHRONOUS": synchronous,
        **(extra or {}),
    })


def measure(size: int, repetitions: int, *, synchronous: str = "NORMAL", warmup: int = 5, seed: int = 7,
            headers_for: Callable[[Settings], Callable[[], dict[str, str]]] | None = None,
            settings_extra: Callable[[Path], dict[str, str]] | None = None,
            auth: str = "development", body: bytes | None = None, new_chart_each_call: bool = False,
            paired_development: bool = False) -> LatencyResult:
    """POST the same chart `repetitions` times (or, with `new_chart_each_call`, a chart of the same size made
    for each call, all built before the timed loop); each request is paired with one bare `json.loads` of its
    body, so both see the same machine load. `settings_extra(workdir)` adds settings; `headers_for(settings)`
    gives a function making each request's headers (prepared before the timed loop, e.g. signed tokens).
    `paired_development`: a development-mode app of its own answers the same body after each call, timed too."""
    body = body if body is not None else charts.request_body(size, seed)
    started_at = datetime.now(timezone.utc)
    # each chart `index` seconds older: every record's times (and so its content) differ from every other chart's
    bodies = ([charts.request_body(size, seed, started_at - timedelta(seconds=index))
               for index in range(repetitions + warmup + 1)] if new_chart_each_call else [body])
    with tempfile.TemporaryDirectory(prefix="hemoptysis-bench-") as workdir:
        settings = development_settings(Path(workdir), synchronous, settings_extra(Path(workdir)) if settings_extra else None)
        app = create_app(settings)
        tune_garbage_collector()  # as each gunicorn worker does once its app is loaded (server/cli.py)
        caller = WsgiCall(app, SERVICE_URL)
        # paired with the test client only for small charts (the target of 50 resources is judged there): on a large
        # body a second full call between two timed ones adds its garbage to the collector's work the next timed
        # call pays, and there the test client's own cost is a fraction of a per cent anyway
        test_client = app.test_client() if headers_for is None and size <= TEST_CLIENT_PAIRED_UP_TO else None
        next_headers = headers_for(settings) if headers_for else dict
        companion_dir = Path(workdir) / "paired-development"
        companion_dir.mkdir()
        companion = create_app(development_settings(companion_dir, synchronous)) if paired_development else None
        companion_caller = WsgiCall(companion, SERVICE_URL) if companion else None

        sent = itertools.count()

        def post() -> tuple[int, bytes]:
            return caller.post(bodies[next(sent) % len(bodies)], headers=next_headers())

        def timed(call: Callable[[], bool]) -> tuple[float, bool]:
            started = time.perf_counter()
            answered = call()
            return time.perf_counter() - started, answered

        def through_test_client() -> bool:
            assert test_client is not None
            return test_client.post(SERVICE_URL, data=bodies[-1], content_type="application/json").status_code == 200

        def to_companion() -> bool:
            assert companion_caller is not None
            return companion_caller.post(bodies[-1])[0] == 200

        status, answer = post()
        cards = len(json.loads(answer).get("cards", [])) if status == 200 else 0
        for _ in range(warmup):
            post()
            if companion_caller:
                to_companion()
            if test_client:
                through_test_client()
        service: list[float] = []
        floor: list[float] = []
        paired: list[float] = []
        by_test_client: list[float] = []
        errors = 0 if status == 200 else 1
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(repetitions):
            started = time.perf_counter()
            status, _ = post()
            service.append(time.perf_counter() - started)
            if status != 200:
                errors += 1
            started = time.perf_counter()
            json.loads(bodies[-1])
            floor.append(time.perf_counter() - started)
            if companion_caller:
                took, answered = timed(to_companion)
                paired.append(took)
                errors += 0 if answered else 1
            if test_client:
                took, answered = timed(through_test_client)
                by_test_client.append(took)
                errors += 0 if answered else 1
        cpu_share = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
        for made in (app, companion):
            if made is not None:
                made.extensions["hemoptysis_cds"]["store"].engine.dispose()
        settle()  # the checkpoint thread done with these databases before their directory is removed
    gc.collect()
    service_ms, floor_ms = summarise(service), summarise(floor)
    return LatencyResult(size, len(body), repetitions, errors, cards, service_ms, floor_ms,
                         round(service_ms.p50 / floor_ms.p50, 2), synchronous, auth, round(cpu_share, 2),
                         "new each call" if new_chart_each_call else "same", summarise(paired) if paired else None,
                         summarise(by_test_client) if by_test_client else None)
