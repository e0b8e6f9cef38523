"""Where replayed requests go: this service in-process (a Flask test client) or a running server over HTTP."""
from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.config import Settings


class TargetError(Exception):
    """The target could not be asked at all (connection refused, not JSON, ...)."""


class Target(Protocol):
    base_url: str

    def services(self) -> list[dict]: ...

    def call(self, service_id: str, body: dict) -> tuple[int, Any]: ...

    def close(self) -> None: ...


EXAMPLE_CONCEPT_MAP = Path(__file__).resolve().parents[2] / "deploy" / "site-concept-map.example.json"


def in_process_settings(database_dir: Path) -> Settings:
    """Settings for an in-process replay: built from this fixed map, never from the caller's environment, so a
    golden does not depend on who replays it. Development auth (no JWT); no FHIR server may be called back."""
    return Settings.from_env({
        "HEMOPTYSIS_CDS_AUTH_MODE": "development",
        "HEMOPTYSIS_CDS_DATABASE_URL": f"sqlite:///{database_dir}/replay.sqlite3",
        "HEMOPTYSIS_CDS_SQLITE_SYNCHRONOUS": "OFF",  # a throw-away store
        "HEMOPTYSIS_CDS_PUBLIC_BASE_URL": "http://127.0.0.1:8080",
        "HEMOPTYSIS_CDS_FHIR_ALLOWED_SERVERS": "",
        "HEMOPTYSIS_CDS_AUDIT_KEY_FILE": f"{database_dir}/audit.key",  # keys of a throw-away audit trail
        # the example site ConceptMap: the site-terminology fixtures chart with its local codes
        "HEMOPTYSIS_CDS_CONCEPT_MAP_FILE": str(EXAMPLE_CONCEPT_MAP),
    })


class InProcessTarget:
    def __init__(self) -> None:
        from server.http.app import create_app  # imported here: the HTTP mode must not need the app's dependencies loaded

        self._directory = tempfile.TemporaryDirectory(prefix="hemoptysis-cds-replay-")
        # The app's warnings (development auth, a new audit key, a refused call) are expected here and would bury
        # the replay report; errors still show. The level is restored on close.
        self._logger = logging.getLogger("hemoptysis_cds")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        settings = in_process_settings(Path(self._directory.name))
        self.base_url = settings.public_base_url
        self._client = create_app(settings).test_client()

    def services(self) -> list[dict]:
        response = self._client.get("/cds-services")
        if response.status_code != 200:
            raise TargetError(f"discovery answered {response.status_code}")
        return response.get_json()["services"]

    def call(self, service_id: str, body: dict) -> tuple[int, Any]:
        response = self._client.post(f"/cds-services/{service_id}", data=json.dumps(body),
                                     content_type="application/json")
        return response.status_code, response.get_json(silent=True)

    def close(self) -> None:
        self._logger.setLevel(self._level)
        self._directory.cleanup()


class JwtSigner:
    """Signs a fresh client JWT for every call, as a CDS client does (CDS Hooks 2.0 §Trusting CDS Clients):
    aud = the exact URL called, a new jti each time (a server that refuses replayed tokens accepts them), 5 min."""

    _CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

    def __init__(self, private_key_pem: bytes, issuer: str, kid: str, jku: str | None = None):
        try:
            self._key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise TargetError(f"the JWT key is not an unencrypted PEM private key ({error})") from None
        if isinstance(self._key, ec.EllipticCurvePrivateKey) and self._key.curve.name in self._CURVES:
            self.alg = self._CURVES[self._key.curve.name]
        elif isinstance(self._key, rsa.RSAPrivateKey):
            self.alg = "RS384"
        else:
            raise TargetError("the JWT key must be an EC (P-256/384/521) or RSA private key")
        self._issuer, self._headers = issuer, {"kid": kid, "typ": "JWT", **({"jku": jku} if jku else {})}

    def token(self, audience: str) -> str:
        now = int(time.time())
        claims = {"iss": self._issuer, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._key, algorithm=self.alg, headers=self._headers)


class HttpTarget:
    """A running server. URL is its base (http://host:port) or its discovery URL (.../cds-services)."""

    def __init__(self, url: str, bearer: str | None = None, timeout: float = 30.0,
                 session: requests.Session | None = None, signer: JwtSigner | None = None) -> None:
        self.base_url = url.rstrip("/").removesuffix("/cds-services")
        self._session = session or requests.Session()
        self._bearer, self._signer = bearer, signer
        self._timeout = timeout

    def _send(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json"}
        token = self._signer.token(url) if self._signer else self._bearer
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._session.request(method, url, json=body, headers=headers, timeout=self._timeout,
                                         allow_redirects=False)
        except requests.RequestException as error:
            raise TargetError(f"{method} {self.base_url}{path} failed: {error.__class__.__name__}") from None

    def services(self) -> list[dict]:
        response = self._send("GET", "/cds-services")
        if response.status_code != 200:
            raise TargetError(f"GET {self.base_url}/cds-services answered {response.status_code}")
        try:
            return response.json()["services"]
        except (ValueError, KeyError, TypeError):
            raise TargetError(f"GET {self.base_url}/cds-services did not answer a discovery document") from None

    def call(self, service_id: str, body: dict) -> tuple[int, Any]:
        response = self._send("POST", f"/cds-services/{service_id}", body)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def close(self) -> None:
        self._session.close()
