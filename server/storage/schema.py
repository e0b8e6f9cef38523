"""The one schema of the service's database: every table (cards issued and their topics, feedback, the readiness
probe, the audit trail and the JWTs seen) on one MetaData, created by one create_tables.

SQLite through SQLAlchemy by default, PostgreSQL by URL for several replicas (store.py opens the engine)."""
from __future__ import annotations

import time

from sqlalchemy import (BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        func, inspect)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import DDLElement

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
    # What the analytics page and the feedback metrics group by. A column of the card's row, written with it: as
    # the table below it cost every call one more insert and three more B-trees (~5 of the ~15 pages its commit
    # wrote, ~25 us). Added to a database made before it by create_tables (ADDED_COLUMNS); NULL on older rows.
    Column("topic", String(100), nullable=True),
)

# Where the topic was kept before it was a column of issued_cards (a table of its own, which create_all could add
# to a database made before it). No longer written; read for the cards issued then (coalesce, see card_facts).
issued_card_topics = Table(
    "issued_card_topics", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("topic", String(100), nullable=False, index=True),
)


def with_old_topics():
    """issued_cards joined to the table the topic was kept in before it was a column (cards issued then)."""
    return issued_cards.outerjoin(issued_card_topics, issued_cards.c.card_uuid == issued_card_topics.c.card_uuid)


def card_topic_column():
    """A card's topic as stored: its row's, else the old table's; NULL for a card issued before topics."""
    return func.coalesce(issued_cards.c.topic, issued_card_topics.c.topic).label("topic")


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


# Columns added to a table after databases were made with it. create_all makes a missing table whole but never
# alters one that exists, so create_tables adds these to an older database itself (nullable, no default: SQLite
# and PostgreSQL add such a column without rewriting the table). No manual step, no migration tool.
ADDED_COLUMNS: tuple[tuple[Table, str], ...] = ((issued_cards, "topic"),)


def _add_missing_columns(engine: Engine) -> None:
    inspector = inspect(engine)
    for table, name in ADDED_COLUMNS:
        if name in {column["name"] for column in inspector.get_columns(table.name)}:
            continue
        with engine.begin() as connection:
            connection.execute(AddColumn(table, table.c[name]))


class AddColumn(DDLElement):
    """ALTER TABLE ... ADD COLUMN, the column spelled as the dialect spells it in a CREATE TABLE."""

    def __init__(self, table: Table, column: Column):
        self.table, self.column = table, column


@compiles(AddColumn)
def _add_column_sql(element: AddColumn, compiler, **kw) -> str:
    table = compiler.preparer.format_table(element.table)
    return f"ALTER TABLE {table} ADD COLUMN {compiler.get_column_specification(element.column)}"


def create_tables(engine: Engine, attempts: int = 5) -> None:
    """create_all and the columns added since (ADDED_COLUMNS), tolerating the race of several workers starting at
    once on one database (the loser sees "already exists" between its check and its CREATE or ALTER; the next
    check finds the table or the column)."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
