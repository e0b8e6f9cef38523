"""Prometheus metrics at GET /metrics: what operations watch (calls, latency, cards, FHIR call-backs, refusals,
feedback). Labels carry only bounded codes from this service (service ids, topics, indicators, statuses, reason
codes), never patient data, hook instances or anything a caller can make up.

Under gunicorn every worker is its own process, so the counts live in prometheus-client's multiprocess files
(`PROMETHEUS_MULTIPROC_DIR`, set by `prepare_multiprocess_dir` in the master before workers start) and a scrape
sums them across workers. In one process (tests, `serve --dev`) a registry of the app's own keeps them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import requests
from flask import Flask, Response, g

from server.security.call_guard import current_call
from server.storage.store import card_topic

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: a CDS call is budgeted well under a second; FHIR call-backs can take a few.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def prepare_multiprocess_dir() -> str:
    """In the gunicorn master, before any worker imports prometheus_client: a fresh directory for the workers'
    metric files (a configured one is emptied, since files left by a previous run would be summed in)."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        if path.exists():
            for stale in path.glob("*.db"):
                stale.unlink()
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="hemoptysis-cds-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
    return str(path)


def worker_exited(_server, worker) -> None:
    """gunicorn `child_exit` hook: a dead worker's gauges are dropped (its counters stay summed)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def reason_code(reason: str | None) -> str:
    """An auth refusal reason without its detail ('alg-not-allowed (HS256)' -> 'alg-not-allowed'): a bounded set."""
    return (reason or "unknown").split(" (")[0][:40]


def _callback_outcome(response: requests.Response) -> str:
    status = response.status_code
    if status == 200:
        return "ok"
    if 300 <= status < 400:
        return "redirect"
    if status in (401, 403):
        return "refused"
    if status == 404:
        return "not-found"
    return f"http-{status // 100}xx"


class ObservedSession:
    """The FHIR call-backs' HTTP session, counting each GET by outcome; everything else is the wrapped session's."""

    def __init__(self, session: requests.Session, metrics: "Metrics"):
        self._session = session
        self._metrics = metrics

    def get(self, url, **kwargs):
        try:
            response = self._session.get(url, **kwargs)
        except requests.Timeout:
            self._metrics.fhir_callbacks.labels("timeout").inc()
            raise
        except requests.RequestException:
            self._metrics.fhir_callbacks.labels("unreachable").inc()
            raise
        self._metrics.fhir_callbacks.labels(_callback_outcome(response)).inc()
        return response

    def __getattr__(self, name):
        return getattr(self._session, name)


class LabelChildren:
    """One metric's label children, kept per label tuple. prometheus-client's `labels()` takes a lock and
    re-checks and re-converts the values on every call (~3 us each, five or more per CDS call); the tuple is
    looked up here first. The values are the bounded codes above, and prometheus keeps every child it made
    anyway: this holds no more than it does."""

    def __init__(self, metric):
        self.metric = metric
        self._children: dict[tuple, object] = {}

    def labels(self, *values):
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    def __init__(self, services: Iterable[str]):
        from prometheus_client import CollectorRegistry, Counter, Histogram
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # multiprocess: values go to the shared files, collected at scrape time; else an app-local registry
        self._registry = None if self.multiprocess else CollectorRegistry()
        self.services = frozenset(services)

        def counter(name, doc, labels):
            return LabelChildren(Counter(name, doc, labels, registry=self._registry))

        def histogram(name, doc, labels):
            return LabelChildren(Histogram(name, doc, labels, buckets=LATENCY_BUCKETS, registry=self._registry))

        p = "hemoptysis_cds_"
        self.calls = counter(p + "calls", "Service, feedback and audit calls by kind, service and HTTP status",
                             ["kind", "service", "status"])
        self.call_seconds = histogram(p + "call_seconds", "Whole call, from request to answer",
                                      ["kind", "service"])
        self.prefetch_seconds = histogram(p + "prefetch_seconds",
                                          "Prefetch resolution, FHIR call-backs included", ["service"])
        self.engine_seconds = histogram(p + "engine_seconds", "Engine evaluation (cards built)", ["service"])
        self.cards = counter(p + "cards", "Cards returned by service, topic and indicator",
                             ["service", "topic", "indicator"])
        self.fhir_callbacks = counter(p + "fhir_callbacks", "GETs to a client's FHIR server by outcome", ["outcome"])
        self.auth_refusals = counter(p + "auth_refusals", "Calls refused authentication, by reason code", ["reason"])
        self.feedback = counter(p + "feedback", "Feedback items accepted, by card topic, outcome and override reason",
                                ["service", "topic", "outcome", "override_reason"])

    def service_label(self, service_id: str | None) -> str:
        """Only this service's ids become label values: an unknown path is 'unknown', not a new series."""
        if service_id is None:
            return ""
        return service_id if service_id in self.services else "unknown"

    def phase(self, histogram, service_id: str) -> "_Phase":
        """Times the `with` block into `histogram`, however the block ends."""
        return _Phase(self, histogram, service_id)

    def observe_cards(self, service_id: str, cards: Iterable[dict]) -> None:
        for card in cards:
            self.cards.labels(self.service_label(service_id), card_topic(card), card.get("indicator", "none")).inc()

    def observe_feedback(self, service_id: str, items: list[dict], issued: dict[str, dict]) -> None:
        """`issued`: card uuid -> {"topic", "override_codes"} of the cards the items are about."""
        for item in items:
            card = issued.get(item.get("card"), {})
            reason = ((item.get("overrideReason") or {}).get("reason") or {})
            code = ""
            if reason:
                offered = {tuple(pair) for pair in card.get("override_codes", ())}
                # a code the client added in its own system is free text as far as we know: not a label
                code = reason.get("code") if (reason.get("system"), reason.get("code")) in offered else "client-defined"
            self.feedback.labels(self.service_label(service_id), card.get("topic") or "unknown",
                                 item.get("outcome", "unknown"), code).inc()

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self._registry)


class _Phase:
    """Metrics.phase's timer: a class, not a generator context manager (~0.7 against ~3 us, twice a call)."""

    __slots__ = ("_metrics", "_histogram", "_service_id", "_started")

    def __init__(self, metrics: Metrics, histogram, service_id: str):
        self._metrics, self._histogram, self._service_id = metrics, histogram, service_id

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self._histogram.labels(self._metrics.service_label(self._service_id)).observe(
            time.perf_counter() - self._started)


def install(app: Flask, metrics: Metrics, authorize) -> None:
    """Count every guarded call when it ends, and serve GET /metrics (`authorize()` raises when the caller may
    not read it, as for the audit reads)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    @app.before_request
    def _start_clock():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count_call(response: Response) -> Response:
        call = current_call()  # set by CallGuard.authenticate: only service, feedback and audit calls
        if call is None:
            return response
        entry = call.entry
        kind, service = entry.kind, metrics.service_label(entry.service_id)
        metrics.calls.labels(kind, service, str(response.status_code)).inc()
        metrics.call_seconds.labels(kind, service).observe(time.perf_counter() - g.metrics_started)
        if response.status_code == 401:
            metrics.auth_refusals.labels(reason_code(entry.reason)).inc()
        elif response.status_code == 200 and kind == "service":
            metrics.observe_cards(entry.service_id, entry.cards)
        return response

    @app.get("/metrics")
    def scrape():
        authorize()
        return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
