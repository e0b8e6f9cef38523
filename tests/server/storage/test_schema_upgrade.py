"""A database made before a card's topic was a column of issued_cards (the topic then in issued_card_topics) is
accepted as it is: the app adds the column at start-up, answers, and its older cards are still found by feedback,
the analytics page and the metrics' card facts, with their topics. On SQLite and on PostgreSQL."""
from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, inspect, select

from server.http.app import create_app
from server.storage.schema import issued_card_topics, issued_cards, metadata
from tests.support import fhir_factory as f

URL = "/cds-services/massive-hemoptysis"
OVERRIDE = ["http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes", "patient-refuses"]


def _old_card(uuid: str) -> dict:
    return {"card_uuid": uuid, "service_id": "massive-hemoptysis", "hook_instance": "h-old", "indicator": "critical",
            "summary": "an older card", "suggestion_uuids": "[]", "override_codes": f"[{OVERRIDE!r}]".replace("'", '"'),
            "issued_at": datetime.now(timezone.utc)}


def _database_of_the_old_schema(url: str) -> None:
    """The tables as the code before this change made them (issued_cards without `topic`), with two cards: one
    whose topic is in issued_card_topics, one issued before topics were recorded at all."""
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE issued_cards DROP COLUMN topic")
    old_columns = [column for column in issued_cards.c if column.name != "topic"]
    with engine.begin() as connection:
        for uuid in ("old-with-topic", "old-without-topic"):
            connection.execute(issued_cards.insert().values({c.name: _old_card(uuid)[c.name]
                                                              for c in old_columns if c.name != "id"}))
        connection.execute(issued_card_topics.insert().values(card_uuid="old-with-topic",
                                                              topic="massive-hemoptysis-escalation"))
    assert "topic" not in {column["name"] for column in inspect(engine).get_columns("issued_cards")}
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database_settings(request, settings):
    if request.param == "postgresql":
        settings = replace(settings, database_url=request.getfixturevalue("postgres_url"))
    _database_of_the_old_schema(settings.database_url)
    return settings


def test_a_database_of_the_old_schema_is_upgraded_in_place_and_its_cards_still_found(old_database_settings):
    from tests.conftest import SignedClient
    app = create_app(old_database_settings)
    app.test_client_class = SignedClient
    client = app.test_client()
    answer = client.post(URL, json=f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)]))
    assert answer.status_code == 200 and answer.json["cards"]
    store = app.extensions["hemoptysis_cds"]["store"]
    with store.engine.connect() as connection:
        topics = dict(connection.execute(select(issued_cards.c.card_uuid, issued_cards.c.topic)).all())
        in_old_table = connection.execute(select(issued_card_topics.c.card_uuid)).scalars().all()
    assert ({topics[card["uuid"]] for card in answer.json["cards"]}
            == {card["source"]["topic"]["code"] for card in answer.json["cards"]})
    assert topics["old-with-topic"] is None and in_old_table == ["old-with-topic"]  # nothing new written there

    feedback = {"card": "old-with-topic", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
                "overrideReason": {"reason": {"system": OVERRIDE[0], "code": OVERRIDE[1]}}}
    assert client.post(f"{URL}/feedback", json={"feedback": [feedback]}).json == {"received": 1, "stored": 1}
    facts = store.card_facts({"old-with-topic", "old-without-topic", answer.json["cards"][0]["uuid"]})
    assert facts["old-with-topic"] == {"topic": "massive-hemoptysis-escalation", "override_codes": [OVERRIDE]}
    assert facts["old-without-topic"]["topic"] is None
    assert facts[answer.json["cards"][0]["uuid"]]["topic"] == answer.json["cards"][0]["source"]["topic"]["code"]

    rows = {row["topic"]: row for row in csv.DictReader(io.StringIO(
        client.get("/analytics/feedback.csv").get_data(as_text=True)))}
    escalation = rows["massive-hemoptysis-escalation"]  # the old card and the new one, under one topic
    new_escalations = sum(c["source"]["topic"]["code"] == "massive-hemoptysis-escalation" for c in answer.json["cards"])
    assert (escalation["issued"], escalation["overridden"]) == (str(1 + new_escalations), "1")
    assert rows["unknown (issued before topics were recorded)"]["issued"] == "1"
    create_app(old_database_settings)  # a second start (another worker) finds the column there: no error
    store.engine.dispose()
