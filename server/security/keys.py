"""Where a client's public keys come from: the keys pinned in the clients file (inline JWK Set, JWK Set file reread
when it changes) and the JWK Sets behind the client's allowlisted `jku` URLs (fetched through the one bounded
GET, cached)."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Callable

import requests

from server.fhir.bounded_get import BodyTooLarge, open_get, read_body
from server.security.caller import AuthError, JwtPolicy
from server.security.clients import TrustedClient, check_jwk_set, read_jwks_file

log = logging.getLogger("hemoptysis_cds.auth")


class JwksFetcher:
    """JWK Sets behind allowlisted `jku` URLs: fetched with a timeout, no redirects, a size cap; cached."""

    def __init__(self, session: requests.Session, policy: JwtPolicy, clock: Callable[[], float] = time.monotonic):
        self._session = session
        self._policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, dict]]] = {}  # url -> (fetched at, kid -> jwk)

    def keys(self, url: str, *, refresh: bool = False) -> dict[str, dict]:
        with self._lock:
            cached = self._cache.get(url)
            now = self._clock()
            if cached:
                age = now - cached[0]
                if age < self._policy.jwks_cache_seconds and not (refresh and age >= self._policy.jwks_refresh_interval_seconds):
                    return cached[1]
            try:
                keys = self._fetch(url)
            except AuthError:
                if cached:  # the client's key server is down: keep the keys we had rather than lock everyone out
                    log.warning("jwks refresh failed; using cached keys", extra={"fields": {"jku": url}})
                    return cached[1]
                raise
            self._cache[url] = (now, keys)
            return keys

    def _fetch(self, url: str) -> dict[str, dict]:
        try:
            response = open_get(self._session, url, headers={"Accept": "application/json, application/jwk-set+json"},
                                timeout=(self._policy.jwks_timeout_seconds, self._policy.jwks_timeout_seconds))
        except requests.RequestException as error:
            raise AuthError(f"jwks-unreachable ({type(error).__name__})") from None
        with response:
            if response.status_code != 200:
                raise AuthError(f"jwks-http-{response.status_code}")
            try:
                body = read_body(response, lambda size: size <= self._policy.jwks_max_bytes, chunk_size=16384)
            except BodyTooLarge:
                raise AuthError("jwks-too-large") from None
        try:
            return {key["kid"]: key for key in check_jwk_set(json.loads(body))}
        except ValueError:
            raise AuthError("jwks-invalid") from None


class StaticKeys:
    """A client's out-of-band keys: the inline JWK Set and the JWK Set file (reread when the file changes)."""

    def __init__(self, client: TrustedClient):
        self._inline = {key["kid"]: key for key in check_jwk_set(client.jwks)} if client.jwks else {}
        self._file = client.jwks_file
        self._file_mtime: float | None = None
        self._file_keys: dict[str, dict] = {}
        self._lock = threading.Lock()
        if self._file:
            self._reload_file()

    def _reload_file(self) -> None:
        try:
            mtime = os.stat(self._file).st_mtime
            if mtime != self._file_mtime:
                self._file_keys = {key["kid"]: key for key in read_jwks_file(self._file)}
                self._file_mtime = mtime
        except (OSError, ValueError) as error:
            log.warning("jwks file unreadable; keeping the keys read before",
                        extra={"fields": {"error": type(error).__name__}})

    def find(self, kid: str, refresh: bool = False) -> dict | None:
        if kid in self._inline:
            return self._inline[kid]
        if self._file:
            with self._lock:
                if refresh and kid not in self._file_keys:
                    self._reload_file()
                return self._file_keys.get(kid)
        return None
