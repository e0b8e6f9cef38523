"""Calls back to the client's FHIR server, bounded: timeouts, no redirects, a cap on pages and bytes, and
`next` links followed only on the same origin. The access token goes to that server and nowhere else."""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests


class FetchError(Exception):
    """The FHIR server could not give the data; the message is safe to show (no token, no patient id)."""


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float
    read_timeout: float
    max_pages: int
    max_bytes: int


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


class FhirFetcher:
    def __init__(self, base_url: str, access_token: str | None, limits: FetchLimits, session: requests.Session):
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._headers = {"Accept": "application/fhir+json, application/json"}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"
        self._limits = limits
        self._session = session
        self._bytes_read = 0

    def __repr__(self) -> str:
        return f"FhirFetcher(base_url={self.base_url!r})"

    def _get(self, url: str) -> dict | None:
        # Same origin and under the base path: the access token goes to this FHIR server's API and nowhere else.
        if _origin(url) != self._origin or not (url.startswith(self.base_url + "/") or url.startswith(self.base_url + "?")):
            raise FetchError("a link pointed outside the FHIR server's base URL; not followed")
        try:
            response = self._session.get(
                url, headers=self._headers, allow_redirects=False, stream=True,
                timeout=(self._limits.connect_timeout, self._limits.read_timeout))
        except requests.Timeout:
            raise FetchError("the FHIR server did not answer in time") from None
        except requests.RequestException as error:
            raise FetchError(f"the FHIR server could not be reached ({type(error).__name__})") from None
        with response:
            if 300 <= response.status_code < 400:
                raise FetchError(f"the FHIR server answered a redirect ({response.status_code}); redirects are not followed")
            if response.status_code == 404:
                return None
            if response.status_code in (401, 403):
                raise FetchError(f"the FHIR server refused access ({response.status_code})")
            if response.status_code != 200:
                raise FetchError(f"the FHIR server answered HTTP {response.status_code}")
            body = bytearray()
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    body.extend(chunk)
                    if self._bytes_read + len(body) > self._limits.max_bytes:
                        raise FetchError(f"the FHIR data exceed {self._limits.max_bytes} bytes")
            except requests.RequestException as error:
                # e.g. ContentDecodingError: a Content-Encoding chain too long (urllib3 allows 5) or not decodable
                raise FetchError(f"the FHIR server's answer could not be read ({type(error).__name__})") from None
            self._bytes_read += len(body)
        try:
            data = json.loads(body)
        except ValueError:
            raise FetchError("the FHIR server answered something that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FetchError("the FHIR server answered JSON that is not a FHIR resource")
        return data

    def read(self, relative: str) -> dict | None:
        """A read (Type/id): the resource, or None when the server has none."""
        return self._get(f"{self.base_url}/{relative}")

    def search(self, relative: str) -> dict:
        """A search: one searchset Bundle with the entries of up to max_pages pages."""
        bundle = self._get(f"{self.base_url}/{relative}")
        if bundle is None:
            raise FetchError("the FHIR server does not know this search (404)")
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
