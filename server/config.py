"""Settings from environment variables (prefix HEMOPTYSIS_CDS_), with embedded defaults that serve as is."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

PREFIX = "HEMOPTYSIS_CDS_"


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    database_url: str = "sqlite:///var/hemoptysis-cds.sqlite3"
    # The URL clients use to reach this service (links in cards, JWT audience); not derived from the request,
    # since a reverse proxy changes what the request says.
    public_base_url: str = "http://127.0.0.1:8080"
    engine_base_url: str = ""  # default: {public_base_url}/engines
    smart_app_url: str = ""  # a launchable SMART app; no SMART link is offered when empty
    smart_app_label: str = "Open the hemoptysis SMART app"  # the link's text on cards
    max_body_bytes: int = 16 * 1024 * 1024
    cors_origins: tuple[str, ...] = ("*",)
    # FHIR servers the service may call back (base URLs). Empty: it never fetches, and a call that lacks
    # prefetch gets 412.
    fhir_allowed_servers: tuple[str, ...] = ()
    fhir_connect_timeout: float = 2.0
    fhir_read_timeout: float = 5.0
    fhir_max_pages: int = 5
    fhir_max_bytes: int = 20 * 1024 * 1024
    # One wall-clock deadline for all FHIR call-backs of one hook call (pages included), well under the worker
    # timeout (deploy/gunicorn.conf.py, 30 s): past it the call is answered 412 naming the slow server.
    fhir_deadline_seconds: float = 8.0
    fhir_max_concurrent_per_server: int = 4  # call-backs in flight to one FHIR server, per process
    # gunicorn (deploy/gunicorn.conf.py, server/run/gunicorn_worker.py): threads per worker, and how long a client may
    # take to send its headers, and its whole request, counted from its first byte (then 408)
    threads: int = 8
    request_header_timeout_seconds: float = 10.0
    request_body_timeout_seconds: float = 30.0
    # WAL + NORMAL: a committed transaction survives a crash of the process (the WAL is in the OS's hands);
    # only an OS crash or power loss can lose the last commits. FULL fsyncs every commit: ~0.5 ms more per
    # write, measured by bench/ (bench/README.md). Set FULL where the disk has no power-loss protection.
    sqlite_synchronous: str = "NORMAL"
    # Security (server/security/tokens.py, server/storage/audit.py). 'required': every service, feedback and audit call carries a
    # client JWT; 'development': no authentication at all, said at start and in a header on every response.
    auth_mode: str = "required"
    clients_file: str = ""  # JSON or TOML: the trusted clients (server/security/clients.py describes the format)
    # HMAC key for patient ids in the audit trail. Unset: read from audit_key_file, generated there once.
    audit_key: str = field(default="", repr=False)
    audit_key_file: str = "var/hemoptysis-cds.audit-key"
    jwt_leeway_seconds: int = 30
    jwt_max_lifetime_seconds: int = 3600
    jwks_cache_seconds: int = 300
    jwks_refresh_interval_seconds: int = 10  # an unknown kid refetches a client's jku at most this often
    log_format: str = "json"  # 'json' lines (production) or 'text'
    # GET /metrics (Prometheus); off: no route and nothing counted. Protected like the audit reads.
    metrics_enabled: bool = True
    # The scenario library the card gallery runs at page load (default: the repository's fixtures/scenarios).
    gallery_dir: str = ""
    # TOML naming the reversal products the site stocks (README "Formulary"); empty: the default formulary
    formulary_file: str = ""
    # The site's FHIR R4 ConceptMap (JSON) from its local codes to the engine's concepts (README "Site
    # terminology"); checked at start: an invalid map stops the service.
    concept_map_file: str = ""

    AUTH_MODES = ("required", "development")

    @property
    def development_auth(self) -> bool:
        if self.auth_mode not in self.AUTH_MODES:
            raise ValueError(f"HEMOPTYSIS_CDS_AUTH_MODE must be one of {', '.join(self.AUTH_MODES)}, not {self.auth_mode!r}")
        return self.auth_mode == "development"

    @property
    def engines_url(self) -> str:
        return (self.engine_base_url or f"{self.public_base_url}/engines").rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        defaults = cls()
        values: dict = {}
        for name, default in defaults.__dict__.items():
            raw = env.get(PREFIX + name.upper())
            if raw is None:
                continue
            if isinstance(default, bool):
                values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[name] = int(raw)
            elif isinstance(default, float):
                values[name] = float(raw)
            elif isinstance(default, tuple):
                values[name] = _list(raw)
            else:
                values[name] = raw.strip()
        settings = replace(defaults, **values)
        if PREFIX + "PUBLIC_BASE_URL" not in env and (settings.host, settings.port) != ("127.0.0.1", 8080):
            settings = replace(settings, public_base_url=f"http://{settings.host}:{settings.port}")
        return replace(settings, public_base_url=settings.public_base_url.rstrip("/"))
