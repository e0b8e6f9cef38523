"""The verified-JWT path (CDS Hooks 2.0 §Trusting CDS Clients): the bench acts as an EHR that signs each call
with its own ES384 key, registered in a clients file, so the service verifies signature, claims and jti replay
and writes its audit row. Skipped, not faked, when the security layer (server/security/tokens.py) is absent."""
from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ISSUER = "https://bench-ehr.example.org"
KEY_ID = "bench-es384"


def available() -> bool:
    return importlib.util.find_spec("server.security.tokens") is not None


def _signing_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP384R1())


def _clients_settings(private_key) -> Callable[[Path], dict[str, str]]:
    import jwt

    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))

    def extra(workdir: Path) -> dict[str, str]:
        clients = workdir / "clients.json"
        clients.write_text(json.dumps({"clients": [{
            "issuer": ISSUER, "name": "benchmark EHR",
            "jwks": {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "ES384"}]}}]}), encoding="utf-8")
        return {"HEMOPTYSIS_CDS_AUTH_MODE": "required", "HEMOPTYSIS_CDS_CLIENTS_FILE": str(clients)}

    return extra


def _signed_headers(private_key, count: int):
    """Sign every token before the timed loop: signing is the EHR's cost, verifying is the service's."""
    import jwt

    def prepare(settings) -> Callable[[], dict[str, str]]:
        from .inprocess import SERVICE_URL
        audience = settings.public_base_url + SERVICE_URL
        now = int(time.time())
        tokens = [jwt.encode({"iss": ISSUER, "sub": ISSUER, "aud": audience, "iat": now, "exp": now + 600,
                              "jti": str(uuid.uuid4())}, private_key, algorithm="ES384",
                             headers={"kid": KEY_ID, "typ": "JWT"}) for _ in range(count)]
        return lambda: {"Authorization": f"Bearer {tokens.pop()}"}

    return prepare


def measure(size: int, repetitions: int, synchronous: str = "NORMAL") -> dict:
    if not available():
        return {"skipped": "server/security/tokens.py is not present (the security layer is not merged)"}
    from .inprocess import measure as measure_latency

    key = _signing_key()
    warmup = 5
    return measure_latency(size, repetitions, synchronous=synchronous, warmup=warmup, auth="jwt-es384",
                           settings_extra=_clients_settings(key), paired_development=True,
                           headers_for=_signed_headers(key, repetitions + warmup + 1)).as_dict()
