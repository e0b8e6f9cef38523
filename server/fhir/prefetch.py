"""Prefetch resolution (CDS Hooks 2.0 §Prefetch Template).

A key the client sent is used as is; `null` means the client ran the query and found nothing. Only a
missing key is fetched from fhirServer, all of them within one wall-clock deadline. What happens when a key's data
cannot be had (a fetch that fails or runs out of time, an OperationOutcome from the client) is the key's declared
strategy (hooks/prefetch_keys.py): a required key makes the call 412, naming the key, the server's status and an
issue type that fits; an optional key is named on the cards, which are made without it.
"""
from __future__ import annotations

from collections.abc import Callable

import re
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import requests

from cql_equivalents.fhir_select import UNREADABLE
from hooks.prefetch_keys import OPTIONAL, strategy_of, without_text
from hooks.service import CdsService

from server.run.cpu_slot import waiting_on_the_network
from server.config import Settings
from server.fhir.client import FetchError, FetchLimits, FhirFetcher
from server.fhir.fetch_budget import Deadline, ServerSlots
from server.http.errors import ApiError
from server.http.request_models import HookRequest
from server.security.fhir_access import fhir_server_usable

_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z]+)\s*\}\}")
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="prefetch")
_SLOTS: dict[int, ServerSlots] = {}  # per configured cap; one per process in practice


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




@dataclass
class Resolved:
    values: dict[str, Any]
    # one line per optional key whose data could not be had, to be named on the cards
    unavailable: list[str] = field(default_factory=list)


def _server_slots(settings: Settings) -> ServerSlots:
    return _SLOTS.setdefault(settings.fhir_max_concurrent_per_server, ServerSlots(settings.fhir_max_concurrent_per_server))


def _client_outcomes(service: CdsService, values: dict[str, Any]) -> list[str]:
    """Required keys the client answered with an OperationOutcome: it could not run the query."""
    # the value first: almost never an OperationOutcome, so the key's strategy is seldom looked up
    return sorted(key for key, value in values.items()
                  if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"
                  and strategy_of(service.prefetch[key]) != OPTIONAL)


_TEMPLATE_TYPE = re.compile(r"\s*([A-Z][A-Za-z]+)([/?])")


def _of_another_type(service: CdsService, values: dict[str, Any]) -> dict[str, Any]:
    """Each key whose value is a resource of another type than its template asks for replaced by the pool's
    unreadable marker, so the cards name it instead of reading it as something else or dropping it unsaid. The
    template's type, a Bundle (its entries are read as before) and an OperationOutcome (the client's failure) are
    what a key may hold."""
    checked = dict(values)
    for key, value in values.items():
        if type(value) is not dict:
            continue  # null or a JSON of the wrong kind: the pool names those already
        sent = value.get("resourceType")
        if type(sent) is not str or sent == "Bundle" or sent == "OperationOutcome":
            continue  # no resourceType (named by the pool), or a kind every key may hold
        asked = _template_type(service.prefetch[key])
        if asked is None or sent == asked[0]:
            continue
        wanted = _a(asked[0]) if asked[1] == "/" else f"a Bundle of {asked[0]}"
        checked[key] = {UNREADABLE: f"holds {_a(sent[:40])}, not {wanted} as its template asks"}
    return checked


@lru_cache(maxsize=512)
def _template_type(template: str) -> tuple[str, str] | None:
    """(resource type, '/' for a read or '?' for a search) a template asks for; kept per template (the services'
    templates are a fixed set), as matching each key's template on every call cost ~1 us a key."""
    found = _TEMPLATE_TYPE.match(str(template))
    return (found.group(1), found.group(2)) if found else None


def _a(resource_type: str) -> str:
    return f"{'an' if resource_type[:1] in 'AEIOU' else 'a'} {resource_type}"


def resolve(service: CdsService, request: HookRequest, settings: Settings, session: requests.Session,
            fhir_servers: tuple[str, ...], before_fetch: Callable[[], None] = lambda: None) -> Resolved:
    """One value per prefetch key: what the client sent, or what the service fetched itself, from fhirServer
    only when it is one of `fhir_servers` (security/fhir_access.py: the bases allowed for this caller).
    `before_fetch` runs once before the first outbound request (the call guard claims the token's jti there)."""
    given = request.prefetch or {}
    values = _of_another_type(service, {key: given[key] for key in service.prefetch if key in given})
    failed_at_client = _client_outcomes(service, values)
    if failed_at_client:
        raise ApiError(412, "required prefetch failed at the client (an OperationOutcome was sent): "
                       + ", ".join(failed_at_client),
                       [(f"prefetch.{key}", f"prefetch '{key}' is required") for key in failed_at_client],
                       code="incomplete")
    missing = {key: template for key, template in service.prefetch.items() if key not in given}
    if not missing:
        return Resolved(values)
    if request.fhirServer is None:
        required = sorted(key for key, template in missing.items() if strategy_of(template) != OPTIONAL)
        if required:
            raise ApiError(412, "prefetch incomplete and no fhirServer to fetch from: missing " + ", ".join(sorted(missing)),
                           [(f"prefetch.{key}", f"prefetch '{key}' missing") for key in sorted(missing)],
                           code="required")
        return Resolved(values, [f"{without_text(missing[key]) or key}: prefetch '{key}' was not sent and there is "
                                 f"no fhirServer to fetch it from; not taken into account" for key in sorted(missing)])
    if not fhir_server_usable(request.fhirServer, fhir_servers):
        raise ApiError(403, "fhirServer is not a FHIR server this service may call", [("fhirServer", "not allowed")])
    before_fetch()
    return _fetch_missing(service, request, settings, session, values, missing)


def _fetch_missing(service: CdsService, request: HookRequest, settings: Settings, session: requests.Session,
                   values: dict[str, Any], missing: dict[str, str]) -> Resolved:
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    limits = FetchLimits(settings.fhir_connect_timeout, settings.fhir_read_timeout, settings.fhir_max_pages,
                         settings.fhir_max_bytes)
    deadline = Deadline(settings.fhir_deadline_seconds)
    fetcher = FhirFetcher(request.fhirServer, token, limits, session, deadline, _server_slots(settings))

    def fetch(template: str) -> Any:
        relative = render(template, request.context)
        if relative is None:
            return None  # a token this hook's context does not carry: nothing to ask for
        return fetcher.search(relative) if "?" in relative else fetcher.read(relative)

    futures = {key: _POOL.submit(fetch, template) for key, template in missing.items()}
    with waiting_on_the_network():  # another call of this worker computes meanwhile (server/run/cpu_slot.py)
        wait(futures.values(), timeout=max(0.0, deadline.remaining()))
    failures: dict[str, FetchError] = {}
    for key, future in futures.items():
        if not future.done():
            future.cancel()
            failures[key] = FetchError(f"the FHIR server {fetcher.base_url} did not answer within the call's "
                                       f"deadline of {deadline.seconds:g} s", "timeout")
            continue
        try:
            values[key] = future.result()
        except FetchError as error:
            failures[key] = error
    if any(not future.done() for future in futures.values()):
        fetcher.abort()  # free the fetch threads a slow server still holds
    required = sorted(key for key in failures if strategy_of(missing[key]) != OPTIONAL)
    if required:
        raise _required_failed(required, failures)
    return Resolved(values, [f"{without_text(missing[key]) or key}: prefetch '{key}' could not be fetched "
                             f"({failures[key]}); not taken into account" for key in sorted(failures)])


def _required_failed(keys: list[str], failures: dict[str, FetchError]) -> ApiError:
    codes = {failures[key].code for key in keys}
    statuses = sorted({failures[key].status for key in keys if failures[key].status is not None})
    message = ("required FHIR data could not be fetched: "
               + "; ".join(f"{key}: {failures[key]}" for key in keys)
               + (f" (FHIR server status {', '.join(map(str, statuses))})" if statuses else ""))
    return ApiError(412, message, [(f"prefetch.{key}", f"{key}: {failures[key]}") for key in keys],
                    code=codes.pop() if len(codes) == 1 else "incomplete")
