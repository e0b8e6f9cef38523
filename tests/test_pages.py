"""The pages a person reads: the engine documentation and sibling-engine hand-offs (what card links open), the
topics, the card gallery (the fixture library run live) and the feedback analytics with its CSV."""
from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from server.http.app import create_app
from server.http.gallery import DEFAULT_SCENARIOS, scenario_files
from hooks.cards.topics import TOPIC_SYSTEM
from tests import fhir_factory as f
from tests import jwt_kit
from tests.conftest import SignedClient

URL = "/cds-services/massive-hemoptysis"


def _cards(client) -> list[dict]:
    resources = [f.patient(), f.hemoptysis(), f.spo2(86), f.condition("154283005", "Pulmonary tuberculosis"),
                 f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")]
    response = client.post(URL, json=f.patient_view_request(resources))
    assert response.status_code == 200
    return response.json["cards"]


def test_card_links_open_html_pages(client):
    cards = _cards(client)
    urls = {card["source"]["url"] for card in cards} | {link["url"] for card in cards for link in card.get("links", ())}
    internal = sorted(u.removeprefix("https://cds.example.org") for u in urls if u.startswith("https://cds.example.org"))
    assert "/docs/engine" in internal and any(u.startswith("/engines/") for u in internal)
    for path in internal:
        page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})  # as a browser asks
        assert page.status_code == 200 and page.mimetype == "text/html", path
        html = page.get_data(as_text=True)
        assert "<h1>" in html and "```" not in html, path


def test_engine_documentation_is_rendered(client):
    html = client.get("/docs/engine").get_data(as_text=True)
    assert "<h1>The massive-hemoptysis engine" in html
    assert "<table>" in html and "| --- |" not in html  # Markdown tables became HTML tables
    assert "<h2 id=\"special-populations\">Special populations" in html  # each section has its anchor
    # a link to another document opens its page, not a repository file
    cards_page = client.get("/docs/cards")
    assert cards_page.status_code == 200 and "<h1>Cards an EHR can act on</h1>" in cards_page.get_data(as_text=True)
    assert 'href="/docs/card-examples"' in cards_page.get_data(as_text=True)


def test_documents_are_only_the_docs_folder(client):
    for path in ("/docs/nope", "/docs/..%2Fpyproject", "/docs/%2e%2e", "/docs/README"):
        response = client.get(path)
        assert response.status_code == 404 and response.json["resourceType"] == "OperationOutcome", path


def test_sibling_engine_page_and_json(client):
    page = client.get("/engines/pulm.tuberculosis.v1")
    assert page.mimetype == "text/html" and "<h1>Tuberculosis engine</h1>" in page.get_data(as_text=True)
    assert "Linked from a card when the record holds" in page.get_data(as_text=True)  # from conditions.toml
    as_json = client.get("/engines/pulm.tuberculosis.v1", headers={"Accept": "application/json"})
    assert as_json.json["id"] == "pulm.tuberculosis.v1" and as_json.json["from"] == "pulm.massive-hemoptysis.v1"
    assert client.get("/engines/pulm.nothing.v9").status_code == 404


def test_topic_system_is_fixed_and_every_topic_is_listed(client, settings, tmp_path):
    listed = client.get("/topics", headers={"Accept": "application/json"}).json
    assert listed["system"] == TOPIC_SYSTEM
    codes = {topic["code"] for topic in listed["topics"]}
    seen_in_goldens = {card["topic"] for path in DEFAULT_SCENARIOS.rglob("*.cards.json")
                       for answer in json.loads(path.read_text())["services"].values()
                       for card in answer.get("cards", ())}
    assert seen_in_goldens <= codes, f"topics not described in hooks/topics.py: {sorted(seen_in_goldens - codes)}"
    # the system does not move with the deployment's URL
    elsewhere = create_app(replace(settings, public_base_url="https://other.example.net",
                                   database_url=f"sqlite:///{tmp_path}/other.sqlite3"))
    elsewhere.test_client_class = SignedClient
    for cards in (_cards(client), _cards(elsewhere.test_client())):
        assert {card["source"]["topic"]["system"] for card in cards} == {TOPIC_SYSTEM}
    page = client.get("/topics").get_data(as_text=True)
    assert TOPIC_SYSTEM in page and 'id="antithrombotic-reversal"' in page


def test_gallery_runs_every_scenario_of_the_library(client):
    files = scenario_files(DEFAULT_SCENARIOS)
    html = client.get("/gallery").get_data(as_text=True)
    assert html.count('<section class="scenario"') == len(files) > 60
    for path in files:
        assert f'data-scenario="{path.parent.relative_to(DEFAULT_SCENARIOS).as_posix()}/{path.stem}"' in html
    assert "differs from golden" not in html and html.count("matches golden") >= len(files)
    assert 'class="card critical"' in html and "Values used" in html  # rendered Markdown detail
    assert "<table>" in html and "recommended" in html


def test_gallery_discovers_a_new_family_at_page_load(settings, tmp_path):
    library = tmp_path / "scenarios"
    shutil.copytree(DEFAULT_SCENARIOS / "severity", library / "severity")
    app = create_app(replace(settings, gallery_dir=str(library), auth_mode="development"))
    client = app.test_client()
    before = client.get("/gallery").get_data(as_text=True).count('<section class="scenario"')
    first = sorted((library / "severity").glob("*.json"))[0]
    if first.name.endswith(".cards.json"):
        first = next(p for p in sorted((library / "severity").glob("*.json")) if not p.name.endswith(".cards.json"))
    (library / "added-by-another-branch").mkdir()
    request = json.loads(first.read_text())
    request["_fixture"]["title"] = "A scenario family that did not exist when the page was written"
    (library / "added-by-another-branch" / "new-one.json").write_text(json.dumps(request))
    html = client.get("/gallery").get_data(as_text=True)
    assert html.count('<section class="scenario"') == before + 1
    assert "A scenario family that did not exist" in html and "no golden" in html
    only = client.get("/gallery?family=added-by-another-branch").get_data(as_text=True)
    assert only.count('<section class="scenario"') == 1
    assert client.get("/gallery?family=nope").status_code == 404


def _feedback(client, card, outcome, reason=None, when="2026-11-23T10:00:00Z"):
    item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": when}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    if reason:
        item["overrideReason"] = {"reason": reason}
    assert client.post(f"{URL}/feedback", json={"feedback": [item]}).status_code == 200


def test_feedback_analytics_counts_per_topic(client):
    first, second = _cards(client), _cards(client)
    escalation = [c for c in first + second if c["source"]["topic"]["code"] == "massive-hemoptysis-escalation"]
    assert len(escalation) == 2
    reason = escalation[0]["overrideReasons"][0]
    _feedback(client, escalation[0], "overridden", reason)
    _feedback(client, escalation[1], "accepted")
    page = client.get("/analytics/feedback")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and 'class="bar bar-overridden"' in html
    rows = list(csv.DictReader(io.StringIO(client.get("/analytics/feedback.csv").get_data(as_text=True))))
    by_topic = {row["topic"]: row for row in rows}
    assert set(by_topic) == {c["source"]["topic"]["code"] for c in first + second}
    row = by_topic["massive-hemoptysis-escalation"]
    assert (row["issued"], row["accepted"], row["overridden"], row["override_rate"]) == ("2", "1", "1", "0.500")
    assert row["override_reasons"] == f"{reason['display']} (1)"
    reversal = by_topic["antithrombotic-reversal"]
    assert (reversal["issued"], reversal["accepted"], reversal["overridden"], reversal["override_rate"]) == ("2", "0", "0", "")


def test_feedback_analytics_period(client):
    _cards(client)
    today = datetime.now(timezone.utc).date()
    past = client.get(f"/analytics/feedback.csv?from={today - timedelta(days=9)}&to={today - timedelta(days=2)}")
    assert past.status_code == 200 and past.get_data(as_text=True).count("\n") == 1  # the header alone
    assert "attachment" in past.headers["Content-Disposition"]
    current = client.get(f"/analytics/feedback.csv?from={today}&to={today}").get_data(as_text=True)
    assert current.count("\n") > 1
    bad = client.get("/analytics/feedback?from=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json["issue"][0]["diagnostics"]
    assert client.get(f"/analytics/feedback?from={today}&to={today - timedelta(days=1)}").status_code == 400


def test_feedback_analytics_is_for_audit_readers(settings, tmp_path):
    clients = jwt_kit.write_clients_file(tmp_path, [jwt_kit.default_client(audit_reader=False)])
    app = create_app(replace(settings, clients_file=str(clients)))
    app.test_client_class = SignedClient
    client = app.test_client()
    assert client.get("/analytics/feedback", headers={"Authorization": ""}).status_code == 401
    assert client.get("/analytics/feedback").status_code == 403
    assert client.get("/analytics/feedback.csv").status_code == 403
    assert client.get("/gallery").status_code == 200  # the gallery holds fixtures only, no patient data


def test_gallery_runs_one_at_a_time(client):
    with client.application.blueprints["pages"].gallery._lock:  # a run under way in this process
        busy = client.get("/gallery")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert busy.json["issue"][0]["code"] == "transient"
    assert client.get("/gallery").status_code == 200


def test_feedback_csv_cannot_carry_a_spreadsheet_formula(client):
    escalation = next(c for c in _cards(client) if c["source"]["topic"]["code"] == "massive-hemoptysis-escalation")
    # a client may add override reasons in a code system of its own (CDS Hooks 2.0): its display is free text
    _feedback(client, escalation, "overridden",
              {"system": "https://ehr.example.org/reasons", "code": "x", "display": '=HYPERLINK("http://evil")'})
    rows = list(csv.DictReader(io.StringIO(client.get("/analytics/feedback.csv").get_data(as_text=True))))
    reasons = next(r for r in rows if r["topic"] == "massive-hemoptysis-escalation")["override_reasons"]
    assert reasons.startswith("'=HYPERLINK")
    html = client.get("/analytics/feedback").get_data(as_text=True)
    assert "=HYPERLINK(&#34;http://evil&#34;)" in html or "=HYPERLINK(&quot;http://evil&quot;)" in html
