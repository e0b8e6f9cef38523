"""Slow clients and slow FHIR servers cannot hold the service (issue 11 item 6), through the production server
(`hemoptysis-cds serve`: gunicorn with deploy/gunicorn.conf.py): /healthz and a call with complete prefetch are
answered at once while 50 clients never finish their headers, 10 never finish their bodies, and two calls wait on
a trickling FHIR server; a trickling client gets a 408 OperationOutcome."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from bench.load import LOOPBACK, production_server
from tests.support import fhir_factory as f
from tests.support.slow_servers import send_json, slow_fhir_server

pytestmark = pytest.mark.slow
SERVICE = "/cds-services/massive-hemoptysis"


def _timed_request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes, float]:
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, port), timeout=15) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1], time.monotonic() - started


def _open(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=15)
    sock.sendall(data)
    return sock


def _trickling_fhir(server, handler, path):
    send_json(handler, f.searchset([f.hemoptysis()]) if "Patient/" not in path else f.patient(), byte_delay=0.2)


def test_idle_and_trickling_clients_and_a_slow_fhir_server_cannot_hold_the_service(tmp_path):
    with slow_fhir_server(_trickling_fhir) as fhir:
        env = {"HEMOPTYSIS_CDS_FHIR_ALLOWED_SERVERS": fhir.base_url, "HEMOPTYSIS_CDS_FHIR_DEADLINE_SECONDS": "3",
               "HEMOPTYSIS_CDS_REQUEST_HEADER_TIMEOUT_SECONDS": "1.5", "HEMOPTYSIS_CDS_THREADS": "4",
               "HEMOPTYSIS_CDS_LOG_FORMAT": "text"}
        with production_server(workers=1, extra_env=env) as port:
            held = [_open(port, b"POST /cds-services/massive-hemoptysis HTTP/1.1\r\nHost: cds\r\nContent-Le")
                    for _ in range(50)]
            held += [_open(port, b"POST /cds-services/massive-hemoptysis HTTP/1.1\r\nHost: cds\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"hook\"")
                     for _ in range(10)]
            fetching = json.dumps(f.patient_view_request([], with_prefetch=False, fhir_server=fhir.base_url)).encode()
            pending = [threading.Thread(target=_timed_request, args=(port, "POST", SERVICE, fetching)) for _ in range(2)]
            for thread in pending:
                thread.start()
            time.sleep(0.3)  # the two calls are now waiting on the trickling FHIR server
            status, _, health_took = _timed_request(port, "GET", "/healthz")
            assert status == 200 and health_took < 1.0, health_took
            complete = json.dumps(f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)])).encode()
            status, body, call_took = _timed_request(port, "POST", SERVICE, complete)
            assert status == 200 and json.loads(body)["cards"] and call_took < 2.0, call_took

            trickler = _open(port, b"GET /healthz HTTP/1.1\r\n")
            for _ in range(6):  # a header byte every 0.4 s: past the 1.5 s header time, the service answers 408
                time.sleep(0.4)
                try:
                    trickler.sendall(b"X")
                except OSError:
                    break
            trickler.settimeout(3)
            answer = trickler.recv(65536)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["resourceType"] == "OperationOutcome"
            for thread in pending:
                thread.join(10)
            for sock in held + [trickler]:
                sock.close()
    print(f"healthz {health_took * 1000:.0f} ms, complete-prefetch call {call_took * 1000:.0f} ms with 60 held "
          "connections and 2 calls on a trickling FHIR server")


def test_gunicorns_own_errors_are_operation_outcomes_not_html(tmp_path):
    env = {"HEMOPTYSIS_CDS_LOG_FORMAT": "text", "HEMOPTYSIS_CDS_MAX_BODY_BYTES": "4000",
           "HEMOPTYSIS_CDS_AUTH_MODE": "development"}
    chunk = b'{"hook": "patient-view", "pad": "' + b"a" * 3000
    chunked = (b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
               + b"0\r\n\r\n")
    with production_server(workers=1, extra_env=env) as port:
        for request, status in ((chunked, 413),(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
                                (b"GET /healthz HTTP/1.1\r\nHost: cds\r\n" + b"X-Many: 1\r\n" * 120 + b"\r\n", 431),
                                (b"GET /" + b"p" * 5000 + b" HTTP/1.1\r\nHost: cds\r\n\r\n", 414),
                                (b"G@T /healthz HTTP/1.1\r\nHost: cds\r\n\r\n", 400)):
            with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
                sock.sendall(request)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            head, body = answer.split(b"\r\n\r\n", 1)
            assert head.startswith(f"HTTP/1.1 {status}".encode()), answer[-400:]
            assert (b"application/fhir+json" in head or b"application/json" in head) and b"<html" not in answer
            assert json.loads(body)["resourceType"] == "OperationOutcome"
