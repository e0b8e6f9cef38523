"""Client authentication as CDS Hooks 2.0 §Trusting CDS Clients asks: a JWT in `Authorization: Bearer`, signed
with the client's private key (asymmetric algorithms only), checked against the allowlisted issuer's keys.

What is checked, in this order (the best-practices list of the specification, plus the usual JWT hygiene):
header `alg` asymmetric and allowed for the client, `kid` present; `iss` on the allowlist; `jku` (if named) on
that client's allowlist; the key found by `kid`, a pinned key first even when a jku is named, then the JWK Set
(refreshed once on an unknown kid);
signature; `aud` = the endpoint URL (string or array); `exp`, `iat` (not in the future), `nbf` if present, with a
small leeway; a lifetime no longer than the replay window; `tenant` on the client's list when it has one; `jti`
not seen before (in process here, across processes by the database: see audit.claim_jti).

Any failure is an AuthError whose `reason` goes to the log and the audit trail, never to the caller (the
answer is a bare 401) and never with the token.
"""
from __future__ import annotations

import base64
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import jwt
import orjson
import requests

from server.run.cpu_slot import waiting_on_the_network
from server.security.caller import AuthError, Caller, JwtPolicy
from server.security.clients import ASYMMETRIC_ALGORITHMS, TrustedClient
from server.security.keys import JwksFetcher, StaticKeys

log = logging.getLogger("hemoptysis_cds.auth")

# Curve that each ES algorithm needs (RFC 7518 §3.4); PyJWT would refuse a mismatch too, this names it.
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]  # CDS Hooks 2.0 JWT payload; `sub` is not required


class ReplayCache:
    """jti values seen by this process until their token expires. Bounded; the database is the shared truth."""

    def __init__(self, capacity: int = 100_000):
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def seen(self, issuer: str, jti: str, now: float) -> bool:
        with self._lock:
            expires = self._seen.get((issuer, jti))
            return expires is not None and expires >= now

    def remember(self, issuer: str, jti: str, expires_at: int, now: float) -> None:
        with self._lock:
            self._seen[(issuer, jti)] = expires_at
            while self._seen:
                oldest_key, oldest_expiry = next(iter(self._seen.items()))
                if len(self._seen) <= self._capacity and oldest_expiry >= now:
                    break
                self._seen.popitem(last=False)


class JwtVerifier:
    def __init__(self, clients: dict[str, TrustedClient], session: requests.Session, policy: JwtPolicy | None = None,
                 clock: Callable[[], float] = time.time):
        self.policy = policy or JwtPolicy()
        self._clients = clients
        self._static = {issuer: StaticKeys(client) for issuer, client in clients.items()}
        self._jwks = JwksFetcher(session, self.policy)
        self._clock = clock
        self.replays = ReplayCache()
        self._pyjwk_cache: dict[tuple[bytes, str], jwt.PyJWK] = {}

    def verify(self, authorization: str | None, audience: str) -> Caller:
        token = _bearer_token(authorization)
        header, unverified = _unverified_parts(token)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise AuthError("missing-iss")
        client = self._clients.get(issuer)
        if client is None:
            raise AuthError("unknown-issuer", issuer)
        try:
            claims = self._verified_claims(token, header, client, audience)
        except AuthError as error:
            error.issuer = issuer[:200]
            raise
        now = self._clock()
        jti = claims["jti"]
        if self.replays.seen(issuer, jti, now):
            raise AuthError("replayed-jti", issuer)
        self.replays.remember(issuer, jti, int(claims["exp"]), now)
        return Caller(issuer=issuer, tenant=claims.get("tenant"), jti=jti, expires_at=int(claims["exp"]), client=client)

    # ------------------------------------------------------------------------------------------ steps
    def _verified_claims(self, token: str, header: dict[str, Any], client: TrustedClient, audience: str) -> dict:
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS or alg not in client.algorithms:
            raise AuthError(f"alg-not-allowed ({str(alg)[:16]})")
        typ = header.get("typ")
        if typ is not None and str(typ).upper() != "JWT":
            raise AuthError("typ-not-jwt")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("missing-kid")
        jwk = self._find_key(client, kid, header.get("jku"))
        key = self._pyjwk(jwk, alg)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=audience, issuer=client.issuer,
                leeway=self.policy.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True, "verify_exp": True,
                         "verify_iat": True, "verify_nbf": True, "verify_aud": True, "verify_iss": True})
        except jwt.ExpiredSignatureError:
            raise AuthError("expired") from None
        except jwt.ImmatureSignatureError as error:
            raise AuthError("iat-in-future" if "iat" in str(error) else "not-yet-valid") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong-audience") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad-signature") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthError(f"missing-claim ({error.claim})") from None
        except jwt.PyJWTError as error:
            raise AuthError(f"invalid-jwt ({type(error).__name__})") from None
        except (TypeError, ValueError):  # a claim PyJWT reads as a number is an object or a list
            raise AuthError("claim-not-a-number") from None
        if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 256:
            raise AuthError("bad-jti")
        _check_claim_types(claims)
        if int(claims["exp"]) - int(claims["iat"]) > self.policy.max_lifetime_seconds:
            raise AuthError("lifetime-too-long")
        tenant = claims.get("tenant")
        if client.tenants and tenant not in client.tenants:
            raise AuthError("tenant-not-allowed")
        return claims

    def _find_key(self, client: TrustedClient, kid: str, jku: Any) -> dict:
        if jku is not None and (not isinstance(jku, str) or jku.rstrip("/") not in client.jku):
            raise AuthError("jku-not-allowed")  # never fetched: the allowlist is the SSRF guard
        static = self._static[client.issuer]
        # A key pinned in the clients file is used whenever its kid matches, even when the header names a jku (the
        # CDS Hooks Sandbox always does): no outbound call is needed to trust a registered key.
        found = static.find(kid)
        if found:
            return found
        # Not pinned: the jku the header names, or without one the client's allowlisted JWK Sets.
        urls = [jku.rstrip("/")] if jku is not None else list(client.jku)
        for url in urls:
            with waiting_on_the_network():  # the slot is let go outside the fetcher's lock (cpu_slot.py)
                keys = self._jwks.keys(url)
            if kid in keys:
                return keys[kid]
        # An unknown kid is how key rotation looks from here: reread once, then give up.
        found = static.find(kid, refresh=True)
        if found:
            return found
        for url in urls:
            with waiting_on_the_network():
                keys = self._jwks.keys(url, refresh=True)
            if kid in keys:
                return keys[kid]
        raise AuthError("unknown-kid")

    def _pyjwk(self, jwk: dict, alg: str) -> jwt.PyJWK:
        if jwk.get("alg") not in (None, alg):
            raise AuthError("alg-does-not-match-key")
        if jwk.get("use") not in (None, "sig"):
            raise AuthError("key-not-for-signing")
        family = "EC" if alg.startswith("ES") else "RSA"
        if jwk.get("kty") != family or (family == "EC" and jwk.get("crv") != _EC_CURVES[alg]):
            raise AuthError("alg-does-not-match-key")
        cache_key = (orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS), alg)
        key = self._pyjwk_cache.get(cache_key)
        if key is None:
            try:
                key = jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError:
                raise AuthError("unusable-key") from None
            if len(self._pyjwk_cache) > 1000:
                self._pyjwk_cache.clear()
            self._pyjwk_cache[cache_key] = key
        return key


# RFC 7519 §4.1: exp, iat and nbf are NumericDate (a JSON number); PyJWT would read "1700000000" as one. The
# string claims this service reads or audits must be strings (a `tenant` object gave a 500 before).
_NUMERIC_CLAIMS = ("exp", "iat", "nbf")
_STRING_CLAIMS = ("iss", "sub", "jti", "tenant")


def _check_claim_types(claims: dict[str, Any]) -> None:
    for name in _NUMERIC_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise AuthError(f"claim-not-a-number ({name})")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise AuthError(f"claim-not-a-string ({name})")


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the claims, read without the key only to find the issuer and its key: the verified decode
    (PyJWT, with the key) reads and checks all of it again. Two base64url segments and two JSON objects, ~5 us (a
    PyJWT decode without verification took ~45 us)."""
    segments = token.split(".")
    if len(segments) != 3:
        raise AuthError("malformed-jwt")
    try:
        header, claims = (orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
                          for segment in segments[:2])
    except (ValueError, TypeError):  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise AuthError("malformed-jwt") from None
    if type(header) is not dict or type(claims) is not dict:
        raise AuthError("malformed-jwt")
    return header, claims


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing-token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("not-bearer")
    token = token.strip()
    if len(token) > 16384:
        raise AuthError("token-too-large")
    return token


def build_verifier(settings, session: requests.Session) -> JwtVerifier | None:
    """The verifier for settings.auth_mode 'required'; None (and a loud warning) for 'development'."""
    from server.security.clients import load_clients  # here, not at import: only this reads the file system

    if settings.development_auth:
        log.warning("AUTHENTICATION IS OFF: HEMOPTYSIS_CDS_AUTH_MODE=development. Any caller can call every "
                    "service; every response says so in the X-Hemoptysis-CDS-Auth header. Never use this in "
                    "production.", extra={"fields": {"auth_mode": "development"}})
        return None
    clients = load_clients(settings.clients_file) if settings.clients_file else {}
    if not clients:
        log.warning("no trusted CDS clients are configured (HEMOPTYSIS_CDS_CLIENTS_FILE): every service call "
                    "will be refused with 401", extra={"fields": {"auth_mode": "required"}})
    policy = JwtPolicy(leeway_seconds=settings.jwt_leeway_seconds,
                       max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
                       jwks_cache_seconds=settings.jwks_cache_seconds,
                       jwks_refresh_interval_seconds=settings.jwks_refresh_interval_seconds)
    log.info("client authentication required", extra={"fields": {"auth_mode": "required", "clients": len(clients)}})
    return JwtVerifier(clients, session, policy)
