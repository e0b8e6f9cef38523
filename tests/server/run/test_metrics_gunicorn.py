"""Under gunicorn every worker is its own process: a scrape must sum them all (prometheus-client multiprocess
mode, set up by `serve`). Calls are spread over two workers by fresh connections; the scrape counts them all."""
from __future__ import annotations

import pytest
import requests

from tests.support import fhir_factory as f
from tests.support.live_server import serving
from tests.server.http.test_metrics import samples, value

pytestmark = pytest.mark.slow  # scrapes a real gunicorn with two worker processes

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


def test_scrape_command_signs_a_fresh_token_each_time(tmp_path, capsys):
    """In required mode /metrics is an audit read: `hemoptysis-cds scrape` signs a new JWT per scrape, so the same
    command works scrape after scrape (a fixed token would be refused as a replayed jti)."""
    from cryptography.hazmat.primitives import serialization

    from server.cli import main
    from tests.support import jwt_kit
    from tests.support.live_server import server_env

    key = jwt_kit.session_key("ES384")
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    clients = jwt_kit.write_clients_file(tmp_path, [jwt_kit.default_client()])
    env = server_env(tmp_path, HEMOPTYSIS_CDS_AUTH_MODE="required", HEMOPTYSIS_CDS_CLIENTS_FILE=str(clients))
    with serving(tmp_path, workers=1, env=env) as base:
        signed = ["scrape", base, "--jwt-key", str(pem), "--jwt-issuer", jwt_kit.ISSUER, "--jwt-kid", key.kid]
        assert main(signed) == 0
        capsys.readouterr()
        assert main(signed) == 0
        second = samples(capsys.readouterr().out)
        # the first scrape was counted (an audit read answered 200); nothing else was called
        assert value(second, "hemoptysis_cds_calls_total", kind="audit-read", service="", status="200") == 1
        assert main(["scrape", base]) == 1  # no token
        assert "answered 401" in capsys.readouterr().err
