"""The security steps around every service, feedback and audit call, in one place so the routes stay short:
authenticate first (401 if nobody we trust) and claim the token's jti at once, commit the call's records with its
audit row in one transaction before answering, and audit refusals. Flask's `g` carries the call's caller and audit entry."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from flask import g, request
from sqlalchemy.engine import Connection

from server.http.errors import ApiError
from server.security.tokens import DEVELOPMENT_CALLER, AuthError, Caller, JwtVerifier
from server.storage.audit import AuditEntry, AuditTrail, ReplayedToken
from server.storage.store import Store

log = logging.getLogger("hemoptysis_cds")
DEVELOPMENT_HEADER = ("X-Hemoptysis-CDS-Auth", "development-unauthenticated")


class CallGuard:
    def __init__(self, verifier: JwtVerifier | None, audit: AuditTrail, store: Store, public_base_url: str):
        self.verifier = verifier  # None: development mode
        self.audit = audit
        self.store = store
        self.public_base_url = public_base_url

    @property
    def development(self) -> bool:
        return self.verifier is None

    def authenticate(self, kind: str, service_id: str | None = None) -> Caller:
        g.audited = AuditEntry(kind=kind, status=0, latency_ms=0.0, service_id=service_id)
        g.call_entry = g.audited  # kept after the audit row is written: the metrics read it when the call ends
        g.started = time.perf_counter()
        if self.verifier is None:
            g.caller = DEVELOPMENT_CALLER
        else:
            try:
                # aud is the URL the client called, built from the configured public URL (not the Host header,
                # which a proxy or an attacker sets)
                g.caller = self.verifier.verify(request.headers.get("Authorization"), self.public_base_url + request.path)
            except AuthError as error:
                g.audited.client_iss, g.audited.reason = error.issuer, error.reason
                raise ApiError(401, "authentication failed") from None
        g.audited.client_iss, g.audited.tenant, g.audited.jti = g.caller.issuer, g.caller.tenant, g.caller.jti
        if g.caller.jti:
            # Claimed now, in its own committed transaction, whatever follows: a token first refused (400, 403,
            # 412, ...) is used up as surely as one that was answered, in every worker and after a restart.
            try:
                self.audit.claim_jti_alone(g.caller.issuer, g.caller.jti, g.caller.expires_at)
            except ReplayedToken:
                g.audited.reason = "replayed-jti"
                raise ApiError(401, "authentication failed") from None
        return g.caller

    @staticmethod
    def entry() -> AuditEntry:
        return g.audited

    def commit(self, write: Callable[[Connection], Any] | None = None) -> Any:
        """One transaction per call: the call's own records (`write`) and its audit row, committed before the
        answer is sent (the jti was claimed at authentication)."""
        entry: AuditEntry = g.audited
        entry.status = 200
        entry.latency_ms = (time.perf_counter() - g.started) * 1000
        with self.store.engine.begin() as connection:
            result = write(connection) if write else None
            self.audit.record(connection, entry)
        g.audited = None  # written
        log.info("call", extra={"fields": {"kind": entry.kind, "service": entry.service_id, "iss": entry.client_iss,
                                           "hookInstance": entry.hook_instance, "status": 200,
                                           "cards": len(entry.cards), "ms": round(entry.latency_ms, 1)}})
        return result

    def refused(self, status: int, reason: str) -> None:
        """A refused call is audited too, in its own small transaction, without patient hash: who, what, why."""
        entry: AuditEntry | None = g.get("audited")
        if entry is None:  # not a guarded call (discovery, health, documents), or already written
            return
        g.audited = None
        entry.status = status
        entry.reason = entry.reason or reason
        entry.latency_ms = (time.perf_counter() - g.started) * 1000
        entry.patient_hash = None
        self.audit.record_alone(entry)
        log.warning("call refused", extra={"fields": {"kind": entry.kind, "service": entry.service_id,
                                                      "iss": entry.client_iss, "status": status,
                                                      "reason": entry.reason, "ms": round(entry.latency_ms, 1)}})
