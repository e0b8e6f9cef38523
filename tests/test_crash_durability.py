"""Kill -9 the real server (gunicorn via `hemoptysis-cds serve`, on loopback) while clients send service calls
and feedback, then open its database: every call that got a 200 has its audit row and its cards, and every
feedback that got a 200 is stored. Bounded: about 10 s."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from server.storage.schema import audit_events
from server.storage.schema import feedback, issued_cards
from tests import fhir_factory as f
from tests import jwt_kit as k

REPO = Path(__file__).resolve().parent.parent
SERVICE = "/cds-services/massive-hemoptysis"
CLIENT_THREADS = 4
ACKS_BEFORE_KILL = 60
MAX_SECONDS = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(tmp_path: Path, port: int, database_url: str) -> subprocess.Popen:
    clients = k.write_clients_file(tmp_path, [k.default_client()])
    env = {name: value for name, value in os.environ.items() if not name.startswith("HEMOPTYSIS_CDS_")}
    env.update({
        "HEMOPTYSIS_CDS_HOST": "127.0.0.1", "HEMOPTYSIS_CDS_PORT": str(port), "HEMOPTYSIS_CDS_WORKERS": "2",
        "HEMOPTYSIS_CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HEMOPTYSIS_CDS_DATABASE_URL": database_url,
        "HEMOPTYSIS_CDS_AUTH_MODE": "required", "HEMOPTYSIS_CDS_CLIENTS_FILE": str(clients),
        "HEMOPTYSIS_CDS_AUDIT_KEY": "crash-test-audit-key-0123456789abcdef",
    })
    log = open(tmp_path / "server.log", "wb")
    # its own session, so the kill reaches the gunicorn master and its workers and nothing else
    return subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_healthy(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited at start"
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become healthy within 20 s")


class Traffic:
    def __init__(self, base: str):
        self.base = base
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked_calls: dict[str, list[str]] = {}  # hookInstance -> card uuids, for every 200
        self.acked_feedback: list[tuple[str, str]] = []  # (card uuid, outcomeTimestamp), for every 200
        self.failed = 0  # requests that got no answer: in flight when the server died, or sent after
        self.in_flight = 0  # requests sent and not yet answered, right now
        self.other_statuses: list[int] = []

    def _post(self, session: requests.Session, path: str, body: dict) -> requests.Response:
        token = k.sign(k.session_key("ES384"), k.claims(self.base + path))
        with self.lock:
            self.in_flight += 1
        try:
            return session.post(self.base + path, json=body, headers=k.bearer(token), timeout=10)
        finally:
            with self.lock:
                self.in_flight -= 1

    def run(self) -> None:
        session = requests.Session()
        resources = [f.patient(), f.hemoptysis(), f.spo2(86), f.inr(3.1), f.weight(80),
                     f.medication_statement("855332", "Warfarin Sodium 5 MG Oral Tablet")]
        while not self.stop.is_set():
            request = f.patient_view_request(resources)
            request["hookInstance"] = str(uuid.uuid4())
            try:
                response = self._post(session, SERVICE, request)
                if response.status_code != 200:
                    self.other_statuses.append(response.status_code)
                    continue
                cards = response.json()["cards"]
                with self.lock:
                    self.acked_calls[request["hookInstance"]] = [card["uuid"] for card in cards]
                stamp = f"2026-11-23T10:{len(self.acked_calls) % 60:02d}:00.{uuid.uuid4().int % 10**6:06d}Z"
                item = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": stamp}
                answer = self._post(session, f"{SERVICE}/feedback", {"feedback": [item]})
                if answer.status_code == 200:
                    with self.lock:
                        self.acked_feedback.append((cards[0]["uuid"], stamp))
                else:
                    self.other_statuses.append(answer.status_code)
            except requests.RequestException:
                with self.lock:
                    self.failed += 1
                if self.stop.is_set() or self.failed > 50:
                    return
                time.sleep(0.05)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sigkill_loses_no_acknowledged_record(tmp_path, request, database):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # PostgreSQL: the throwaway cluster of tests/pg_scratch.py (skips, saying why, where there is none)
    database_url = (f"sqlite:///{tmp_path}/crash.sqlite3" if database == "sqlite"
                    else request.getfixturevalue("postgres_url"))
    server = _start_server(tmp_path, port, database_url)
    started = time.monotonic()
    try:
        _wait_healthy(base, server)
        traffic = Traffic(base)
        threads = [threading.Thread(target=traffic.run, daemon=True) for _ in range(CLIENT_THREADS)]
        for thread in threads:
            thread.start()
        while len(traffic.acked_feedback) < ACKS_BEFORE_KILL and time.monotonic() - started < MAX_SECONDS / 2:
            time.sleep(0.02)
        with traffic.lock:
            in_flight_at_kill = traffic.in_flight
        os.killpg(server.pid, signal.SIGKILL)  # mid-stream: the client threads are still sending
        server.wait(timeout=10)
        killed_at = time.monotonic()
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=15)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    assert not traffic.other_statuses, traffic.other_statuses
    assert len(traffic.acked_calls) >= 10, (tmp_path / "server.log").read_text(errors="replace")[-3000:]

    engine = create_engine(database_url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        audited = {row.hook_instance: row for row in connection.execute(
            select(audit_events).where(audit_events.c.kind == "service", audit_events.c.status == 200))}
        cards_stored = set(connection.execute(select(issued_cards.c.card_uuid)).scalars())
        feedback_stored = set(tuple(row) for row in connection.execute(select(feedback.c.card_uuid, feedback.c.outcome_timestamp)).all())
        feedback_audited = connection.execute(
            select(audit_events.c.id).where(audit_events.c.kind == "feedback", audit_events.c.status == 200)).all()

    missing_audit = [hook for hook in traffic.acked_calls if hook not in audited]
    missing_cards = [uuid_ for uuids in traffic.acked_calls.values() for uuid_ in uuids if uuid_ not in cards_stored]
    missing_feedback = [item for item in traffic.acked_feedback if item not in feedback_stored]
    figures = {"acknowledged_calls": len(traffic.acked_calls), "acknowledged_feedback": len(traffic.acked_feedback),
               "in_flight_at_kill": in_flight_at_kill,
               "unanswered": traffic.failed, "audit_rows_200": len(audited),
               "feedback_audit_rows_200": len(feedback_audited), "seconds": round(killed_at - started, 1)}
    print(f"crash test ({engine.dialect.name}):", json.dumps(figures))
    assert not missing_audit and not missing_cards and not missing_feedback, (figures, missing_audit[:3],
                                                                               missing_cards[:3], missing_feedback[:3])
    for hook_instance, card_uuids in traffic.acked_calls.items():
        assert [card["uuid"] for card in json.loads(audited[hook_instance].cards)] == card_uuids
    assert traffic.failed >= 1, "the kill should have left requests unanswered"
