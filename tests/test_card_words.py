"""What a clinician reads first (issue 13 item 9), over every fixture of the library and every scenario the
tests build: summaries of at most 80 characters, one critical card for the bleeding, no engine-report card,
no developer words, and the detail in the order do now -> why -> what is missing -> sources."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from server.replay import golden
from server.replay.request_files import load_request
from tests import fhir_factory as f
from tests import scenarios

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
URL = "/cds-services/massive-hemoptysis"
DEVELOPER_WORDS = re.compile(r"clinical\.md|\.toml\b|\bphases? \d|not re-verified|validator|seed 00\d|cql_equivalents|"
                             r"hooks/|Patient\.birthDate|engine report|Input should|validation error|not valid FHIR R4", re.IGNORECASE)
BLEEDING_TOPICS = {"massive-hemoptysis-escalation", "hemoptysis-first-line", "hemoptysis-severe-by-terrain",
                   "hemoptysis-missing-physiology", "hemoptysis-not-adult", "hemoptysis-frame-route-away",
                   "hemoptysis-source-unclear"}
ORDER = ["**Do now**", "**Why**", "**What is missing**", "**Sources**"]
# action first: every patient-view summary opens with what to do
ACTIONS = ("Airway first", "Oxygen", "ICU-level care", "Obtain", "Call", "Use", "Check", "Route", "Confirm",
           "Reverse", "Hold", "Once the airway is safe", "Find", "Give", "Treat")


def _problems(cards: list[dict]) -> list[str]:
    problems = []
    topics = [card["source"]["topic"]["code"] for card in cards]
    if "hemoptysis-engine-report" in topics:
        problems.append("an engine-report card")
    if sum(topic in BLEEDING_TOPICS for topic in topics) > 1:
        problems.append(f"more than one card about the bleeding: {topics}")
    # the bleeding card is the one alarm; the haemostasis decisions (reversal, blood components) may be urgent too
    critical = [t for card, t in zip(cards, topics) if card["indicator"] == "critical"
                and t not in ("antithrombotic-reversal", "haemostatic-plan")]
    if len(critical) > 1:
        problems.append(f"more than one critical card besides reversal: {critical}")
    for card, topic in zip(cards, topics):
        if len(card["summary"]) > 80:
            problems.append(f"{topic}: summary of {len(card['summary'])} characters")
        if not card["summary"].startswith(ACTIONS):
            problems.append(f"{topic}: summary does not start with the action: {card['summary']}")
        if card["detail"].count("(") != card["detail"].count(")"):  # e.g. a citation cut in half by a clean-up
            problems.append(f"{topic}: unbalanced parentheses in the detail")
        found = DEVELOPER_WORDS.search(card["summary"] + " " + card["detail"])
        if found:
            problems.append(f"{topic}: developer words '{found.group(0)}'")
        if topic in BLEEDING_TOPICS - {"hemoptysis-frame-route-away", "hemoptysis-source-unclear"} | {"antithrombotic-reversal"}:
            where = [card["detail"].find(heading) for heading in ORDER if heading in card["detail"]]
            if not card["detail"].startswith(("**Do now**", "**Pregnant**", "**Do-not-resuscitate", "**Palliative")) \
                    or where != sorted(where) or "**Do now**" not in card["detail"]:
                problems.append(f"{topic}: detail not in the order do now -> why -> missing -> sources")
    return problems


def test_the_fixture_library_reads_as_a_clinician_expects(client):
    now, checked = datetime.now(timezone.utc), 0
    for path in sorted(SCENARIOS.rglob("*.json")):
        if golden.is_golden(path):
            continue
        body = load_request(path, now).body
        body.pop("fhirServer", None)
        response = client.post(URL, data=json.dumps(body), content_type="application/json")
        if response.status_code == 200:
            assert _problems(response.json["cards"]) == [], path.name
            checked += 1
    assert checked >= 60


@pytest.mark.parametrize("name", sorted(scenarios.PATIENT_VIEW))
def test_every_test_scenario_reads_as_a_clinician_expects(client, name):
    response = client.post(URL, json=f.patient_view_request(scenarios.PATIENT_VIEW[name]()))
    assert _problems(response.json["cards"]) == []


def test_the_engine_report_is_a_documentation_link_without_patient_data(client):
    request = f.patient_view_request([f.patient(), f.hemoptysis(), *scenarios.MASSIVE_VITALS()])
    card = client.post(URL, json=request).json["cards"][0]
    link = next(link for link in card["links"] if link["url"].endswith("/docs/engine#the-12-phases"))
    page = client.get(link["url"].replace("https://cds.example.org", ""), headers={"Authorization": ""})
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'id="the-12-phases"' in page.get_data(as_text=True)
    assert "pat-1" not in link["url"] and "pat-1" not in page.get_data(as_text=True)


def test_a_malformed_record_is_named_without_the_validator_message(client):
    broken = f.spo2(86, obs_id="spo2-bad")
    broken["issued"] = "yesterday"  # as a badly mapped interface sends it
    request = f.patient_view_request([f.patient(), f.hemoptysis(), broken, f.respiratory_rate(18)])
    cards = client.post(URL, json=request).json["cards"]
    text = " ".join(card["detail"] for card in cards)
    assert "`Observation/spo2-bad`: not a valid FHIR record (field issued)" in text
    assert _problems(cards) == []
