"""Which patient a FHIR resource is about, so that another patient's records never become this patient's cards.

Nothing in a prefetch value or a FHIR server's answer guarantees it is about `context.patientId`: a client may
fill a key from the wrong chart, a FHIR server may ignore `?patient=`, a test client may send a random patient id.
So every resource whose `subject` / `patient` points elsewhere (another Patient, a Group, a reference that cannot
be tied to this patient) is not used and is named; a Patient resource with another id makes the whole call
untrustworthy (the caller answers 412).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The elements by which a patient-compartment resource names its patient (FHIR R4 compartment definition, the
# resource types this service reads: Observation, Condition, Medication*, Procedure, DiagnosticReport,
# ImagingStudy, QuestionnaireResponse use `subject`; AllergyIntolerance, Immunization and others use `patient`).
PATIENT_MEMBERS = ("subject", "patient")
# Patient/123, Patient/123/_history/2, and the same after an absolute base (http://server/fhir/Patient/123)
_PATIENT_REFERENCE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://[^?#]*/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/?#]+)?$",
                                re.IGNORECASE)


def referenced_patient(reference: Any) -> str | None:
    """The patient id a literal reference names, or None when it names no Patient (or is not a reference)."""
    if type(reference) is not str:
        return None
    match = _PATIENT_REFERENCE.match(reference)
    return match.group(1) if match else None


def foreign_reason(resource: Mapping[str, Any], patient_id: str) -> str | None:
    """Why this resource cannot be used for `patient_id`, or None when nothing says it is about someone else.

    A resource naming no patient at all (a Medication, an included Organization) is about no one and is kept."""
    if resource.get("resourceType") == "Patient":
        return None if resource.get("id") == patient_id else "a Patient resource with another id"
    for member in PATIENT_MEMBERS:
        if member not in resource:
            continue
        target = resource[member]
        if type(target) is not dict or ("reference" in target and type(target["reference"]) is not str):
            return None  # not a Reference at all: invalid FHIR, which validation rejects and names
        reference = target.get("reference")
        named = referenced_patient(reference)
        if named == patient_id:
            return None
        if named is not None:
            return f"its {member} is another patient"
        if type(reference) is str:
            return f"its {member} is not a Patient of this call ({_kind(reference)})"
        return f"its {member} cannot be tied to this patient (no literal Patient reference)"
    return None


def _kind(reference: str) -> str:
    """What a non-Patient reference points at, without echoing it (it may carry an identifier)."""
    if reference.startswith("#"):
        return "a contained resource"
    if reference.startswith("urn:"):
        return "an unresolved urn reference"
    head = reference.rstrip("/").split("/")
    return f"a {head[-2]}" if len(head) >= 2 and head[-2].isalpha() else "an unrecognised reference"
