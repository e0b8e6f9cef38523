"""A real FHIR server on a loopback socket that answers slowly on purpose: a byte at a time, slow pages, or
holding requests, counting the call-backs in flight. For the deadline and worker-model tests."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class SlowFhirServer:
    def __init__(self, answer: Callable[["SlowFhirServer", BaseHTTPRequestHandler, str], None]):
        self.answer = answer
        self.in_flight = 0
        self.most_in_flight = 0
        self.requests = 0
        self.cut_at: list[float] = []  # when a write failed: the service closed the connection
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    server.answer(server, self, urlsplit(self.path).path)
                except (BrokenPipeError, ConnectionResetError):
                    server.cut_at.append(time.monotonic())
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def __enter__(self) -> "SlowFhirServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_json(handler: BaseHTTPRequestHandler, data: dict, *, byte_delay: float = 0.0) -> None:
    body = json.dumps(data).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/fhir+json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not byte_delay:
        handler.wfile.write(body)
        return
    for index in range(len(body)):
        handler.wfile.write(body[index:index + 1])
        handler.wfile.flush()
        time.sleep(byte_delay)


@contextmanager
def slow_fhir_server(answer) -> Iterator[SlowFhirServer]:
    with SlowFhirServer(answer) as server:
        yield server
