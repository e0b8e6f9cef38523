"""The one rule for "may this fhirServer be used": a FHIR base is usable when it is one of the bases allowed for
the caller, compared without a trailing slash. An authenticated client may name only the bases registered for it
(clients file, `fhir_servers`); in development mode, with no client, only HEMOPTYSIS_CDS_FHIR_ALLOWED_SERVERS."""
from __future__ import annotations

from collections.abc import Iterable

from server.config import Settings
from server.security.caller import Caller


def allowed_fhir_servers(caller: Caller, settings: Settings) -> tuple[str, ...]:
    """The FHIR bases this caller's calls may name and the service may fetch from."""
    return settings.fhir_allowed_servers if caller.development else caller.fhir_servers()


def fhir_server_usable(fhir_server: str, allowed: Iterable[str]) -> bool:
    return fhir_server.rstrip("/") in {base.rstrip("/") for base in allowed}
