"""Who is calling: the Caller a verified client JWT (or development mode) gives, the AuthError a refused one
gives (its `reason` goes to the log and audit, never to the caller), and the JwtPolicy the verification and
the key fetching follow."""
from __future__ import annotations

from dataclasses import dataclass

from server.security.clients import TrustedClient


class AuthError(Exception):
    def __init__(self, reason: str, issuer: str | None = None):
        super().__init__(reason)
        self.reason = reason  # a short code for logs and audit: never shown to the caller
        # the issuer claimed, once known (the audit says who tried); unverified text, so bounded
        self.issuer = issuer[:200] if isinstance(issuer, str) else None


@dataclass(frozen=True)
class Caller:
    """Who made this call: a verified client, or nobody in development mode."""
    issuer: str
    tenant: str | None = None
    jti: str | None = None
    expires_at: int | None = None
    client: TrustedClient | None = None

    @property
    def development(self) -> bool:
        return self.client is None

    def fhir_servers(self) -> tuple[str, ...]:
        return self.client.fhir_servers if self.client else ()


DEVELOPMENT_CALLER = Caller(issuer="development-unauthenticated")


@dataclass(frozen=True)
class JwtPolicy:
    leeway_seconds: int = 30  # clock skew tolerated on exp / iat / nbf
    max_lifetime_seconds: int = 3600  # exp - iat; also how long a jti must be remembered (best practice: <= 1 h)
    jwks_cache_seconds: int = 300  # how long a fetched jku JWK Set is trusted before it is fetched again
    jwks_refresh_interval_seconds: int = 10  # unknown kid: refetch at most this often (no refetch storms)
    jwks_timeout_seconds: float = 3.0
    jwks_max_bytes: int = 256 * 1024
