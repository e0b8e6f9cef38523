"""Prefetch resolution (CDS Hooks 2.0 §Prefetch Template).

A key the client sent is used as is; `null` means the client ran the query and found nothing. Only a
missing key is fetched from fhirServer. If the data cannot be had, the answer is 412.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import requests

from hooks.service import CdsService

from .config import Settings
from .errors import ApiError
from .fhir_client import FetchError, FetchLimits, FhirFetcher
from .request_models import HookRequest

_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z]+)\s*\}\}")
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="prefetch")


def render(template: str, context: dict[str, Any]) -> str | None:
    """Fill {{context.x}} tokens; None if a token has no value in this context."""
    missing = False

    def fill(match: re.Match) -> str:
        nonlocal missing
        value = context.get(match.group(1))
        if not isinstance(value, str) or not value:
            missing = True
            return ""
        return quote(value, safe="")

    rendered = _TOKEN.sub(fill, template)
    return None if missing else rendered


def server_allowed(fhir_server: str, settings: Settings) -> bool:
    return fhir_server.rstrip("/") in {allowed.rstrip("/") for allowed in settings.fhir_allowed_servers}


def resolve(service: CdsService, request: HookRequest, settings: Settings, session: requests.Session,
            allowed_server: str | None = None, client_servers: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Return one value per prefetch key: what the client sent, or what the service fetched itself.
    `client_servers`, when given (an authenticated client), are the only FHIR bases that may be fetched from;
    otherwise `allowed_server` and the global settings.fhir_allowed_servers (development mode)."""
    given = request.prefetch or {}
    values = {key: given[key] for key in service.prefetch if key in given}
    missing = {key: template for key, template in service.prefetch.items() if key not in given}
    if not missing:
        return values
    if request.fhirServer is None:
        raise ApiError(412, "prefetch incomplete and no fhirServer to fetch from: missing "
                       + ", ".join(sorted(missing)), [(f"prefetch.{key}", f"prefetch '{key}' missing") for key in sorted(missing)])
    if client_servers is not None:
        permitted = request.fhirServer.rstrip("/") in {server.rstrip("/") for server in client_servers}
    else:
        permitted = ((allowed_server is not None and request.fhirServer.rstrip("/") == allowed_server.rstrip("/"))
                     or server_allowed(request.fhirServer, settings))
    if not permitted:
        raise ApiError(403, "fhirServer is not a FHIR server this service may call", [("fhirServer", "not allowed")])
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    limits = FetchLimits(settings.fhir_connect_timeout, settings.fhir_read_timeout, settings.fhir_max_pages,
                         settings.fhir_max_bytes)
    fetcher = FhirFetcher(request.fhirServer, token, limits, session)

    def fetch(key: str, template: str) -> tuple[str, Any]:
        relative = render(template, request.context)
        if relative is None:
            return key, None  # a token this hook's context does not carry: nothing to ask for
        if "?" in relative:
            return key, fetcher.search(relative)
        return key, fetcher.read(relative)

    futures = [_POOL.submit(fetch, key, template) for key, template in missing.items()]
    failures = []
    for future in futures:
        try:
            key, value = future.result()
            values[key] = value
        except FetchError as error:
            failures.append(str(error))
    if failures:
        raise ApiError(412, "required FHIR data could not be fetched: " + "; ".join(sorted(set(failures))))
    return values
