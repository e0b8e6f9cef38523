"""The app called as a WSGI server calls it: an environ, `start_response`, the body iterated and closed.

werkzeug's test client does the same plus work no EHR's request pays (an EnvironBuilder, URL and IRI
conversions, a cookie jar, a wrapped response): ~0.2 ms of a ~3 ms call on the 2-core machine. A production
server builds its own environ; that cost is in the loopback figures. The in-process figure is the app's own
time, so it is measured this way; the bench still reports the test client's figure beside it (`test_client_ms`),
as every run before session 5 measured."""
from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any


class WsgiCall:
    """POSTs to one path of one WSGI app."""

    def __init__(self, app: Callable[..., Any], path: str) -> None:
        self.app = app
        self._environ = {
            "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False}

    def post(self, body: bytes, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """The status code and the whole response body."""
        environ = dict(self._environ)
        environ["CONTENT_TYPE"] = content_type
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        status: list[str] = []

        def start_response(line: str, response_headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            status.append(line)
            return lambda data: None

        answer = self.app(environ, start_response)
        try:
            data = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()  # what a server does once the body is sent (the app's call_on_close work runs here)
        return int(status[-1].split(" ", 1)[0]), data
