"""Which patient a FHIR resource is about, and resources grouped by patient (request-from-bundle)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_PATIENT_MEMBERS = ("subject", "patient", "beneficiary")


def patient_id_of_reference(reference: Any) -> str | None:
    """Patient/123, http://server/fhir/Patient/123/_history/2 -> 123."""
    if not isinstance(reference, str) or "Patient/" not in reference:
        return None
    tail = reference.rsplit("Patient/", 1)[1]
    return tail.split("/")[0] or None


def patient_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") if isinstance(resource.get("id"), str) else None
    for member in _PATIENT_MEMBERS:
        target = resource.get(member)
        if isinstance(target, Mapping):
            found = patient_id_of_reference(target.get("reference"))
            if found:
                return found
    return None


def by_patient(resources: Iterable[dict]) -> dict[str, list[dict]]:
    """Resources grouped by the patient they are about (the Patient itself included). Medication resources, which
    are about no patient, go with every patient, so a template that asks for them (by _include or by type) finds
    them; other patient-less resources (Organization, Practitioner, ...) are left out."""
    groups: dict[str, list[dict]] = {}
    shared = []
    for resource in resources:
        patient = patient_of(resource)
        if patient is None:
            shared.append(resource)
        else:
            groups.setdefault(patient, []).append(resource)
    return {patient: items + [r for r in shared if r.get("resourceType") == "Medication"]
            for patient, items in groups.items()}
