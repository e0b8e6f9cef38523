"""The one schema of the service's database: every table (cards issued and their topics, feedback, the readiness
probe, the audit trail and the JWTs seen) on one MetaData, created by one create_tables.

SQLite through SQLAlchemy by default, PostgreSQL by URL for several replicas (store.py opens the engine)."""
from __future__ import annotations

import time

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, Text, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

metadata = MetaData()

issued_cards = Table(
    "issued_cards", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(64), nullable=False, unique=True),
    Column("service_id", String(100), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("summary", String(200), nullable=False),
    Column("suggestion_uuids", Text, nullable=False),  # JSON array
    Column("override_codes", Text, nullable=False),  # JSON array of [system, code]
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

# A table of its own (not a column of issued_cards) so databases made before it need no migration: create_all
# adds it. The topic is what the analytics page and the feedback metrics group by.
issued_card_topics = Table(
    "issued_card_topics", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("topic", String(100), nullable=False, index=True),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=False),  # JSON array of suggestion uuids
    Column("override_reason", Text, nullable=True),  # JSON object
    Column("outcome_timestamp", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("fingerprint", name="uq_feedback_fingerprint"),
)


# Written and deleted by every readiness check: a database that can be read but not written to (disk full,
# read-only file system, a replica in recovery) is not ready, and only a commit of about what a call writes tells.
health_probe = Table(
    "health_probe", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("ballast", Text, nullable=False),
)

audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),  # service | feedback | audit-read
    Column("service_id", String(100), nullable=True),
    Column("client_iss", String(300), nullable=True),  # None when the caller could not even name an issuer
    Column("tenant", String(200), nullable=True),
    Column("jti", String(256), nullable=True),
    Column("hook", String(100), nullable=True),
    Column("hook_instance", String(200), nullable=True, index=True),
    Column("patient_hash", String(64), nullable=True, index=True),  # HMAC-SHA256 hex, never the id
    Column("cards", Text, nullable=False, default="[]"),  # JSON [{"uuid", "indicator"}]
    Column("feedback_items", Integer, nullable=True),
    Column("status", Integer, nullable=False),
    Column("reason", String(100), nullable=True),  # why a call was refused (auth reason code or HTTP reason)
    Column("latency_ms", Float, nullable=False),
)

seen_jwts = Table(
    "seen_jwts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issuer", String(300), nullable=False),
    Column("jti", String(256), nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),  # epoch seconds: forgotten after this
    UniqueConstraint("issuer", "jti", name="uq_seen_jwts_issuer_jti"),
)


def create_tables(engine: Engine, attempts: int = 5) -> None:
    """create_all, tolerating the race of several workers starting at once on one new database (the loser
    sees "already exists" between its check and its CREATE; the next check finds the table)."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
