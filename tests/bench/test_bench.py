"""The benchmark code runs (on tiny charts) so it cannot rot; its figures come from `hemoptysis-cds bench`."""
from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timezone

import pytest
from werkzeug.serving import make_server

from bench import charts, inprocess, load
from cql_equivalents.tables import tables
from server.http.app import create_app
from server.cli import main

FIXED_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def test_charts_are_deterministic_realistic_and_of_the_asked_size():
    chart = charts.chart(300, seed=3, now=FIXED_NOW)
    assert chart == charts.chart(300, seed=3, now=FIXED_NOW)
    assert len(chart) == 300
    kinds = Counter(resource["resourceType"] for resource in chart)
    assert kinds["Observation"] > 0.9 * len(chart) and kinds["Patient"] == 1 and kinds["Condition"] >= 3
    codes = {resource["code"]["coding"][0]["code"] for resource in chart if resource["resourceType"] == "Observation"}
    read_by_engine = set(tables().loinc_to_input) | tables().panel_loinc
    assert codes & read_by_engine and len(codes - read_by_engine) >= 10  # mostly codes the engine passes over
    request = charts.patient_view_request(chart)
    assert sum(len(bundle["entry"]) for key, bundle in request["prefetch"].items() if key != "patient") == 299


@pytest.mark.slow  # measures over loopback sockets / a production server process
def test_bench_command_measures_and_writes_its_json(tmp_path, capsys):
    output = tmp_path / "latest.json"
    assert main(["bench", "--sizes", "12,30", "--repetitions", "15", "--no-load", "--no-shapes", "--jwt",
                 "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    verified = results["jwt"]  # the bench signs each call as an EHR would; the service verifies and audits it
    assert verified["auth"] == "jwt-es384" and verified["errors"] == 0 and verified["cards"] >= 2
    rs384 = results["jwt_rs384"]  # the other algorithm CDS Hooks recommends, verified the same way
    assert rs384["auth"] == "jwt-rs384" and rs384["errors"] == 0 and rs384["cards"] == verified["cards"]
    # the development app answered the same body between the signed calls: the JWT cost is their difference
    assert 0 < verified["paired_development_ms"]["p50"] <= verified["paired_development_ms"]["p99"]
    rows = {(row["size"], row["sqlite_synchronous"]): row for row in results["latency"]}
    assert set(rows) == {(12, "NORMAL"), (30, "NORMAL"), (12, "FULL"), (30, "FULL")}
    for row in rows.values():
        assert row["errors"] == 0 and row["cards"] >= 2 and row["requests"] == 15
        assert 0 < row["json_parse_ms"]["p50"] < row["service_ms"]["p50"] <= row["service_ms"]["p99"]
        assert row["ratio_p50"] > 1
        assert 0 < row["test_client_ms"]["p50"] <= row["test_client_ms"]["p99"]  # the earlier runs' figure, paired
    assert verified["test_client_ms"] is None  # a signed call cannot be sent a second time
    fresh = results["latency_new_chart_each_call"]  # nothing remembered about its records: the cold figure
    assert fresh["chart"] == "new each call" and fresh["size"] == 12 and fresh["errors"] == 0 and fresh["cards"] >= 2
    assert rows[(12, "NORMAL")]["chart"] == "same"
    assert set(results["targets"]) == {"small_request_latency", "large_request_vs_json"}
    assert results["targets_issue16"] == {}  # no 50-resource row, no shapes, no load: nothing of issue 16 judged
    assert results["targets"]["large_request_vs_json"]["size"] == 30
    printed = capsys.readouterr().out
    assert "In-process latency" in printed and "Targets (issue #7)" in printed and "(a new chart each call)" in printed
    assert "Targets (issue #16)" in printed


def test_the_bench_calls_the_app_as_a_wsgi_server_does_and_gets_the_test_clients_answer(tmp_path):
    from bench.wsgi_call import WsgiCall

    app = create_app(inprocess.development_settings(tmp_path, "NORMAL"))
    caller, client = WsgiCall(app, inprocess.SERVICE_URL), app.test_client()
    body = charts.request_body(30, 3)
    status, answer = caller.post(body)
    expected = client.post(inprocess.SERVICE_URL, data=body, content_type="application/json")
    assert status == expected.status_code == 200
    summaries = [card["summary"] for card in json.loads(answer)["cards"]]
    assert summaries and summaries == [card["summary"] for card in expected.get_json()["cards"]]
    assert caller.post(b'{"hook": ')[0] == 400  # malformed JSON: the app's 400, as through any server
    assert caller.post(body, content_type="text/plain")[0] == client.post(
        inprocess.SERVICE_URL, data=body, content_type="text/plain").status_code != 200
    assert caller.post(body, headers={"Authorization": "Bearer not-a-token"})[0] == 200  # development auth: read, ignored


def test_the_issue_16_targets_are_judged_on_their_figures():
    from bench import report
    row = {"size": 50, "auth": "development", "sqlite_synchronous": "NORMAL", "service_ms": {"p50": 2.4, "p99": 9.0},
           "test_client_ms": {"p50": 2.7, "p99": 9.5}}
    results = {"sqlite_synchronous": "NORMAL", "latency": [row],
               "latency_new_chart_each_call": {"service_ms": {"p50": 4.0}},
               "jwt": {"size": 50, "auth": "jwt-es384", "service_ms": {"p50": 3.6}},
               "jwt_rs384": {"size": 50, "auth": "jwt-rs384", "service_ms": {"p50": 2.9},
                             "paired_development_ms": {"p50": 2.3}},
               "shapes": {"in_process": [{"shape": "icu", "size": 5000, "ratio_p50": 2.1},
                                         {"shape": "implausible", "size": 5000, "ratio_p50": 3.2},
                                         {"shape": "unusable-50000", "size": 50000, "ratio_p50": 2.9}],
                          "rss": {"calls": 30, "peak_ratio": 1.2}},
               "throughput_best": {"50": {"requests_per_second": 500.0, "connections": 4, "errors": 0}}}
    checks = report.issue16_targets(results)
    assert checks["50_resources_in_process"]["met"] and checks["50_resources_in_process"]["new_chart_each_call_p50_ms"] == 4.0
    # the earlier runs' figure is shown beside the one judged, and judged on its own too
    assert checks["50_resources_in_process"]["test_client_p50_ms"] == 2.7
    assert checks["50_resources_in_process"]["met_through_test_client"] is False
    assert not checks["every_shape_at_5000_vs_json"]["met"]  # one shape over 3x
    assert checks["50000_entries_vs_json"]["met"]
    assert not checks["signed_jwt_extra"]["met"] and checks["signed_jwt_extra"]["extra_p50_ms"] == 1.2
    assert checks["signed_jwt_extra"]["algorithm"] == "ES384" and checks["signed_jwt_extra"]["against"] == "development row"
    # RS384 shown beside it, judged on its own pairing (2.9 - 2.3), not on the development row (2.9 - 2.4)
    rs384 = checks["signed_jwt_extra_rs384"]
    assert rs384["algorithm"] == "RS384" and rs384["met"] and rs384["extra_p50_ms"] == 0.6
    assert rs384["unpaired_extra_p50_ms"] == 0.5
    assert not checks["worker_peak_rss_50000_entries"]["met"]  # 30 calls are not the 200 asked
    assert checks["throughput_50_resources"]["met"]


def test_python_load_generator_counts_answers_and_errors_on_loopback(tmp_path):
    app = create_app(inprocess.development_settings(tmp_path, "NORMAL"))  # the bench's own mode: no JWT to sign
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = charts.request_body(20, now=FIXED_NOW)
        good = load.run_python_load(server.port, body, 20, connections=2, seconds=10, max_requests=12)
        bad = load.run_python_load(server.port, b'{"hook": "patient-view"}', 20, connections=1, seconds=10,
                                   max_requests=3)
    finally:
        server.shutdown()
    assert good.requests >= 12 and good.errors == 0 and good.p50_ms > 0
    assert bad.requests == 0 and bad.errors == 3  # a 400 is an error to a load test


@pytest.mark.slow  # measures over loopback sockets / a production server process
@pytest.mark.skipif(not load.wrk_available(), reason="wrk is not installed (apt-get install wrk)")
def test_wrk_against_the_production_server(tmp_path):
    with load.production_server(workers=2) as port:
        result = load.run_load(port, charts.request_body(20), 20, connections=2, seconds=1, tool="wrk")
    assert result.tool == "wrk" and result.requests > 0 and result.errors == 0


@pytest.mark.slow  # measures over loopback sockets / a production server process
def test_every_chart_shape_is_measured_in_process_and_over_loopback():
    from bench import shape_run, shapes

    results = shape_run.run(0.1, 0.3, 0, "python", sizes=(40,), large=False)
    assert {row["shape"] for row in results["in_process"]} == set(shapes.SHAPES)
    for row in results["in_process"]:
        assert row["errors"] == 0 and row["cards"] >= 1 and row["ratio_p50"] > 0 and len(row["load_average"]) == 2
    assert all(row["errors"] == 0 and row["requests"] > 0 for row in results["loopback"])
    assert "Chart shapes, in process" in shape_run.table(results)


def test_chart_shapes_are_seeded_and_sized():
    from bench import shapes

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for shape in shapes.SHAPES:
        assert shapes.chart(shape, 500, 3, now) == shapes.chart(shape, 500, 3, now)
        assert len(shapes.chart(shape, 500, 3, now)) == 500
    large = shapes.request_body(*shapes.LARGE)
    assert 13 * 2**20 < len(large) < 16 * 2**20  # the reliability issue's ~14 MiB, under the 16 MiB body limit
