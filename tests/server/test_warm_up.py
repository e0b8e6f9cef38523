"""A worker's warm-up (server/run/warm_up.py): the service evaluates a synthetic patient made from the tables,
with cards, and writes nothing (no audit row, no issued card) and calls no server; gunicorn's post_worker_init
runs it, and a failure there leaves the worker serving."""
from __future__ import annotations

import logging

import responses
from sqlalchemy import func, select

from cql_equivalents.fhir_select import pool_from_values
from cql_equivalents.tables import LOINC, tables
from hooks import SERVICES
from server.run import warm_up
from server.storage.schema import audit_events, issued_cards, seen_jwts

URL = "/cds-services/massive-hemoptysis"


def _rows(app) -> tuple[int, int, int]:
    with app.extensions["hemoptysis_cds"]["store"].engine.connect() as connection:
        return tuple(connection.execute(select(func.count()).select_from(table)).scalar_one()
                     for table in (audit_events, issued_cards, seen_jwts))


def test_the_synthetic_patient_is_read_as_the_tables_say():
    from datetime import datetime, timezone
    now = datetime.now(timezone.utc)
    prefetch = warm_up.synthetic_prefetch(now)
    pool = pool_from_values(prefetch, patient_id=warm_up.PATIENT_ID)
    assert not pool.problems and not pool.foreign_patients
    for entry in prefetch["vitals"]["entry"]:
        coding = entry["resource"]["code"]["coding"][0]
        assert coding["system"] == LOINC and coding["code"] in tables().loinc_to_input  # codes from the tables


def test_warm_up_makes_cards_and_writes_and_fetches_nothing(app, caplog):
    before = _rows(app)
    with responses.RequestsMock():  # any outbound request would fail the test
        with caplog.at_level(logging.INFO, logger="hemoptysis_cds"):
            warm_up.warm_up_app(app)
    assert _rows(app) == before
    [line] = [record for record in caplog.records if record.getMessage() == "warm-up"]
    assert line.fields["service"] == "massive-hemoptysis" and line.fields["cards"] >= 2  # escalation and reversal
    parts = app.extensions["hemoptysis_cds"]
    cards, _seconds = warm_up.warm_up(SERVICES["massive-hemoptysis"], parts["links"], parts["formulary"])
    assert cards == line.fields["cards"]


def test_the_worker_hook_warms_up_and_a_failure_leaves_it_serving(app, client, monkeypatch, caplog):
    class Worker:
        wsgi = app

    calls = []

    def fails(*args):
        calls.append(args)
        raise RuntimeError("the synthetic patient could not be evaluated")

    from server.http import metrics
    from server.run import runtime
    monkeypatch.setattr(runtime, "tune_garbage_collector", lambda: None)  # not in the test process
    # importing the gunicorn configuration prepares the metrics directory of a master: not in the test process
    monkeypatch.setattr(metrics, "prepare_multiprocess_dir", lambda: "")
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    import importlib
    gunicorn_conf = importlib.import_module("server.run.gunicorn_conf")
    monkeypatch.setattr(warm_up, "warm_up", fails)
    with caplog.at_level(logging.INFO, logger="hemoptysis_cds"):
        gunicorn_conf.post_worker_init(Worker())
    assert calls and any(record.getMessage() == "warm-up failed" for record in caplog.records)
    assert client.get("/livez").status_code == 200
