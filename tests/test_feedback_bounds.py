"""Feedback is bounded and validated before it is stored (issue 11 item 13): body size, nesting depth, an
outcomeTimestamp that is a FHIR instant, unknown members not stored; stored receivedAt carries its zone (item 15)."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from server.http.feedback_bounds import MAX_FEEDBACK_BYTES
from server.storage.schema import feedback as feedback_table
from tests.test_feedback import URL, _escalation, _overridden

FEEDBACK = f"{URL}/feedback"


def _stored_bytes(app) -> int:
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        return connection.execute(select(func.coalesce(func.sum(func.length(feedback_table.c.override_reason)), 0))).scalar()


def test_a_feedback_body_over_its_limit_is_413_and_nothing_is_stored(client, app):
    item = _overridden(_escalation(client), comment="not applicable")
    item["overrideReason"]["padding"] = "x" * (15 * 1024 * 1024)
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 413 and response.json["resourceType"] == "OperationOutcome"
    chunked = client.post(FEEDBACK, input_stream=io.BytesIO(json.dumps({"feedback": [item]}).encode()),
                          content_type="application/json", environ_overrides={"wsgi.input_terminated": True})
    assert chunked.status_code == 413  # no Content-Length: read up to the limit, then refused, not cut
    assert _stored_bytes(app) == 0


def test_unknown_members_are_tolerated_but_not_stored(client, app):
    card = _escalation(client)
    item = _overridden(card, comment="already embolised")
    item["overrideReason"]["vendorBlob"] = "y" * 50_000
    item["vendorExtra"] = {"z": "w" * 50_000}
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200
    assert _stored_bytes(app) < 200
    stored = client.get(f"/audit/feedback/{card['uuid']}").json["feedback"][0]
    assert stored["overrideReason"] == {"userComment": "already embolised"}


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-11-23", "2026-11-23T10:00:00", "2026-13-01T10:00:00Z",
                                       "2026-02-30T10:00:00Z", "2026-11-23T25:00:00Z", "2026-11-23 10:00:00Z",
                                       "2026-11-23T10:00:00+15:00", "x" * 100])
def test_an_outcome_timestamp_that_is_not_an_instant_is_400(client, timestamp):
    item = {**_overridden(_escalation(client), comment="n/a"), "outcomeTimestamp": timestamp}
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 400
    assert any("outcomeTimestamp" in issue.get("diagnostics", "") for issue in response.json["issue"])


@pytest.mark.parametrize("timestamp", ["2026-11-23T10:00:00Z", "2026-11-23T10:00:00.123+01:00", "2026-11-23T10:00:00-05:00"])
def test_instants_with_a_zone_are_accepted(client, timestamp):
    item = {**_overridden(_escalation(client), comment="n/a"), "outcomeTimestamp": timestamp}
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200


@pytest.mark.parametrize("depth", [40, 5000])
def test_deep_nesting_is_400_not_500(client, depth):
    item = _overridden(_escalation(client), comment="n/a")
    nested: dict = {}
    item["overrideReason"]["deep"] = nested
    for _ in range(depth):
        nested["d"] = {}
        nested = nested["d"]
    raw = json.dumps({"feedback": [item]}) if depth < 900 else (
        '{"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z", '
        '"overrideReason": {"userComment": "n/a", "deep": ' + '{"d": ' * depth + "{}" + "}" * depth + "}}]}")
    assert len(raw) < MAX_FEEDBACK_BYTES
    response = client.post(FEEDBACK, data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json["resourceType"] == "OperationOutcome"


def test_stored_feedback_received_at_is_an_instant_with_its_zone(client):
    card = _escalation(client)
    assert client.post(FEEDBACK, json={"feedback": [_overridden(card, comment="n/a")]}).status_code == 200
    received = client.get(f"/audit/feedback/{card['uuid']}").json["feedback"][0]["receivedAt"]
    assert received.endswith("Z") and "T" in received
    from server.http.feedback_bounds import instant
    assert instant(received) == received
