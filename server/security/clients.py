"""The CDS clients this service trusts, read once at start from a JSON or TOML file (HEMOPTYSIS_CDS_CLIENTS_FILE).

One entry per issuer (the JWT `iss`): where its public keys are (an inline JWK Set, a JWK Set file, and/or the
`jku` URLs it may name, CDS Hooks 2.0 §Trusting CDS Clients: "maintaining an allowlist of iss and jku urls"), the
FHIR base URL(s) its calls may name as `fhirServer`, the tenants it may speak for, and whether it may read the
audit endpoints. Both shapes are accepted:

    {"clients": [{"issuer": "https://ehr.example.org", "jwks_file": "ehr-jwks.json",
                  "jku": ["https://ehr.example.org/.well-known/jwks.json"],
                  "fhir_servers": ["https://ehr.example.org/fhir"], "tenants": ["hospital-a"]}]}
    {"clients": {"https://ehr.example.org": {"jwks": {"keys": [...]}, "fhir_server": "https://ehr.example.org/fhir"}}}
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# CDS Hooks 2.0: never `none`, never HMAC; ES384 and RS384 RECOMMENDED. The other asymmetric JWS algorithms are
# accepted by default (a client can be narrowed to fewer); EdDSA is not named by the specification: left out.
ASYMMETRIC_ALGORITHMS = ("ES384", "RS384", "ES256", "ES512", "RS256", "RS512", "PS256", "PS384", "PS512")
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class ClientsFileError(ValueError):
    """The clients file cannot be used; the service refuses to start rather than trust the wrong clients."""


def _https_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise ValueError(f"{what} must be an absolute URL: {value!r}")
    if parts.scheme == "http" and (parts.hostname or "") not in _LOOPBACK:
        raise ValueError(f"{what} must use https (plain http only on loopback): {value!r}")
    return value.rstrip("/")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class TrustedClient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt key must not silently weaken a rule

    issuer: str = Field(min_length=1)
    jwks: dict[str, Any] | None = None  # an inline JWK Set {"keys": [...]}
    jwks_file: str | None = None  # a JWK Set file, relative to the clients file
    jku: tuple[str, ...] = ()  # the jku URLs this client may name (exact match)
    fhir_servers: tuple[str, ...] = ()  # FHIR bases its calls may name as fhirServer
    tenants: tuple[str, ...] = ()  # when given, the JWT `tenant` must be one of these
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    audit_reader: bool = False  # may read GET /audit/...
    name: str | None = None  # for people reading the audit trail

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, field in (("fhir_server", "fhir_servers"), ("fhir_base", "fhir_servers"),
                             ("fhir_bases", "fhir_servers"), ("tenant", "tenants"), ("jku_allowlist", "jku")):
            if alias in data:
                data[field] = list(_as_list(data.get(field) or [])) + list(_as_list(data.pop(alias)))
        for field in ("fhir_servers", "tenants", "jku", "algorithms"):
            if field in data:
                data[field] = _as_list(data[field])
        return data

    @field_validator("jku")
    @classmethod
    def _jku_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_https_url(url, "a jku URL") for url in value)

    @field_validator("fhir_servers")
    @classmethod
    def _fhir_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_https_url(url, "a FHIR base URL") for url in value)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if refused or not value:
            raise ValueError(f"algorithms must be a non-empty subset of {', '.join(ASYMMETRIC_ALGORITHMS)}; "
                             f"refused: {', '.join(refused) or '(empty)'}")
        return value

    @field_validator("jwks")
    @classmethod
    def _jwk_set(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_jwk_set(value)
        return value

    @model_validator(mode="after")
    def _has_keys(self) -> "TrustedClient":
        if not (self.jwks or self.jwks_file or self.jku):
            raise ValueError(f"client {self.issuer!r} names no public key: give jwks, jwks_file or jku")
        return self


def check_jwk_set(value: Any) -> list[dict[str, Any]]:
    """The usable public keys of a JWK Set; private keys and symmetric keys are refused outright."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ValueError("a JWK Set must be an object with a 'keys' array")
    keys = []
    for key in value["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ValueError("each JWK must be an RSA or EC public key (kty RSA or EC)")
        if "d" in key:
            raise ValueError(f"JWK {key.get('kid')!r} holds a private key; give the public key only")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise ValueError("each JWK needs a kid (CDS Hooks: the JWT header names its key by kid)")
        keys.append(key)
    return keys


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        return tomllib.loads(text)
    return json.loads(text)


def load_clients(path: str | Path) -> dict[str, TrustedClient]:
    """issuer -> TrustedClient. Any problem raises ClientsFileError naming the file and the entry."""
    path = Path(path)
    try:
        data = _read(path)
    except FileNotFoundError:
        raise ClientsFileError(f"clients file {path} does not exist") from None
    except (OSError, ValueError) as error:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ClientsFileError(f"clients file {path} cannot be read: {error}") from None
    entries = data.get("clients") if isinstance(data, dict) else None
    if isinstance(entries, dict):
        entries = [{"issuer": issuer, **(entry or {})} for issuer, entry in entries.items()]
    if not isinstance(entries, list):
        raise ClientsFileError(f"clients file {path}: expected a 'clients' list or table")
    clients: dict[str, TrustedClient] = {}
    for index, entry in enumerate(entries):
        try:
            client = TrustedClient.model_validate(entry)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in error.errors())
            raise ClientsFileError(f"clients file {path}, client #{index + 1}: {problems}") from None
        if client.issuer in clients:
            raise ClientsFileError(f"clients file {path}: issuer {client.issuer!r} is listed twice")
        if client.jwks_file:
            jwks_path = (path.parent / client.jwks_file).resolve()
            try:
                check_jwk_set(_read(jwks_path))
            except (OSError, ValueError) as error:
                raise ClientsFileError(f"clients file {path}, client {client.issuer!r}: jwks_file {jwks_path}: {error}") from None
            client = client.model_copy(update={"jwks_file": str(jwks_path)})
        clients[client.issuer] = client
    return clients


def read_jwks_file(path: str) -> list[dict[str, Any]]:
    return check_jwk_set(_read(Path(path)))
