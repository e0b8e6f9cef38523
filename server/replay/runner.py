"""`hemoptysis-cds replay`: send stored hook requests to the service and compare the answers with golden files.

A request file is a CDS Hooks request, optionally with a top-level `_fixture` member that replay strips before
sending:

    "_fixture": {"title": "...", "referenceInstant": "2026-11-23T12:00:00Z", "service": "massive-hemoptysis"}

`referenceInstant` is when the request's clinical data were "now"; every FHIR date in the request is moved by
(now - referenceInstant) before sending (server/replay/timeshift.py). `service` picks one service; without it the
request goes to every service that answers its hook (from discovery). The golden beside it (`x.cards.json`)
holds, per service, what server/replay/golden.py keeps of the answer. Goldens are written only with --update.
"""
from __future__ import annotations

import difflib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from server.replay import golden
from server.replay.progress import progress
from server.replay.target import HttpTarget, InProcessTarget, JwtSigner, Target, TargetError
from server.replay.request_files import FIXTURE_KEY, LoadedRequest, RequestFileError, load_request, request_files

@dataclass
class FileResult:
    path: Path
    outcome: str  # pass | diff | new | updated | error | skipped
    message: str = ""
    diff: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        return not any(r.outcome in ("diff", "new", "error") for r in self.results)

    def summary_line(self) -> str:
        replayed = [r for r in self.results if r.outcome != "skipped"]
        parts = [f"{self.count('pass')} passed", f"{self.count('diff')} differ", f"{self.count('new')} without golden",
                 f"{self.count('error')} failed"]
        if self.count("updated"):
            parts.append(f"{self.count('updated')} goldens updated")
        stale = sum(1 for r in self.results if r.notes)
        if stale:
            parts.append(f"{stale} lack declared prefetch keys (see notes)")
        if self.count("skipped"):
            parts.append(f"{self.count('skipped')} skipped (not hook requests)")
        verdict = "OK" if self.ok else "FAILED"
        return f"replay {verdict}: {len(replayed)} requests: " + ", ".join(parts) + f" ({self.seconds:.2f} s)"


def _services_for(loaded: LoadedRequest, services: list[dict]) -> list[str]:
    wanted = loaded.fixture.get("service")
    known = {s.get("id"): s for s in services}
    if wanted:
        if wanted not in known:
            raise RequestFileError(f"{FIXTURE_KEY}.service '{wanted}' is not in the target's discovery document")
        return [wanted]
    ids = [s["id"] for s in services if s.get("hook") == loaded.body["hook"]]
    if not ids:
        raise RequestFileError(f"no service of the target answers hook '{loaded.body['hook']}'")
    return ids


def missing_prefetch(loaded: LoadedRequest, services: list[dict]) -> list[str]:
    """Prefetch keys a called service declares that the request lacks, unless the fixture omits them on purpose
    (`_fixture.omitsPrefetch`). A stale fixture after a template change shows up here, not as a silent 412."""
    declared = {s["id"]: set(s.get("prefetch") or {}) for s in services}
    present = set(loaded.body.get("prefetch") or {})
    expected_missing = set(loaded.fixture.get("omitsPrefetch") or ())
    notes = []
    for service_id in _services_for(loaded, services):
        missing = sorted(declared.get(service_id, set()) - present - expected_missing)
        if missing:
            notes.append(f"the request lacks prefetch {', '.join(missing)} that '{service_id}' declares; "
                         "rebuild it (fixtures/build_scenarios.py or request-from-bundle)")
    return notes


def replayed_golden(loaded: LoadedRequest, target: Target, services: list[dict]) -> dict:
    answers = {}
    for service_id in _services_for(loaded, services):
        status, body = target.call(service_id, loaded.body)
        answers[service_id] = golden.project_answer(status, body, target.base_url)
    return {"services": answers}


def readable_diff(expected: dict, actual: dict, golden_file: Path) -> str:
    lines = difflib.unified_diff(golden.dumps(expected).splitlines(), golden.dumps(actual).splitlines(),
                                 fromfile=f"golden {golden_file}", tofile="replayed now", lineterm="", n=3)
    return "\n".join(lines)


def replay(paths: Iterable[Path], target: Target, *, update: bool = False, now: datetime | None = None,
           echo: Callable[[str], None] = print) -> ReplayReport:
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    report = ReplayReport()
    services: list[dict] | None = None
    files = request_files(paths)
    for path, named in progress(files, total=len(files), unit="request", desc="replay"):
        try:
            loaded = load_request(path, now)
        except RequestFileError as error:
            outcome = "error" if named or "not a CDS Hooks request" not in str(error) else "skipped"
            report.results.append(FileResult(path, outcome, str(error)))
            continue
        try:
            services = services if services is not None else target.services()
            actual = replayed_golden(loaded, target, services)
        except (RequestFileError, TargetError) as error:
            report.results.append(FileResult(path, "error", str(error)))
            continue
        crashed = sorted(f"{service_id} answered {answer['status']}" for service_id, answer in actual["services"].items()
                         if answer["status"] >= 500)
        if crashed:  # a server error is never a golden, not even with --update
            report.results.append(FileResult(path, "error", "; ".join(crashed)))
            continue
        result = _compare(path, actual, update)
        result.notes = missing_prefetch(loaded, services)
        report.results.append(result)
    report.seconds = time.perf_counter() - started
    for result in report.results:
        label = {"pass": "ok", "diff": "DIFF", "new": "NEW", "updated": "updated", "error": "ERROR",
                 "skipped": "skipped"}[result.outcome]
        echo(f"{label:8} {result.path}" + (f": {result.message}" if result.message else ""))
        for note in result.notes:
            echo(f"         note: {note}")
        if result.diff:
            echo(result.diff)
    echo(report.summary_line())
    return report


def _compare(path: Path, actual: dict, update: bool) -> FileResult:
    golden_file = golden.golden_path(path)
    expected: dict[str, Any] | None = None
    if golden_file.exists():
        try:
            expected = golden.load(golden_file)
        except (ValueError, UnicodeDecodeError) as error:
            if not update:
                return FileResult(path, "error", f"golden {golden_file} is not JSON: {error}")
    if expected == actual:
        return FileResult(path, "pass")
    if update:
        golden_file.write_text(golden.dumps(actual), encoding="utf-8")
        return FileResult(path, "updated", f"wrote {golden_file}")
    if expected is None:
        return FileResult(path, "new", f"no golden {golden_file}; run with --update to record one")
    return FileResult(path, "diff", f"differs from {golden_file}", readable_diff(expected, actual, golden_file))


def command(paths: list[str], *, url: str | None = None, bearer: str | None = None, update: bool = False,
            jwt_key: str | None = None, jwt_issuer: str | None = None, jwt_kid: str | None = None,
            jwt_jku: str | None = None) -> int:
    """`hemoptysis-cds replay`: exit 0 when every request matches its golden, 1 otherwise, 2 on bad usage."""
    signing = [jwt_key, jwt_issuer, jwt_kid]
    problem = None
    if (bearer or any(signing)) and not url:
        problem = "--bearer and --jwt-* are for --url (in-process replay runs in development auth mode)"
    elif bearer and any(signing):
        problem = "give either --bearer or --jwt-key/--jwt-issuer/--jwt-kid, not both"
    elif any(signing) and not all(signing):
        problem = "--jwt-key, --jwt-issuer and --jwt-kid go together"
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        signer = JwtSigner(Path(jwt_key).read_bytes(), jwt_issuer, jwt_kid, jwt_jku) if jwt_key else None
    except (OSError, TargetError) as error:
        print(f"--jwt-key: {error}", file=sys.stderr)
        return 2
    target: Target = HttpTarget(url, bearer, signer=signer) if url else InProcessTarget()
    try:
        report = replay([Path(p) for p in paths], target, update=update)
    finally:
        target.close()
    return 0 if report.ok else 1
