"""Under gunicorn every worker is its own process: a scrape must sum them all (prometheus-client multiprocess
mode, set up by `serve`). Calls are spread over two workers by fresh connections; the scrape counts them all."""
from __future__ import annotations

import requests

from tests import fhir_factory as f
from tests.live_server import serving
from tests.test_metrics import samples, value

CALLS = 12


def test_scrape_sums_every_worker(tmp_path):
    request = f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])
    with serving(tmp_path, workers=2) as base:
        for _ in range(CALLS):
            with requests.Session() as fresh:  # a new connection each time: gunicorn hands it to any worker
                response = fresh.post(f"{base}/cds-services/massive-hemoptysis", json=request, timeout=30)
                assert response.status_code == 200 and response.json()["cards"]
        scraped = ""
        for _ in range(4):  # the scrape itself may land on either worker: both must see every count
            with requests.Session() as fresh:
                scraped = fresh.get(f"{base}/metrics", timeout=30).text
            got = samples(scraped)
            assert value(got, "hemoptysis_cds_calls_total", kind="service", service="massive-hemoptysis",
                         status="200") == CALLS
            assert value(got, "hemoptysis_cds_engine_seconds_count", service="massive-hemoptysis") == CALLS
        escalations = value(got, "hemoptysis_cds_cards_total", service="massive-hemoptysis",
                            topic="massive-hemoptysis-escalation", indicator="critical")
        assert escalations == CALLS
