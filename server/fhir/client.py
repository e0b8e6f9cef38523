"""Calls back to the client's FHIR server, bounded: timeouts, one wall-clock deadline for the whole call, a cap on
call-backs in flight per server, no redirects, a cap on pages and bytes, and `next` links followed only under the
FHIR base. The access token goes to that server and nowhere else."""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass

import requests
import urllib3

from server.fhir.bounded_get import BodyTooLarge, open_get, read_body
from server.fhir.fetch_budget import BudgetExceeded, Deadline, ServerSlots
from server.security.url_scope import url_under_base


class FetchError(Exception):
    """The FHIR server could not give the data; the message is safe to show (no token, no patient id).
    `code` is the OperationOutcome issue type that fits the failure, `status` the server's HTTP status if any."""

    def __init__(self, message: str, code: str = "processing", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


# The issue type for a FHIR server's HTTP status: a 400 is a query the server would not run, not "not found".
def _status_code(status: int) -> str:
    if status in (401, 403):
        return "security"
    if status == 404:
        return "not-found"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "transient"
    return "not-supported"  # 400, 405, 406, 422 ...: the server does not support this query


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float
    read_timeout: float
    max_pages: int
    max_bytes: int


class FhirFetcher:
    def __init__(self, base_url: str, access_token: str | None, limits: FetchLimits, session: requests.Session,
                 deadline: Deadline | None = None, slots: ServerSlots | None = None):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/fhir+json, application/json"}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"
        self._limits = limits
        self._session = session
        self._deadline = deadline or Deadline(limits.connect_timeout + limits.read_timeout * max(1, limits.max_pages))
        self._slots = slots
        self._bytes_lock = threading.Lock()
        self._bytes_read = 0
        self._open: set[requests.Response] = set()  # responses being read, so abort() can cut them
        self._aborted = False

    def __repr__(self) -> str:
        return f"FhirFetcher(base_url={self.base_url!r})"

    def abort(self) -> None:
        """The call's deadline passed: cut the reads still in progress, so no fetch thread stays held by a
        trickling server (a blocked recv returns once its socket is shut down)."""
        self._aborted = True
        for response in list(self._open):
            sock = getattr(getattr(response.raw, "connection", None), "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _left(self) -> float:
        if self._aborted:
            raise FetchError(f"the FHIR server {self.base_url} did not answer within the call's deadline of "
                             f"{self._deadline.seconds:g} s", "timeout")
        try:
            return self._deadline.check(self.base_url)
        except BudgetExceeded as exceeded:
            raise FetchError(str(exceeded), exceeded.code) from None

    def _get(self, url: str) -> dict | None:
        # Under the base once normalised: the access token goes to this FHIR server's API and nowhere else, and
        # what is requested is the URL that was checked.
        checked = url_under_base(url, self.base_url)
        if checked is None:
            raise FetchError("a link pointed outside the FHIR server's base URL; not followed", "security")
        if self._slots is None:
            return self._get_checked(checked)
        try:
            with self._slots.slot(self.base_url, self._deadline):
                return self._get_checked(checked)
        except BudgetExceeded as exceeded:
            raise FetchError(str(exceeded), exceeded.code) from None

    def _get_checked(self, url: str) -> dict | None:
        left = self._left()
        try:
            response = open_get(self._session, url, headers=self._headers,
                                timeout=(min(self._limits.connect_timeout, left), min(self._limits.read_timeout, left)))
        except requests.Timeout:
            raise FetchError(f"the FHIR server {self.base_url} did not answer in time", "timeout") from None
        except requests.RequestException as error:
            if self._aborted:
                self._left()
            raise FetchError(f"the FHIR server could not be reached ({type(error).__name__})", "transient") from None
        self._open.add(response)
        try:
            with response:
                status = response.status_code
                if 300 <= status < 400:
                    raise FetchError(f"the FHIR server answered a redirect ({status}); redirects are not followed",
                                     "processing", status)
                if status == 404:
                    return None
                if status in (401, 403):
                    raise FetchError(f"the FHIR server refused access ({status})", "security", status)
                if status != 200:
                    raise FetchError(f"the FHIR server answered HTTP {status}", _status_code(status), status)
                body = self._read_body(response)
        finally:
            self._open.discard(response)
        try:
            data = json.loads(body)
        except ValueError:
            raise FetchError("the FHIR server answered something that is not JSON", "structure") from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FetchError("the FHIR server answered JSON that is not a FHIR resource", "structure")
        return data

    def _read_body(self, response: requests.Response) -> bytearray:
        """The body, with the deadline checked between reads (read1 returns what has arrived, so a trickle
        cannot keep one read waiting past it beyond one socket timeout, and abort() cuts even that)."""
        def fits(size: int) -> bool:  # the cap is on the whole call's data, all keys and pages together
            with self._bytes_lock:
                return self._bytes_read + size <= self._limits.max_bytes

        try:
            body = read_body(response, fits, before_read=self._left)
        except BodyTooLarge:
            raise FetchError(f"the FHIR data exceed {self._limits.max_bytes} bytes", "too-costly") from None
        # urllib3's errors are OSError / ValueError, or its HTTPError (DecodeError: a Content-Encoding chain too long)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            self._left()  # a cut read is the deadline's doing: say so
            if "timed out" in str(error).lower():
                raise FetchError(f"the FHIR server {self.base_url} did not answer in time", "timeout") from None
            raise FetchError(f"the FHIR server's answer could not be read ({type(error).__name__})", "transient") from None
        with self._bytes_lock:
            self._bytes_read += len(body)
        return body

    def read(self, relative: str) -> dict | None:
        """A read (Type/id): the resource, or None when the server has none."""
        return self._get(f"{self.base_url}/{relative}")

    def search(self, relative: str) -> dict:
        """A search: one searchset Bundle with the entries of up to max_pages pages."""
        bundle = self._get(f"{self.base_url}/{relative}")
        if bundle is None:
            raise FetchError("the FHIR server does not know this search (404)", "not-found", 404)
        if bundle.get("resourceType") != "Bundle":
            return bundle  # an OperationOutcome; the caller reads it as a failed query
        entries = list(bundle.get("entry") or ())
        pages = 1
        next_url = _next_link(bundle)
        while next_url and pages < self._limits.max_pages:
            page = self._get(next_url)
            if not page or page.get("resourceType") != "Bundle":
                break
            entries.extend(page.get("entry") or ())
            pages += 1
            next_url = _next_link(page)
        merged = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if next_url:
            merged["meta"] = {"tag": [{"system": "urn:hemoptysis-cds", "code": "truncated",
                                       "display": f"only the first {pages} pages were read"}]}
        return merged


def _next_link(bundle: dict) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None
