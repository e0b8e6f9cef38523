"""The Flask application: discovery, service calls, feedback, health, and the documents cards link to."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.tables import tables
from cql_equivalents.terminology import load_site_terminology
from hooks import SERVICES, answer_guard, install_site_terminology
from hooks.service import Evaluation, LinkSettings

from . import docs_page, prefetch
from .audit import AuditTrail, load_audit_key
from .auth import build_verifier
from .call_guard import DEVELOPMENT_HEADER, CallGuard
from .config import Settings
from .errors import ApiError, operation_outcome
from .jsonio import dumps, parse_body
from .request_models import CONTEXT_MODELS, FeedbackRequest, HookRequest, validated
from .runtime import tune_garbage_collector
from .storage import FeedbackRefused, Store

log = logging.getLogger("hemoptysis_cds")
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
JSON_TYPES = ("application/json", "application/fhir+json")


def _json(data, status: int = 200) -> Response:
    return Response(dumps(data), status=status, mimetype="application/json")


def create_app(settings: Settings | None = None, store: Store | None = None,
               http_session: requests.Session | None = None) -> Flask:
    settings = settings or Settings.from_env()
    store = store or Store(settings.database_url, settings.sqlite_synchronous)
    session = http_session or requests.Session()
    links = LinkSettings(settings.public_base_url, settings.engines_url, settings.smart_app_url,
                         settings.smart_app_label)
    tables()  # load and check the clinical tables at start, not on the first call
    # the site's ConceptMap, checked in full now: an invalid map raises TerminologyError and the service does not start
    install_site_terminology(load_site_terminology(settings.concept_map_file))
    verifier = build_verifier(settings, session)  # None in development mode
    audit = AuditTrail(store.engine, load_audit_key(settings.audit_key, settings.audit_key_file))
    guard = CallGuard(verifier, audit, store, settings.public_base_url)

    app = Flask("hemoptysis_cds")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["hemoptysis_cds"] = {"settings": settings, "store": store, "audit": audit, "verifier": verifier}

    def body_json():
        content_type = (request.mimetype or "").lower()
        if content_type and content_type not in JSON_TYPES:
            raise ApiError(415, f"Content-Type {content_type} is not supported; send application/json")
        return parse_body(request.get_data(cache=False))

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
        return _json(operation_outcome(error.code or 500, message), error.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        guard.refused(500, f"internal-{type(error).__name__}")
        return _json(operation_outcome(500, "internal error; the failure was logged"), 500)

    @app.after_request
    def _cors(response: Response) -> Response:
        if guard.development:
            response.headers[DEVELOPMENT_HEADER[0]] = DEVELOPMENT_HEADER[1]
        origin = request.headers.get("Origin")
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

    def service_or_404(service_id: str):
        service = SERVICES.get(service_id)
        if service is None:
            raise ApiError(404, f"no CDS service '{service_id}'; GET /cds-services lists them")
        return service

    @app.post("/cds-services/<service_id>")
    def call_service(service_id: str):
        caller = guard.authenticate("service", service_id)
        service = service_or_404(service_id)
        hook_request = validated(HookRequest, body_json())
        guard.entry().hook, guard.entry().hook_instance = hook_request.hook, hook_request.hookInstance
        if hook_request.hook != service.hook:
            raise ApiError(400, f"service '{service.id}' answers hook '{service.hook}', not '{hook_request.hook}'",
                           [("hook", "wrong hook for this service")])
        validated(CONTEXT_MODELS[service.hook], hook_request.context, prefix="context")
        if not caller.development and hook_request.fhirServer and not caller.client.fhir_server_allowed(hook_request.fhirServer):
            # Refused even when prefetch is complete: a client naming another FHIR server is misconfigured or hostile.
            raise ApiError(403, "fhirServer is not the FHIR server registered for this client",
                           [("fhirServer", "not this client's FHIR server")])
        values = prefetch.resolve(service, hook_request, settings, session,
                                  client_servers=None if caller.development else caller.fhir_servers())
        evaluation = Evaluation(hook_request.hook, hook_request.context, pool_from_values(values),
                                datetime.now(timezone.utc), links)
        cards = answer_guard.enforce(service.evaluate(evaluation))  # no card offers what another advises against
        guard.entry().patient_hash = audit.patient_hash(hook_request.context.get("patientId"))
        guard.entry().cards = cards
        guard.commit(lambda connection: store.record_issued(service.id, hook_request.hookInstance, cards,
                                                            connection=connection))
        return _json({"cards": cards})

    @app.post("/cds-services/<service_id>/feedback")
    def post_feedback(service_id: str):
        guard.authenticate("feedback", service_id)
        service = service_or_404(service_id)
        feedback = validated(FeedbackRequest, body_json())
        items = [item.model_dump(exclude_none=True) for item in feedback.feedback]
        guard.entry().feedback_items = len(items)
        try:
            stored = guard.commit(lambda connection: store.record_feedback(service.id, items, connection=connection))
        except FeedbackRefused as refused:
            raise ApiError(400, f"feedback refused: {refused}", refused.problems) from None
        return _json({"received": len(items), "stored": stored})

    @app.get("/audit/feedback/<card_uuid>")
    def read_feedback(card_uuid: str):
        caller = guard.authenticate("audit-read")
        if not caller.development and not caller.client.audit_reader:
            raise ApiError(403, "this client may not read the audit trail")
        guard.commit()
        return _json({"card": card_uuid, "feedback": store.feedback_for(card_uuid)})

    @app.get("/healthz")
    def healthz():
        try:
            store.ping()
        except Exception:  # noqa: BLE001 - any database failure makes the instance unhealthy
            log.exception("health check: database unreachable")
            return _json({"status": "unavailable", "database": "unreachable"}, 503)
        return _json({"status": "ok", "services": sorted(SERVICES)})

    @app.get("/docs/engine")
    def engine_doc():
        path = DOCS_DIR / "engine.md"
        if not path.exists():
            raise ApiError(404, "engine documentation is not installed with this build")
        return Response(path.read_text(encoding="utf-8"), mimetype="text/markdown")

    @app.get("/docs/engine.html")
    def engine_doc_page():
        """The same documentation as HTML, with an anchor per section (cards link to the phases section)."""
        path = DOCS_DIR / "engine.md"
        if not path.exists():
            raise ApiError(404, "engine documentation is not installed with this build")
        return Response(docs_page.render(path.read_text(encoding="utf-8"), "pulm.massive-hemoptysis.v1"),
                        mimetype="text/html")

    @app.get("/engines/<engine_id>")
    def sibling_engine(engine_id: str):
        engine = tables().sibling_engines.get(engine_id)
        if engine is None:
            raise ApiError(404, f"no sibling engine '{engine_id}' in the dossier")
        return _json({"id": engine_id, "title": engine["title"], "handoff": engine["handoff"],
                      "source": engine["source"], "from": "pulm.massive-hemoptysis.v1"})

    tune_garbage_collector()  # last, so what start-up built is frozen
    return app
