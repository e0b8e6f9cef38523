"""The verified-JWT path (CDS Hooks 2.0 §Trusting CDS Clients): the bench acts as an EHR that signs each call
with its own key, registered in a clients file, so the service verifies signature, claims and jti replay and
writes its audit row. Both algorithms the specification recommends are measured: ES384 (the CDS Hooks Sandbox
signs with it; the issue's target is judged on it) and RS384 (Epic's default, per ../shared/reference). Skipped,
not faked, when the security layer (server/security/tokens.py) is absent."""
from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ISSUER = "https://bench-ehr.example.org"
ALGORITHMS = ("ES384", "RS384")
RSA_KEY_BITS = 2048  # the smallest size RFC 7518 section 3.3 allows for RS384, and the size EHR keys commonly have


def available() -> bool:
    return importlib.util.find_spec("server.security.tokens") is not None


def _key_id(algorithm: str) -> str:
    return f"bench-{algorithm.lower()}"


def _signing_key(algorithm: str):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if algorithm == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def _clients_settings(private_key, algorithm: str) -> Callable[[Path], dict[str, str]]:
    import jwt

    family = jwt.algorithms.ECAlgorithm if algorithm == "ES384" else jwt.algorithms.RSAAlgorithm
    public = json.loads(family.to_jwk(private_key.public_key()))

    def extra(workdir: Path) -> dict[str, str]:
        clients = workdir / "clients.json"
        clients.write_text(json.dumps({"clients": [{
            "issuer": ISSUER, "name": "benchmark EHR",
            "jwks": {"keys": [{**public, "kid": _key_id(algorithm), "use": "sig", "alg": algorithm}]}}]}),
            encoding="utf-8")
        return {"HEMOPTYSIS_CDS_AUTH_MODE": "required", "HEMOPTYSIS_CDS_CLIENTS_FILE": str(clients)}

    return extra


def _signed_headers(private_key, algorithm: str, count: int):
    """Sign every token before the timed loop: signing is the EHR's cost, verifying is the service's."""
    import jwt

    def prepare(settings) -> Callable[[], dict[str, str]]:
        from .inprocess import SERVICE_URL
        audience = settings.public_base_url + SERVICE_URL
        now = int(time.time())
        tokens = [jwt.encode({"iss": ISSUER, "sub": ISSUER, "aud": audience, "iat": now, "exp": now + 600,
                              "jti": str(uuid.uuid4())}, private_key, algorithm=algorithm,
                             headers={"kid": _key_id(algorithm), "typ": "JWT"}) for _ in range(count)]
        return lambda: {"Authorization": f"Bearer {tokens.pop()}"}

    return prepare


def measure(size: int, repetitions: int, synchronous: str = "NORMAL", algorithm: str = "ES384") -> dict:
    if not available():
        return {"skipped": "server/security/tokens.py is not present (the security layer is not merged)"}
    from .inprocess import measure as measure_latency

    key = _signing_key(algorithm)
    warmup = 5
    return measure_latency(size, repetitions, synchronous=synchronous, warmup=warmup, auth=f"jwt-{algorithm.lower()}",
                           settings_extra=_clients_settings(key, algorithm), paired_development=True,
                           headers_for=_signed_headers(key, algorithm, repetitions + warmup + 1)).as_dict()
