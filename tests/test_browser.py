"""The pages in a real browser: headless Chromium (Debian's `chromium`, which `make test` installs when it can)
driven by Playwright's Python package pointed at that executable, never a browser Playwright downloads. Each page
is opened on a live server on loopback; the test checks what a person sees, that the page logged no console error,
and that the analytics chart is drawn. Screenshots are kept in var/screenshots/ (ignored by git)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests

from server.http.gallery import DEFAULT_SCENARIOS, scenario_files
from tests import fhir_factory as f
from tests.live_server import REPO, serving

SCREENSHOTS = REPO / "var" / "screenshots"
CHROMIUM = os.environ.get("HEMOPTYSIS_CDS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed "
                                     "(pip install -e '.[test]')")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium when run as root "
                "(apt-get install -y chromium); browser tests skipped", allow_module_level=True)


def _seed(base: str) -> None:
    """Cards and feedback, so the analytics page has bars to draw."""
    url = f"{base}/cds-services/massive-hemoptysis"
    resources = [f.patient(), f.hemoptysis(), f.spo2(86), f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")]
    for index in range(3):
        cards = requests.post(url, json=f.patient_view_request(resources), timeout=30).json()["cards"]
        card = cards[0]
        item = {"card": card["uuid"], "outcomeTimestamp": "2026-11-23T10:00:00Z"}
        if index < 2:
            item.update(outcome="overridden", overrideReason={"reason": card["overrideReasons"][index]})
        else:
            item.update(outcome="accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
        assert requests.post(f"{url}/feedback", json={"feedback": [item]}, timeout=30).status_code == 200


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("browser")
    with serving(tmp_path, workers=1) as base:
        _seed(base)
        yield base


@pytest.fixture(scope="module")
def browser():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        # root in a container: Chromium's sandbox needs namespaces it may not have
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


def _open(browser, url: str, shot: str, *, full_page: bool = True):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, url
    page.screenshot(path=str(SCREENSHOTS / shot), full_page=full_page)
    return page, errors


def test_engine_page(browser, live):
    page, errors = _open(browser, f"{live}/docs/engine", "engine.png")
    assert page.locator("h1").first.inner_text().startswith("The massive-hemoptysis engine")
    assert page.locator("table").count() > 3 and "Special populations" in page.inner_text("main")
    assert errors == []
    page.close()


def test_sibling_engine_and_topics_pages(browser, live):
    page, errors = _open(browser, f"{live}/engines/pulm.tuberculosis.v1", "engine-tuberculosis.png")
    assert page.locator("h1").inner_text() == "Tuberculosis engine" and "AFB smear" in page.inner_text("main")
    assert errors == []
    page.close()
    page, errors = _open(browser, f"{live}/topics", "topics.png")
    assert "urn:hemoptysis-cds:card-topic" in page.inner_text("main")
    assert page.locator("tbody tr").count() >= 18 and errors == []
    page.close()


def test_gallery_shows_every_scenario(browser, live):
    page, errors = _open(browser, f"{live}/gallery", "gallery.png", full_page=False)
    expected = len(scenario_files(DEFAULT_SCENARIOS))
    assert page.locator("section.scenario").count() == expected
    assert page.locator("#scenario-count").inner_text() == f"{expected} scenarios"
    critical = page.locator(".card.critical").first
    # the indicator colour an EHR shows: the critical card's left border is red
    assert critical.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(198, 40, 40)"
    assert page.locator(".card .detail table").count() > 0 and page.locator(".suggestion").count() > 0
    assert errors == []
    page.locator(".card.critical").first.screenshot(path=str(SCREENSHOTS / "gallery-critical-card.png"))
    page.close()
    family, errors = _open(browser, f"{live}/gallery?family=antithrombotics", "gallery-antithrombotics.png",
                           full_page=False)
    assert family.locator("section.scenario").count() == len(list(
        p for p in scenario_files(DEFAULT_SCENARIOS) if p.parent.name == "antithrombotics"))
    assert errors == []
    family.close()


def test_analytics_page_draws_its_chart(browser, live):
    page, errors = _open(browser, f"{live}/analytics/feedback", "analytics.png")
    assert page.locator("svg.chart").count() == 1
    overridden = page.locator("svg.chart rect.bar-overridden", has_text="massive-hemoptysis-escalation")
    box = overridden.bounding_box()
    assert box is not None and box["width"] > 10  # drawn, with a length
    row = page.locator("#topics tbody tr", has_text="massive-hemoptysis-escalation")
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["3", "1", "2", "67 %"]
    with page.expect_download() as download:
        page.get_by_text("Download CSV").click()
    assert download.value.suggested_filename.startswith("feedback-")
    assert errors == []
    page.close()
