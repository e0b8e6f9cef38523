"""The CLI people expect: serve flags over the environment, progress bars on a terminal only, and
`--reference-instant latest` on data sets dated in the future (the MIMIC-IV demo lies in the 2110s-2130s)."""
from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from argparse import Namespace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.cli import main, serve_settings
from server.replay.request_files import load_request
from tests.live_server import REPO
from tests.test_shared_data import SHARED_DATA

MIMIC = SHARED_DATA / "mimic-iv-fhir-demo-2.1.0"


def test_serve_flags_override_the_environment(monkeypatch):
    for name, value in (("HOST", "0.0.0.0"), ("PORT", "9999"), ("WORKERS", "7")):
        monkeypatch.setenv(f"HEMOPTYSIS_CDS_{name}", value)  # restored after the test, whatever serve writes
    monkeypatch.delenv("HEMOPTYSIS_CDS_PUBLIC_BASE_URL", raising=False)
    settings = serve_settings(Namespace(host="127.0.0.2", port=8123, workers=3))
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.2", 8123, 3)
    assert settings.public_base_url == "http://127.0.0.2:8123"
    # the flags reach what gunicorn.conf.py and the workers read
    assert os.environ["HEMOPTYSIS_CDS_PORT"] == "8123" and os.environ["HEMOPTYSIS_CDS_WORKERS"] == "3"
    kept = serve_settings(Namespace(host=None, port=None, workers=None))
    assert (kept.host, kept.port, kept.workers) == ("127.0.0.2", 8123, 3)


def _future_bundle(tmp_path: Path) -> Path:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p-2110", "birthDate": "2050-05-05"}},
        {"resource": {"resourceType": "Condition", "id": "c-1", "subject": {"reference": "Patient/p-2110"},
                      "recordedDate": "2112-03-01T08:00:00Z",
                      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "66857006"}]}}},
        {"resource": {"resourceType": "Observation", "id": "o-1", "status": "final",
                      "subject": {"reference": "Patient/p-2110"}, "effectiveDateTime": "2112-03-01T08:30:00Z",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                      "valueQuantity": {"value": 86, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}},
    ]}
    path = tmp_path / "future.json"
    path.write_text(json.dumps(bundle))
    return path


def test_reference_instant_latest_with_dates_in_the_future(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["request-from-bundle", str(_future_bundle(tmp_path)), "--reference-instant", "latest",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    assert json.loads(out.read_text())["_fixture"]["referenceInstant"] == "2112-03-01T08:30:00Z"
    now = datetime.now(timezone.utc)
    sent = load_request(out, now).body["prefetch"]["vitals"]["entry"][0]["resource"]["effectiveDateTime"]
    assert abs(datetime.fromisoformat(sent.replace("Z", "+00:00")) - now) < timedelta(seconds=2)


def test_reference_instant_latest_says_when_nothing_is_dated(tmp_path, capsys):
    path = tmp_path / "undated.json"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "p-undated"}))
    assert main(["request-from-bundle", str(path), "--reference-instant", "latest", "-o", str(tmp_path / "r.json")]) == 0
    assert "no record carries a date" in capsys.readouterr().err
    assert "referenceInstant" not in json.loads((tmp_path / "r.json").read_text())["_fixture"]


@pytest.mark.skipif(not MIMIC.is_dir(), reason=f"the MIMIC-IV demo is not at {MIMIC} (HEMOPTYSIS_CDS_SHARED_DATA)")
def test_mimic_demo_replays_as_current_data(tmp_path, capsys):
    patient_dir = sorted(p for p in MIMIC.iterdir() if p.is_dir())[0]
    out = tmp_path / "requests"
    out.mkdir()
    assert main(["request-from-bundle", str(patient_dir), "--reference-instant", "latest", "-o", f"{out}/"]) == 0
    written = sorted(out.glob("*.json"))
    assert written
    instant = json.loads(written[0].read_text())["_fixture"]["referenceInstant"]
    assert instant > "2100"  # the demo's shifted dates, now the data's "now"
    capsys.readouterr()
    main(["replay", str(out), "--update"])  # records a golden beside it: no server error either way
    report = capsys.readouterr().out
    assert "replay OK" in report and "ERROR" not in report
    from server.replay.target import InProcessTarget
    target = InProcessTarget()
    try:
        status, body = target.call("massive-hemoptysis", load_request(written[0], datetime.now(timezone.utc)).body)
    finally:
        target.close()
    assert status == 200
    assert "dated in the future" not in json.dumps(body)


REPLAY = [sys.executable, "-m", "server.cli", "replay", "fixtures/scenarios/severity"]


def _read_while_running(process: subprocess.Popen, primary: int) -> bytes:
    """What the process draws on the terminal, read as it runs (a pty drops unread output when it closes)."""
    drawn = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            drawn += chunk
        elif process.poll() is not None:
            break
    return drawn


def test_progress_bar_on_a_terminal_only():
    piped = subprocess.run(REPLAY, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert piped.returncode == 0 and b"replay OK" in piped.stdout
    assert piped.stderr == b""  # not a terminal: no bar, nothing at all
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # a 100 x 30 terminal
    try:
        process = subprocess.Popen(REPLAY, cwd=REPO, stdout=subprocess.DEVNULL, stderr=secondary)
        drawn = _read_while_running(process, primary)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(secondary)
        os.close(primary)
    assert b"replay:" in drawn and b"request" in drawn and b"\r" in drawn
