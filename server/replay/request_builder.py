"""A CDS Hooks request for one patient from its resources: the prefetch templates of the services on the hook,
filled by the local search, the context, and the `_fixture` member (title, reference instant) replay understands."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from hooks.service import CdsService
from server.replay.bundle_reading import BundleError
from server.replay.local_search import moment_of, prefetch_for
from server.replay.timeshift import format_instant, parse_reference_instant

SUPPORTED_HOOKS = ("patient-view",)
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
DEFAULT_USER = "Practitioner/request-from-bundle"


def templates_for(hook: str, services: Iterable[CdsService], service_id: str | None = None) -> dict[str, str]:
    chosen = [s for s in services if s.hook == hook and (service_id is None or s.id == service_id)]
    if not chosen:
        raise BundleError(f"no service answers hook '{hook}'" + (f" with id '{service_id}'" if service_id else ""))
    templates: dict[str, str] = {}
    for service in chosen:
        for key, template in service.prefetch.items():
            if templates.get(key, template) != template:
                raise BundleError(f"services on '{hook}' define prefetch '{key}' differently; pick one with --service")
            templates[key] = template
    return templates


def reference_instant(choice: str, resources: list[dict], now: datetime) -> str | None:
    """now: dates move with the time elapsed since the build; latest: the newest record becomes 'now' on
    replay; none: dates are sent as they are; or an explicit ISO dateTime."""
    if choice == "none":
        return None
    if choice == "now":
        return format_instant(now)
    if choice == "latest":
        # future dates included: a de-identified data set (the MIMIC-IV demo lies in the 2110s) is all "future",
        # and its newest record is exactly the "now" replay must shift it to
        moments = [m for m in (moment_of(r) for r in resources) if m is not None]
        return format_instant(max(moments)) if moments else None
    try:
        return format_instant(parse_reference_instant(choice))
    except ValueError as error:
        raise BundleError(f"--reference-instant: {error} (or use now, latest, none)") from None


def build_request(resources: list[dict], patient_id: str, *, hook: str, services: Iterable[CdsService],
                  service_id: str | None = None, user_id: str = DEFAULT_USER, encounter_id: str | None = None,
                  instant: str | None = None, title: str = "") -> tuple[dict, list[str]]:
    """A hook request for one patient, with a `_fixture` member (title, reference instant) replay understands.
    Returns the request and the prefetch keys that were left out, with why."""
    if hook not in SUPPORTED_HOOKS:
        raise BundleError(f"hook '{hook}' is not supported; supported: {', '.join(SUPPORTED_HOOKS)}")
    if not _FHIR_ID.match(patient_id):
        raise BundleError(f"patient id '{patient_id[:80]}' is not a FHIR id ([A-Za-z0-9-.], 1-64 characters); "
                          "a service would refuse it as context.patientId")
    context = {"userId": user_id, "patientId": patient_id}
    if encounter_id:
        context["encounterId"] = encounter_id
    values, left_out = prefetch_for(templates_for(hook, services, service_id), context, resources)
    request: dict[str, Any] = {}
    fixture = {"title": title or f"patient {patient_id}", "builtBy": "hemoptysis-cds request-from-bundle"}
    if instant:
        fixture["referenceInstant"] = instant
    request["_fixture"] = fixture
    request.update({"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": values})
    return request, left_out
