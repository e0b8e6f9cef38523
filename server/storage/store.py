"""Durable records: the cards issued (so feedback can be checked against them) and the feedback received.

SQLite through SQLAlchemy by default (WAL journal; synchronous=NORMAL unless configured, see config.py),
PostgreSQL by URL for several replicas. Every write is one committed transaction before the HTTP answer goes out, so an
acknowledged record survives a crash of the serving process (in WAL mode NORMAL is enough for that).
"""
from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, delete, event, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from server.storage.call_transaction import CursorTransaction
from server.storage.fast_insert import insert_rows
from server.storage.wal_checkpoint import checkpoint_in_background
from server.storage.schema import (card_topic_column, create_tables, feedback, health_probe, issued_cards,
                                   with_old_topics)

PROBE_BYTES = 8192  # more than one call's cards and audit row


def _reason_problems(item: dict[str, Any], row, where: str) -> list[tuple[str, str]]:
    """An override reason is one the card offered, or a code the client added in a code system of its own
    (CDS Hooks 2.0: "A CDS Client MAY augment the override reasons"); a code the card's own code system does not
    offer on that card is refused."""
    reason = (item.get("overrideReason") or {}).get("reason")
    if not reason:
        return []
    offered = {(system, code) for system, code in json.loads(row.override_codes)}
    key = (reason.get("system"), reason.get("code"))
    if key in offered or key[0] not in {system for system, _ in offered}:
        return []
    return [(f"{where}.overrideReason.reason",
             f"{where}.overrideReason.reason: card {item['card']} offered no override reason {key[0]}|{key[1]}")]


def card_topic(card: dict) -> str:
    return ((card.get("source") or {}).get("topic") or {}).get("code") or "none"


def _utc_instant(moment: datetime | None) -> str | None:
    """Stored in UTC; SQLite gives it back without its zone, so the zone is put back (an instant needs one)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class FeedbackRefused(Exception):
    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised through every test
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


class Store:
    def __init__(self, database_url: str, sqlite_synchronous: str = "NORMAL"):
        if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:///:memory:"):
            Path(database_url.removeprefix("sqlite:///")).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
        # A server connection can drop between calls (restart, idle timeout): pinged before use. A SQLite file
        # cannot drop, so it is not pinged: one statement less on every call (~0.1 ms).
        self.engine = create_engine(database_url, pool_pre_ping=not database_url.startswith("sqlite"), future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine, sqlite_synchronous.upper())
            if ":memory:" not in database_url:
                checkpoint_in_background(self.engine)
        create_tables(self.engine)  # tolerates workers racing to create the tables

    def transaction(self, connection: Connection | CursorTransaction | None = None):
        """The caller's transaction when it passes one (one commit per call: cards, audit and jti together),
        else a new one committed on exit."""
        return nullcontext(connection) if connection is not None else self.engine.begin()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(1)).scalar() == 1

    def probe_commit(self) -> None:
        """Readiness: a write the size of a call's, committed (raises what the database raises when it cannot)."""
        with self.engine.begin() as connection:
            written = connection.execute(insert(health_probe).values(
                checked_at=datetime.now(timezone.utc), ballast="x" * PROBE_BYTES)).inserted_primary_key[0]
            connection.execute(delete(health_probe).where(health_probe.c.id == written))

    # ------------------------------------------------------------------------------------------ cards issued
    def record_issued(self, service_id: str, hook_instance: str, cards: list[dict],
                      connection: Connection | CursorTransaction | None = None) -> None:
        if not cards:
            return
        now = datetime.now(timezone.utc)
        rows = [{
            "card_uuid": card["uuid"], "service_id": service_id, "hook_instance": hook_instance[:200],
            "indicator": card["indicator"], "summary": card["summary"][:200],
            # orjson: the standard module's encoder set-up was ~5 us per array; both parse back with json.loads
            "suggestion_uuids": orjson.dumps([s["uuid"] for s in card.get("suggestions", ()) if "uuid" in s]).decode(),
            "override_codes": orjson.dumps([[r["system"], r["code"]] for r in card.get("overrideReasons", ())]).decode(),
            "issued_at": now, "topic": card_topic(card)[:100],
        } for card in cards]
        with self.transaction(connection) as connection:
            insert_rows(connection, issued_cards, rows)  # the cursor of this transaction, not Core (fast_insert.py)

    def card_facts(self, card_uuids: set[str]) -> dict[str, dict]:
        """Per issued card: its topic and the override reasons it offered (for the feedback metrics)."""
        query = (select(issued_cards.c.card_uuid, issued_cards.c.override_codes, card_topic_column())
                 .select_from(with_old_topics())
                 .where(issued_cards.c.card_uuid.in_(card_uuids)))
        with self.engine.connect() as connection:
            return {row.card_uuid: {"topic": row.topic, "override_codes": json.loads(row.override_codes)}
                    for row in connection.execute(query)}

    # ------------------------------------------------------------------------------------------ feedback
    def record_feedback(self, service_id: str, items: list[dict[str, Any]], connection: Connection | None = None) -> int:
        """Check each item against the cards this service issued, then store all of them or none.
        Returns how many were new (the same feedback sent twice is stored once)."""
        uuids = {item["card"] for item in items}
        with self.transaction(connection) as connection:
            issued = {
                row.card_uuid: row for row in connection.execute(
                    select(issued_cards).where(issued_cards.c.card_uuid.in_(uuids),
                                               issued_cards.c.service_id == service_id))
            }
            problems = []
            for index, item in enumerate(items):
                row = issued.get(item["card"])
                where = f"feedback[{index}]"
                if row is None:
                    problems.append((f"{where}.card", f"{where}.card: no card {item['card']} was issued by this service"))
                    continue
                offered = set(json.loads(row.suggestion_uuids))
                for accepted in item.get("acceptedSuggestions") or ():
                    if accepted["id"] not in offered:
                        problems.append((f"{where}.acceptedSuggestions",
                                         f"{where}.acceptedSuggestions: card {item['card']} offered no suggestion {accepted['id']}"))
                problems += _reason_problems(item, row, where)
            if problems:
                raise FeedbackRefused(problems)
            stored = 0
            now = datetime.now(timezone.utc)
            for item in items:
                accepted = sorted(s["id"] for s in item.get("acceptedSuggestions") or ())
                reason = item.get("overrideReason")
                canonical = json.dumps([item["card"], item["outcome"], accepted, reason, item["outcomeTimestamp"]],
                                       sort_keys=True)
                row = {
                    "fingerprint": hashlib.sha256(canonical.encode()).hexdigest(), "service_id": service_id,
                    "card_uuid": item["card"], "outcome": item["outcome"], "accepted_suggestions": json.dumps(accepted),
                    "override_reason": json.dumps(reason) if reason else None,
                    "outcome_timestamp": item["outcomeTimestamp"], "received_at": now,
                }
                try:
                    with connection.begin_nested():
                        connection.execute(insert(feedback), row)
                    stored += 1
                except IntegrityError:
                    pass  # the client sent this feedback before: stored once
            return stored

    def feedback_for(self, card_uuid: str) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(feedback).where(feedback.c.card_uuid == card_uuid).order_by(feedback.c.id))
            return [{
                "card": row.card_uuid, "outcome": row.outcome,
                "acceptedSuggestions": [{"id": s} for s in json.loads(row.accepted_suggestions)],
                **({"overrideReason": json.loads(row.override_reason)} if row.override_reason else {}),
                "outcomeTimestamp": row.outcome_timestamp,
                "receivedAt": _utc_instant(row.received_at),
            } for row in rows]
