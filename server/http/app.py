"""The Flask application: discovery, service calls, feedback, health, and the documents cards link to."""
from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import cast

import requests
from flask import Flask, Response, request
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.formulary import load_formulary
from cql_equivalents.tables import tables
from cql_equivalents.terminology import load_site_terminology
from hooks import SERVICES, install_site_terminology
from hooks.cards import answer_guard
from hooks.service import Evaluation, LinkSettings

from server.run.cpu_slot import computing
from server.config import Settings
from server.fhir import prefetch
from server.http import metrics as metrics_module
from server.http.body_reader import read_capped
from server.http.errors import ApiError, operation_outcome
from server.http.jsonio import dumps, parse_body
from server.http.pages import DOCS_DIR, create_pages
from server.http.request_models import CONTEXT_MODELS, FeedbackRequest, HookRequest, validated
from server.http.response_notes import data_not_read
from server.security.call_guard import DEVELOPMENT_HEADER, CallGuard, CallRecord
from server.security.fhir_access import allowed_fhir_servers, fhir_server_usable
from server.security.tokens import build_verifier
from server.http import feedback_bounds
from server.storage.audit import AuditTrail, load_audit_key
from server.storage.store import FeedbackRefused, Store

log = logging.getLogger("hemoptysis_cds")
JSON_TYPES = ("application/json", "application/fhir+json")


def _json(data, status: int = 200) -> Response:
    return Response(dumps(data), status=status, mimetype="application/json")




def _openapi_document(public_base_url: str) -> bytes | None:
    """docs/openapi.json (OpenAPI 3.1, committed), with this deployment's URL as its server."""
    path = DOCS_DIR / "openapi.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    document["servers"] = [{"url": public_base_url}]
    return dumps(document)


def create_app(settings: Settings | None = None, store: Store | None = None,
               http_session: requests.Session | None = None) -> Flask:
    settings = settings or Settings.from_env()
    store = store or Store(settings.database_url, settings.sqlite_synchronous)
    session = http_session or requests.Session()
    links = LinkSettings(settings.public_base_url, settings.engines_url, settings.smart_app_url,
                         settings.smart_app_label)
    tables()  # load and check the clinical tables at start, not on the first call
    formulary = load_formulary(settings.formulary_file)  # a bad site file stops the service here, with its reason
    # the site's ConceptMap, checked in full now: an invalid map raises TerminologyError and the service does not start
    install_site_terminology(load_site_terminology(settings.concept_map_file))
    verifier = build_verifier(settings, session)  # None in development mode
    audit = AuditTrail(store.engine, load_audit_key(settings.audit_key, settings.audit_key_file))
    guard = CallGuard(verifier, audit, store, settings.public_base_url)

    app = Flask("hemoptysis_cds")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["hemoptysis_cds"] = {"settings": settings, "store": store, "audit": audit, "verifier": verifier,
                                        "links": links, "formulary": formulary}
    metrics = metrics_module.Metrics(SERVICES) if settings.metrics_enabled else None
    fhir_session = metrics_module.ObservedSession(session, metrics) if metrics else session

    def require_audit_reader() -> None:
        """An audit read (feedback, analytics, metrics): in 'required' mode only a client marked audit_reader."""
        call = guard.authenticate("audit-read")
        if not call.caller.development and not call.caller.client.audit_reader:
            raise ApiError(403, "this client may not read the audit trail")
        guard.commit(call)

    app.register_blueprint(create_pages(settings, store, require_audit_reader, create_app))
    if metrics:
        metrics_module.install(app, metrics, require_audit_reader)

    def body_json(limit: int = settings.max_body_bytes):
        content_type = (request.mimetype or "").lower()
        if content_type and content_type not in JSON_TYPES:
            raise ApiError(415, f"Content-Type {content_type} is not supported; send application/json")
        return parse_body(read_capped(request.stream, request.content_length, limit))

    def feedback_json():
        body = body_json(min(feedback_bounds.MAX_FEEDBACK_BYTES, settings.max_body_bytes))
        feedback_bounds.check_depth(body)
        return body

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        guard.refused(error.status, f"http-{error.status}")
        response = _json(error.outcome(), error.status)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        guard.refused(error.code or 500, f"http-{error.code}")
        message = {413: f"the request body is larger than {settings.max_body_bytes} bytes"}.get(
            error.code, error.description or error.name)
        response = _json(operation_outcome(error.code or 500, message), error.code or 500)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:  # RFC 9110 §15.5.6: a 405 MUST say Allow
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(SQLAlchemyError)
    def _storage_error(error: SQLAlchemyError):
        # The call cannot be recorded (disk full, database down): nothing is answered that was not committed.
        log.error("storage error on %s %s", request.method, request.path,
                  extra={"fields": {"error": type(error).__name__}})
        guard.refused(503, f"storage-{type(error).__name__}"[:100])
        response = _json(operation_outcome(503, "the service cannot record this call now (storage unavailable); "
                                                "nothing was stored; try again"), 503)
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        guard.refused(500, f"internal-{type(error).__name__}")
        return _json(operation_outcome(500, "internal error; the failure was logged"), 500)

    @app.after_request
    def _cors(response: Response) -> Response:
        if guard.development:
            response.headers[DEVELOPMENT_HEADER[0]] = DEVELOPMENT_HEADER[1]
        origin = request.environ.get("HTTP_ORIGIN")  # what request.headers.get("Origin") reads, without the Headers
        allowed = settings.cors_origins
        if origin and ("*" in allowed or origin in allowed):
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Access-Control-Max-Age"] = "600"
            if "*" not in allowed:
                response.headers["Vary"] = "Origin"
        return response

    @app.get("/cds-services")
    def discovery():
        return _json({"services": [service.discovery() for service in SERVICES.values()]})

    def timed(phase: str, service_id: str):
        """The prefetch / engine latency histograms (a no-op when metrics are off)."""
        if metrics is None:
            return nullcontext()
        return metrics.phase(metrics.prefetch_seconds if phase == "prefetch" else metrics.engine_seconds, service_id)

    def service_or_404(service_id: str):
        service = SERVICES.get(service_id)
        if service is None:
            raise ApiError(404, f"no CDS service '{service_id}'; GET /cds-services lists them")
        return service

    def read_hook_request(service, call: CallRecord) -> HookRequest:
        """The body as a hook request this service answers: its hook, and a context valid for that hook."""
        hook_request = validated(HookRequest, body_json())
        call.entry.hook, call.entry.hook_instance = hook_request.hook, hook_request.hookInstance
        if hook_request.hook != service.hook:
            raise ApiError(400, f"service '{service.id}' answers hook '{service.hook}', not '{hook_request.hook}'",
                           [("hook", "wrong hook for this service")])
        validated(CONTEXT_MODELS[service.hook], hook_request.context, prefix="context")
        return hook_request

    def usable_fhir_servers(call: CallRecord, hook_request: HookRequest) -> tuple[str, ...]:
        """The FHIR bases this call may fetch from (security/fhir_access.py)."""
        fhir_servers = allowed_fhir_servers(call.caller, settings)
        if not call.caller.development and hook_request.fhirServer and not fhir_server_usable(hook_request.fhirServer,
                                                                                              fhir_servers):
            # Refused even when prefetch is complete: a client naming another FHIR server is misconfigured or hostile.
            raise ApiError(403, "fhirServer is not the FHIR server registered for this client",
                           [("fhirServer", "not this client's FHIR server")])
        return fhir_servers

    def patient_pool(service, call: CallRecord, hook_request: HookRequest, fhir_servers: tuple[str, ...]):
        """The prefetch, completed from fhirServer where it lacks keys, as one patient's data; 412 when any of it
        is another patient's."""
        with timed("prefetch", service.id):
            resolved = prefetch.resolve(service, hook_request, settings, fhir_session, fhir_servers,
                                        before_fetch=lambda: guard.claim(call))
        pool = pool_from_values(resolved.values, patient_id=hook_request.context.get("patientId"))
        pool.problems.extend(resolved.unavailable)  # optional keys that could not be had: named on the cards
        if pool.foreign_patients:  # data sent as this patient's are another's: none of it can be trusted
            call.entry.reason = "foreign-patient"
            raise ApiError(412, "the data sent for context.patientId include another patient: "
                           + ", ".join(sorted(set(pool.foreign_patients))) + "; no card can be trusted",
                           [("prefetch", f"{reference} is not context.patientId") for reference in sorted(set(pool.foreign_patients))],
                           code="conflict")
        return pool

    def answer_for(service, hook_request: HookRequest, pool) -> dict:
        """The service's cards, guarded as one answer, and a note on what was not read when there is no card."""
        evaluation = Evaluation(hook_request.hook, hook_request.context, pool, datetime.now(timezone.utc), links,
                                formulary)
        with timed("engine", service.id):
            cards = answer_guard.enforce(service.evaluate(evaluation))  # no card offers what another advises against
        answer: dict = {"cards": cards}
        note = None if cards else data_not_read(evaluation.pool)
        if note:
            answer["extension"] = note
        return answer

    def record_answer(service, call: CallRecord, hook_request: HookRequest, cards: list[dict]) -> None:
        """The cards issued and the audit row, committed together before the answer goes out."""
        call.entry.patient_hash = audit.patient_hash(hook_request.context.get("patientId"))
        call.entry.cards = cards
        guard.commit(call, lambda connection: store.record_issued(service.id, hook_request.hookInstance, cards,
                                                                  connection=connection))

    @app.post("/cds-services/<service_id>")
    def call_service(service_id: str):
        with computing():  # one call computes at a time per process; a FHIR fetch lets go (server/run/cpu_slot.py)
            call = guard.authenticate("service", service_id)
            service = service_or_404(service_id)
            hook_request = read_hook_request(service, call)
            pool = patient_pool(service, call, hook_request, usable_fhir_servers(call, hook_request))
            answer = answer_for(service, hook_request, pool)
            record_answer(service, call, hook_request, answer["cards"])
            return _json(answer)

    @app.post("/cds-services/<service_id>/feedback")
    def post_feedback(service_id: str):
        call = guard.authenticate("feedback", service_id)
        service = service_or_404(service_id)
        feedback = validated(FeedbackRequest, feedback_json())
        items = [item.stored() for item in feedback.feedback]
        call.entry.feedback_items = len(items)
        try:
            stored = guard.commit(call, lambda connection: store.record_feedback(service.id, items,
                                                                                 connection=cast(Connection, connection)),
                                  core=True)  # its check reads through Core: a Core Connection
        except FeedbackRefused as refused:
            raise ApiError(400, f"feedback refused: {refused}", refused.problems) from None
        if metrics:
            metrics.observe_feedback(service.id, items, store.card_facts({item["card"] for item in items}))
        return _json({"received": len(items), "stored": stored})

    @app.get("/audit/feedback/<card_uuid>")
    def read_feedback(card_uuid: str):
        require_audit_reader()
        return _json({"card": card_uuid, "feedback": store.feedback_for(card_uuid)})

    @app.get("/livez")
    def livez():
        # Liveness: the process answers. Not the database: a full disk must take the instance out of rotation
        # (/healthz), not restart it in a loop.
        return _json({"status": "alive"})

    @app.get("/healthz")
    def healthz():
        try:
            store.probe_commit()  # ready only if a commit succeeds now: reading alone passes with the disk full
        except Exception as error:  # noqa: BLE001 - any database failure makes the instance unready
            log.error("health check: the database cannot commit", extra={"fields": {"error": type(error).__name__}})
            return _json({"status": "unavailable", "database": "cannot commit"}, 503)
        return _json({"status": "ok", "services": sorted(SERVICES)})

    openapi = _openapi_document(settings.public_base_url)

    @app.get("/openapi.json")
    def openapi_description():
        if openapi is None:
            raise ApiError(404, "the OpenAPI description is not installed with this build")
        return Response(openapi, mimetype="application/json")

    return app
