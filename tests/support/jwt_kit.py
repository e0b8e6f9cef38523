"""Client-side JWTs as an EHR's CDS client makes them (CDS Hooks 2.0 §Trusting CDS Clients): keys, JWK Sets,
signed tokens, and a clients file that registers them with the service."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://ehr.example.org"
FHIR_BASE = "https://ehr.example.org/fhir"
JKU = "https://ehr.example.org/.well-known/jwks.json"


@dataclass(frozen=True)
class SigningKey:
    alg: str
    kid: str
    private_key: Any

    def public_jwk(self) -> dict:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization
        return self.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def new_key(alg: str = "ES384", kid: str | None = None) -> SigningKey:
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        private = ec.generate_private_key(curve)
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(alg, kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", private)


@lru_cache(maxsize=None)
def session_key(alg: str = "ES384") -> SigningKey:
    """One key per algorithm for the whole test session (RSA generation costs ~50 ms)."""
    return new_key(alg, kid=f"test-{alg.lower()}")


def jwks(*keys: SigningKey) -> dict:
    return {"keys": [key.public_jwk() for key in keys]}


def claims(aud: str | list[str], iss: str = ISSUER, lifetime: int = 300, now: int | None = None, **extra) -> dict:
    now = int(time.time()) if now is None else now
    return {"iss": iss, "aud": aud, "exp": now + lifetime, "iat": now, "jti": str(uuid.uuid4()), **extra}


def sign(key: SigningKey, payload: dict, **header) -> str:
    return jwt.encode(payload, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT", **header})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_clients_file(directory: Path, clients: list[dict]) -> Path:
    path = directory / "clients.json"
    path.write_text(json.dumps({"clients": clients}), encoding="utf-8")
    return path


def default_client(**overrides) -> dict:
    """The test EHR: the session keys inline, its FHIR base, allowed to read the audit trail."""
    return {"issuer": ISSUER, "name": "test EHR", "jwks": jwks(session_key("ES384"), session_key("RS384")),
            "jku": [JKU], "fhir_servers": [FHIR_BASE], "audit_reader": True, **overrides}
