"""The gunicorn worker this service runs (deploy/gunicorn.conf.py): gunicorn's gthread worker, so a slow FHIR
call-back holds one of a bounded number of threads and never the process, plus two things gthread lacks:

- A request is read in the main loop, not in a thread: its bytes are gathered from the socket as they arrive,
  without blocking, and only a complete request (headers, and a body of known length) is given to a thread. A
  client that never finishes its headers or its body holds a file descriptor, not a thread, and gets a 408 when
  its header / body time runs out (the reverse proxy in deploy/ does the same in front; this holds without it).
- gunicorn's own error answers (431 headers too large, 400 malformed request line, 500 ...) are OperationOutcomes
  as every other answer of the service, not HTML pages.
"""
from __future__ import annotations

import re
import socket
import time

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers import gthread

from server.config import Settings
from server.http.errors import operation_outcome
from server.http.jsonio import dumps

_END_OF_HEAD = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*\r\n", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue", re.IGNORECASE)
_HEAD_LIMIT = 64 * 1024  # past this without an end of headers, gunicorn's own limits answer 431


def error_response(status: int, reason: str, message: str) -> bytes:
    body = dumps(operation_outcome(status, message or reason))
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_operation_outcome(sock, status_int, reason, mesg) -> None:
    """gunicorn.util.write_error, answering an OperationOutcome instead of an HTML page."""
    util.write_nonblock(sock, error_response(status_int, reason, mesg))


util.write_error = write_operation_outcome  # gunicorn's workers call util.write_error for every error they answer


class _Gathering:
    """The bytes of one request read so far from a connection, and since when. The head is parsed once, when its
    end has arrived; a body is appended in place (a 16 MiB body is not copied once per read)."""

    def __init__(self):
        self.data = bytearray()
        self.started = time.monotonic()
        self._head_end = -1
        self._needed: int | None = None  # total bytes of head and body, when the head says so
        self._chunked = False

    def add(self, chunk: bytes) -> None:
        self.data += chunk

    @property
    def in_body(self) -> bool:
        return self._head_end >= 0

    def complete(self) -> bool:
        if self._head_end < 0:
            end = self.data.find(_END_OF_HEAD)
            if end < 0:
                return len(self.data) > _HEAD_LIMIT
            self._head_end = end
            head = bytes(self.data[:end + 2])
            if _EXPECT_CONTINUE.search(head):
                self._needed = 0  # the client waits for "100 Continue" before its body: gunicorn sends it
            elif (length := _CONTENT_LENGTH.search(head)) is not None:
                self._needed = end + 4 + int(length.group(1))
            elif b"chunked" in head.lower():
                self._chunked = True
            else:
                self._needed = 0  # no body
        if self._chunked:
            return self.data.endswith(b"0\r\n\r\n")  # the last chunk: a body of unknown length, read in full
        return len(self.data) >= (self._needed or 0)


class BoundedThreadWorker(gthread.ThreadWorker):
    def init_process(self):
        settings = Settings.from_env()
        self.header_timeout = settings.request_header_timeout_seconds
        self.body_timeout = settings.request_body_timeout_seconds
        self.max_request_bytes = settings.max_body_bytes + _HEAD_LIMIT
        super().init_process()

    def handle(self, conn):
        ready = self._gather(conn)
        if ready is not True:
            return ready
        return super().handle(conn)

    def _gather(self, conn):
        """True when a whole request is buffered for gunicorn's parser; gthread's deferral marker while bytes are
        still to come (back to the poller, no thread held); False when the connection is to be closed."""
        gathering = getattr(conn, "gathering", None)
        if gathering is None:
            gathering = conn.gathering = _Gathering()
        buffered = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        if buffered:  # read ahead by gunicorn (a pipelined request): it comes before what the socket holds
            gathering.data[:0] = buffered
        while not gathering.complete() and len(gathering.data) <= self.max_request_bytes:
            try:
                chunk = conn.sock.recv(262144, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return False
            if not chunk:  # the client closed before its request was whole: nothing more will come
                return False
            gathering.add(chunk)
        if not (gathering.complete() or len(gathering.data) > self.max_request_bytes):
            waited = time.monotonic() - gathering.started
            in_body = gathering.in_body
            if waited > (self.body_timeout if in_body else self.header_timeout):
                self._refuse(conn, 408, "Request Timeout",
                             f"the request's {'body' if in_body else 'headers'} did not arrive within "
                             f"{self.body_timeout if in_body else self.header_timeout:g} s")
                return False
            if not gathering.data:
                gathering.started = time.monotonic()  # an idle kept-alive connection: its clock starts at its first byte
            return gthread._DEFER
        conn.gathering = None
        conn.init()  # the parser, reading from the socket only past what is handed to it here
        conn.parser.unreader.unread(bytes(gathering.data))
        conn.data_ready = True
        return True

    def _refuse(self, conn, status: int, reason: str, message: str) -> None:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(1.0)
            conn.sock.sendall(error_response(status, reason, message))
        except OSError:
            pass


class QuietAccessLogger(Logger):
    """gunicorn's logger without access lines: the service writes its own structured line per call (no URL
    query, no header), and gunicorn, given a logging dict, built every access line's atoms (all request headers)
    only for its WARNING-level access logger to drop it (~50 us per request)."""

    def access(self, resp, req, environ, request_time) -> None:
        return None
