"""The shipped reverse proxy (deploy/nginx.conf, issue 11 item 6) run for real with Debian's nginx in front of a
real `hemoptysis-cds serve`: only the listen address, server_name and upstream address are rendered for the test,
so every timeout, buffer, body cap and error page checked here is the shipped text, with the shipped values."""
from __future__ import annotations

import json
import select
import socket
import subprocess
import threading
import time
from contextlib import ExitStack

import pytest
import requests

from tests.support import fhir_factory as f
from tests.support.live_server import serving
from tests.support.nginx_proxy import NGINX, SHIPPED, access_log, config_test, running_nginx, write_config

if NGINX is None:
    pytest.skip("no nginx binary: `make test` installs Debian's nginx when run as root (apt-get install -y nginx); "
                "the reverse-proxy tests are skipped", allow_module_level=True)

SERVICE = "/cds-services/massive-hemoptysis"
SIXTEEN_MIB = 16 * 1024 * 1024


def _open(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(data)
    return sock


def _exchange(port: int, request: bytes) -> tuple[int, bytes, float]:
    started = time.monotonic()
    with _open(port, request) as sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), body, time.monotonic() - started


def _until_cut(sock: socket.socket, trickle: bytes | None, result: dict, deadline: float = 20) -> None:
    """Send `trickle` every 0.5 s (or nothing) until nginx answers or closes; record what came and when."""
    started = time.monotonic()
    answer = b""
    while time.monotonic() - started < deadline:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            answer += chunk
            if not chunk:
                break
            continue
        if trickle:
            try:
                sock.sendall(trickle)
            except OSError:
                break
    result.update(answer=answer, took=time.monotonic() - started)


def _outcome(body: bytes) -> dict:
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"], outcome
    return outcome


def test_the_shipped_file_with_tls_and_http2_passes_nginx_t_on_this_nginx(tmp_path):
    """The listen line as shipped (TLS + HTTP/2): only a throwaway certificate is added."""
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                           "-subj", "/CN=localhost", "-days", "1", "-keyout", str(tmp_path / "key.pem"),
                           "-out", str(tmp_path / "cert.pem")], capture_output=True, timeout=30)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    site = SHIPPED.read_text().replace(
        "# ssl_certificate / ssl_certificate_key: the site's own",
        f"ssl_certificate {tmp_path / 'cert.pem'};\n    ssl_certificate_key {tmp_path / 'key.pem'};")
    assert "ssl_certificate_key" in site
    checked = config_test(tmp_path, write_config(tmp_path, site))
    assert checked.returncode == 0, checked.stderr


@pytest.mark.slow
def test_through_the_shipped_nginx_slow_clients_are_cut_and_errors_are_operation_outcomes(tmp_path):
    (tmp_path / "service").mkdir()
    with ExitStack() as upstream:
        base = upstream.enter_context(serving(tmp_path / "service", workers=1))
        upstream_port = int(base.rsplit(":", 1)[1])
        with running_nginx(tmp_path / "nginx", upstream_port) as port:
            # Started first, they run while the rest is checked: shipped client_header_timeout / client_body_timeout
            # are 10 s, kept as shipped (the whole test stays near 12 s).
            trickler, trickled = _open(port, b"GET /healthz HTTP/1.1\r\n"), {}
            staller, stalled = _open(port, b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: cds\r\n"
                                     b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"hook\""), {}
            watchers = [threading.Thread(target=_until_cut, args=(trickler, b"X", trickled)),
                        threading.Thread(target=_until_cut, args=(staller, None, stalled))]
            for watcher in watchers:
                watcher.start()

            held = [_open(port, b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: cds\r\nContent-Le")
                    for _ in range(50)]
            held += [_open(port, b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: cds\r\nContent-Type: "
                                 b"application/json\r\nContent-Length: 5000\r\n\r\n{\"hook\"") for _ in range(10)]
            time.sleep(0.2)
            healths = [_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: cds\r\nConnection: close\r\n\r\n")
                       for _ in range(5)]
            assert all(status == 200 for status, _, _ in healths), healths
            health_worst = max(took for _, _, took in healths)
            assert health_worst < 1.0, health_worst

            call = requests.post(f"http://127.0.0.1:{port}{SERVICE}", timeout=15,
                                 json=f.patient_view_request([f.patient(), f.hemoptysis(), f.spo2(86)]))
            assert call.status_code == 200 and call.json()["cards"], call.text[:300]

            # Over 16 MiB, chunked (no Content-Length to judge by): nginx counts what arrives and answers 413.
            piece = b"a" * 65536
            oversize = (b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
            big = _open(port, oversize)
            sender = threading.Thread(target=_send_chunks, args=(big, piece, SIXTEEN_MIB // len(piece) + 16))
            sender.start()
            big.settimeout(15)
            answer = b""
            while chunk := _recv_or_empty(big):
                answer += chunk
            sender.join(15)
            big.close()
            head, too_large = answer.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 413") and b"application/fhir+json" in head, head
            assert "16 MiB" in _outcome(too_large)["issue"][0]["diagnostics"]

            # Headers over 8 KiB and a malformed request line: nginx's own 400, as an OperationOutcome, not HTML.
            for bad in (b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
                        b"G@T /healthz HTTP/1.1\r\nHost: cds\r\n\r\n"):
                status, body, _ = _exchange(port, bad)
                assert status == 400 and _outcome(body)["issue"][0]["code"] == "invalid", (status, body)

            for watcher in watchers:
                watcher.join(20)
            for sock in held + [trickler, staller]:
                sock.close()
            # A header trickler is disconnected at client_header_timeout (10 s, total, not per byte) with no answer.
            assert trickled["answer"] == b"" and 9.0 < trickled["took"] < 12.0, trickled
            # So is a body that stops, at client_body_timeout (10 s without a byte); nginx logs both as 408.
            assert stalled["answer"] == b"" and 9.0 < stalled["took"] < 12.0, stalled

            upstream.close()  # the service stops; nginx stays
            status, body, _ = _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: cds\r\nConnection: close\r\n\r\n")
            assert status in (502, 503) and _outcome(body)["issue"][0]["code"] == "transient", (status, body)
            down = requests.post(f"http://127.0.0.1:{port}{SERVICE}", timeout=15, json=f.patient_view_request([f.patient()]))
            assert down.status_code in (502, 503) and down.headers["Content-Type"].startswith("application/fhir+json")
            _outcome(down.content)

    log = access_log(tmp_path / "nginx")
    # nginx answered the oversize body, the bad requests, the trickler and the stalled body itself: the service never saw them.
    for status in ("413", "408", "400"):
        lines = [line for line in log if line.startswith(status + " ")]
        assert lines and all(line.split(" ")[1] == "-" for line in lines), log
    print(f"through nginx with 60 held connections: /healthz worst of 5 {health_worst * 1000:.1f} ms; header "
          f"trickler cut after {trickled['took']:.2f} s (no answer); stalled body cut after {stalled['took']:.2f} s; "
          f"413 body {too_large.decode()}")


def _send_chunks(sock: socket.socket, piece: bytes, count: int) -> None:
    try:
        for _ in range(count):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # nginx stops reading once the body is over the cap


def _recv_or_empty(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""
