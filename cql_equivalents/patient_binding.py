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
# The clinical resource types read here, all of which name their patient in `subject` (FHIR R4). One of these
# naming no patient cannot be tied to this one (a FHIR server ignoring `?patient=` returns such records too), so it
# is not used: "never the wrong patient" outweighs one record lost, and the record is named on the cards.
MUST_NAME_THEIR_PATIENT = frozenset({
    "Observation", "Condition", "MedicationStatement", "MedicationRequest", "MedicationAdministration", "Procedure",
    "DiagnosticReport", "ImagingStudy", "QuestionnaireResponse", "DeviceUseStatement", "DeviceRequest"})
# Patient/123, Patient/123/_history/2, and the same after an absolute base (http://server/fhir/Patient/123)
_PATIENT_REFERENCE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://[^?#]*/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/?#]+)?$",
                                re.IGNORECASE)


_NAMED: dict[str, str | None] = {}  # reference -> patient id: a chart repeats one reference thousands of times
_NAMED_MAX = 4096


def referenced_patient(reference: Any) -> str | None:
    """The patient id a literal reference names, or None when it names no Patient (or is not a reference)."""
    if type(reference) is not str:
        return None
    if reference in _NAMED:
        return _NAMED[reference]
    match = _PATIENT_REFERENCE.match(reference)
    found = match.group(1) if match else None
    if len(_NAMED) >= _NAMED_MAX:
        _NAMED.clear()
    _NAMED[reference] = found
    return found


def foreign_reason(resource: Mapping[str, Any], patient_id: str, *, must_name_patient: bool = True) -> str | None:
    """Why this resource cannot be used for `patient_id`, or None when nothing says it is about someone else.

    A resource that is about no patient (a Medication, an included Organization) is kept; a clinical record that
    names no patient is not (MUST_NAME_THEIR_PATIENT), unless the caller knows whose it is (`must_name_patient`
    False: an order-sign draft is drafted in this patient's chart, so only a draft naming someone else is out)."""
    if resource.get("resourceType") == "Patient":
        found = resource.get("id")
        if type(found) is not str:
            return None  # no id at all is invalid FHIR, which validation rejects and names; not another patient
        return None if found == patient_id else "a Patient resource with another id"
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
    if must_name_patient and resource.get("resourceType") in MUST_NAME_THEIR_PATIENT:
        return "it names no patient (no subject), so it cannot be tied to this patient"
    return None


def _kind(reference: str) -> str:
    """What a non-Patient reference points at, without echoing it (it may carry an identifier)."""
    if reference.startswith("#"):
        return "a contained resource"
    if reference.startswith("urn:"):
        return "an unresolved urn reference"
    head = reference.rstrip("/").split("/")
    return f"a {head[-2]}" if len(head) >= 2 and head[-2].isalpha() else "an unrecognised reference"
