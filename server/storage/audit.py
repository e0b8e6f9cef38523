"""The audit trail: one row per service, feedback or audit-read call, refused calls included, in the service's
database (same engine as storage.Store), written in the call's own transaction and committed before the answer
goes out, so a crash of the serving process loses no acknowledged record.

A row names the client (JWT `iss`, `tenant`, `jti`), the hook and hookInstance, an HMAC-SHA256 of the patient id
under the audit key (never the id: the same patient gives the same hash, so calls about one patient can be
followed, but the id cannot be read back without the key), the cards returned (uuid + indicator), the status, a
short reason code for refusals, and the latency.

The JWTs seen are kept here too (issuer, jti, expiry): the unique key makes a replayed token fail its commit
even when the first use was served by another worker or replica.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from sqlalchemy import Table, delete
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from server.storage.call_transaction import CursorTransaction, call_transaction
from server.storage.fast_insert import execute_statement, insert_rows
from server.storage.schema import audit_events, create_tables, seen_jwts

log = logging.getLogger("hemoptysis_cds.audit")
MIN_KEY_CHARS = 32


def fitted_to_columns(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """Every string cut to its column's length: on PostgreSQL a longer one fails the insert, and a call whose audit
    row fails to be written (a 150-character service path, a 5,000-character tenant) would leave no trace."""
    lengths = _column_lengths(table)
    fitted = {}
    for name, value in row.items():
        length = lengths[name]
        fitted[name] = value[:length] if length and isinstance(value, str) else value
    return fitted


_LENGTHS: dict[str, dict[str, int | None]] = {}


def _column_lengths(table: Table) -> dict[str, int | None]:
    """Each column's string length, read from the schema once (a column lookup per value was ~25 us a call)."""
    found = _LENGTHS.get(table.name)
    if found is None:
        found = _LENGTHS[table.name] = {column.name: getattr(column.type, "length", None) for column in table.c}
    return found


class ReplayedToken(Exception):
    """This (issuer, jti) was used before: the whole call is refused (401) and its transaction rolled back."""


@dataclass
class AuditEntry:
    kind: str
    status: int
    latency_ms: float
    service_id: str | None = None
    client_iss: str | None = None
    tenant: str | None = None
    jti: str | None = None
    hook: str | None = None
    hook_instance: str | None = None
    patient_hash: str | None = None
    cards: list[dict[str, Any]] = field(default_factory=list)
    feedback_items: int | None = None
    reason: str | None = None


def load_audit_key(configured: str, key_file: str) -> bytes:
    """The HMAC key: HEMOPTYSIS_CDS_AUDIT_KEY if set, else the key in `key_file`, created once (0600) if absent.
    Several workers may start at once: the file is written aside and linked into place, so exactly one key wins."""
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise ValueError(f"HEMOPTYSIS_CDS_AUDIT_KEY must be at least {MIN_KEY_CHARS} characters")
        return configured.encode()
    path = Path(key_file).expanduser().resolve()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            try:
                os.link(temporary, path)  # atomic; fails if another worker got there first
                log.warning("generated a new audit key", extra={"fields": {"audit_key_file": str(path)}})
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"audit key file {path} holds fewer than {MIN_KEY_CHARS} characters")
    return key.encode()


class AuditTrail:
    def __init__(self, engine: Engine, key: bytes):
        self.engine = engine
        self._key = key
        # the key's HMAC state made once; each hash copies it (hmac.new per call set the key up again: ~7 -> ~3 us)
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._claims = 0
        create_tables(engine)

    def patient_hash(self, patient_id: str | None) -> str | None:
        if not patient_id:
            return None
        keyed = self._keyed.copy()
        keyed.update(patient_id.encode())
        return keyed.hexdigest()

    def claim_jti(self, connection: Connection | CursorTransaction, issuer: str, jti: str, expires_at: int) -> None:
        """Record this token as used, in the caller's transaction; ReplayedToken if it was used before."""
        try:  # no savepoint: a replay aborts the whole call, so its transaction is rolled back anyway
            insert_rows(connection, seen_jwts, [{"issuer": issuer, "jti": jti, "expires_at": expires_at}])
        except IntegrityError:
            raise ReplayedToken() from None
        self._claims += 1
        if self._claims % 500 == 0:  # forget expired tokens now and then, not on every call
            now = int(datetime.now(timezone.utc).timestamp())
            execute_statement(connection, delete(seen_jwts).where(seen_jwts.c.expires_at < now - 600))

    def claim_jti_alone(self, issuer: str, jti: str, expires_at: int) -> None:
        """The claim in its own committed transaction, right after the token is verified."""
        with call_transaction(self.engine) as connection:
            self.claim_jti(connection, issuer, jti, expires_at)

    def record(self, connection: Connection | CursorTransaction, entry: AuditEntry) -> None:
        insert_rows(connection, audit_events, [fitted_to_columns(audit_events, {
            "at": datetime.now(timezone.utc), "kind": entry.kind, "service_id": entry.service_id,
            "client_iss": entry.client_iss or None, "tenant": entry.tenant, "jti": entry.jti, "hook": entry.hook,
            "hook_instance": entry.hook_instance or None, "patient_hash": entry.patient_hash,
            "cards": orjson.dumps([{"uuid": c.get("uuid"), "indicator": c.get("indicator")} for c in entry.cards]).decode(),
            "feedback_items": entry.feedback_items, "status": entry.status,
            "reason": entry.reason or None, "latency_ms": round(entry.latency_ms, 2),
        })])

    def record_alone(self, entry: AuditEntry, jti: tuple[str, str, int] | None = None) -> None:
        """A refused call: its own small transaction, with the token's (issuer, jti, expiry) claimed in it, so a
        token first refused is used up too. A failure here is logged, never turned into a 500."""
        try:
            try:
                with call_transaction(self.engine) as connection:
                    if jti:
                        self.claim_jti(connection, *jti)
                    self.record(connection, entry)
            except ReplayedToken:  # another worker's call used it meanwhile: the refusal is audited all the same
                with call_transaction(self.engine) as connection:
                    self.record(connection, entry)
        except Exception:  # noqa: BLE001 - the refusal must still reach the caller
            log.exception("audit write failed for a refused call")
