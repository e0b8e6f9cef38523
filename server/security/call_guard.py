"""The security steps around every service, feedback and audit call, in one place so the routes stay short:
authenticate first (401 if nobody we trust), commit the call's records with its audit row and the token's jti in
one transaction before answering, and audit refusals (with the jti too).

A token's jti is claimed in the database (so in every worker and after a restart) in the first transaction the
call makes: its answer's, its refusal's, or, when the service must call a FHIR server, a claim of its own before
the first outbound request. So a token is used up by whatever the call did first, a replayed token never gets
an answer and never makes the service call out, and the usual call makes one transaction, not two (a claim
alone cost ~0.2 ms, a fifth of the signed-JWT path). Within a worker the verifier's replay cache refuses a
replay at once; across workers the loser of two racing uses does the work and is refused at its commit.

`authenticate` returns the call's record (CallRecord: caller, audit entry, start), which the route fills and
hands back to `commit`. The one thing kept on Flask's `g` is that record, as `g.guarded_call`, because the error
handlers (`refused`) and the metrics see the request, not the route's variables."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from flask import g, request
from sqlalchemy.engine import Connection

from server.http.errors import ApiError
from server.security.caller import DEVELOPMENT_CALLER, AuthError, Caller
from server.security.tokens import JwtVerifier
from server.storage.audit import AuditEntry, AuditTrail, ReplayedToken
from server.storage.call_transaction import CursorTransaction, call_transaction
from server.storage.store import Store

log = logging.getLogger("hemoptysis_cds")
DEVELOPMENT_HEADER = ("X-Hemoptysis-CDS-Auth", "development-unauthenticated")


@dataclass
class CallRecord:
    """One guarded call: its audit entry (filled in by the route), who made it once authenticated, when it
    started; `pending` until its audit row is written (by commit, or by refused)."""
    entry: AuditEntry
    started: float
    caller: Caller | None = None
    pending: bool = True
    claimed: bool = False  # the caller's jti is in the database


def current_call() -> CallRecord | None:
    """The guarded call of this request, if it is one (service, feedback and audit calls)."""
    return g.get("guarded_call")


class CallGuard:
    def __init__(self, verifier: JwtVerifier | None, audit: AuditTrail, store: Store, public_base_url: str):
        self.verifier = verifier  # None: development mode
        self.audit = audit
        self.store = store
        self.public_base_url = public_base_url

    @property
    def development(self) -> bool:
        return self.verifier is None

    def authenticate(self, kind: str, service_id: str | None = None) -> CallRecord:
        call = CallRecord(AuditEntry(kind=kind, status=0, latency_ms=0.0, service_id=service_id), time.perf_counter())
        g.guarded_call = call  # for refused() and the metrics; kept after the audit row is written
        entry = call.entry
        if self.verifier is None:
            call.caller = DEVELOPMENT_CALLER
        else:
            try:
                # aud is the URL the client called, built from the configured public URL (not the Host header,
                # which a proxy or an attacker sets)
                call.caller = self.verifier.verify(request.headers.get("Authorization"),
                                                   self.public_base_url + request.path)
            except AuthError as error:
                entry.client_iss, entry.reason = error.issuer, error.reason
                raise ApiError(401, "authentication failed") from None
        caller = call.caller
        entry.client_iss, entry.tenant, entry.jti = caller.issuer, caller.tenant, caller.jti
        return call

    def claim(self, call: CallRecord, connection: Connection | CursorTransaction | None = None) -> None:
        """The caller's jti recorded as used, in `connection`'s transaction or its own; 401 if it was used."""
        caller = call.caller
        if call.claimed or caller is None or not caller.jti or caller.expires_at is None:
            return  # no token (development), or none that can be replayed
        try:
            if connection is None:
                self.audit.claim_jti_alone(caller.issuer, caller.jti, caller.expires_at)
            else:
                self.audit.claim_jti(connection, caller.issuer, caller.jti, caller.expires_at)
        except ReplayedToken:
            call.entry.reason = "replayed-jti"
            raise ApiError(401, "authentication failed") from None
        call.claimed = True

    def commit(self, call: CallRecord, write: Callable[[Connection | CursorTransaction], Any] | None = None,
               core: bool = False) -> Any:
        """One transaction per call: the jti (unless claimed before a FHIR fetch), the call's own records (`write`)
        and its audit row, committed before the answer is sent. A replayed jti rolls it all back: 401.
        `write` gets a Core Connection only with `core` (or off SQLite); else what cursor writers need
        (call_transaction.py)."""
        entry = call.entry
        entry.status = 200
        entry.latency_ms = (time.perf_counter() - call.started) * 1000
        claimed_before = call.claimed
        try:
            with call_transaction(self.store.engine, core) as connection:
                self.claim(call, connection)
                result = write(connection) if write else None
                self.audit.record(connection, entry)
        except BaseException:
            call.claimed = claimed_before  # rolled back with the transaction
            raise
        call.pending = False  # written
        log.info("call", extra={"fields": {"kind": entry.kind, "service": entry.service_id, "iss": entry.client_iss,
                                           "hookInstance": entry.hook_instance, "status": 200,
                                           "cards": len(entry.cards), "ms": round(entry.latency_ms, 1)}})
        return result

    @staticmethod
    def _unclaimed_jti(call: CallRecord) -> tuple[str, str, int] | None:
        caller = call.caller
        if (call.claimed or caller is None or not caller.jti or caller.expires_at is None
                or call.entry.reason == "replayed-jti"):
            return None
        return caller.issuer, caller.jti, caller.expires_at

    def refused(self, status: int, reason: str) -> None:
        """A refused call is audited too, in its own small transaction, without patient hash: who, what, why."""
        call = current_call()
        if call is None or not call.pending:  # not a guarded call (discovery, health, documents), or already written
            return
        call.pending = False
        entry = call.entry
        entry.status = status
        entry.reason = entry.reason or reason
        entry.latency_ms = (time.perf_counter() - call.started) * 1000
        entry.patient_hash = None
        self.audit.record_alone(entry, self._unclaimed_jti(call))
        log.warning("call refused", extra={"fields": {"kind": entry.kind, "service": entry.service_id,
                                                      "iss": entry.client_iss, "status": status,
                                                      "reason": entry.reason, "ms": round(entry.latency_ms, 1)}})
