"""What `hemoptysis-order-safety` declares: its hook (order-sign), its words in discovery, its prefetch and its
routing."""
from __future__ import annotations

from ..prefetch_keys import required
from ..service import CdsService
from .routing import evaluate

PREFETCH = {
    "patient": required("Patient/{{context.patientId}}", "the patient the draft orders are for"),
    "conditions": required("Condition?patient={{context.patientId}}", "hemoptysis on record, the reason for the guard"),
}

SERVICE = CdsService(
    id="hemoptysis-order-safety",
    hook="order-sign",
    title="Hemoptysis order safety: antithrombotic and tranexamic acid drafts",
    description=(
        "At signing: warns when an anticoagulant or antiplatelet order is drafted for a patient with active "
        "hemoptysis on record (critical, with a suggestion to delete the draft), and when tranexamic acid is "
        "drafted for a patient with an active pulmonary embolism on record (warning)."
    ),
    usage_requirements=(
        "Needs context.draftOrders (a FHIR R4 Bundle of MedicationRequest drafts) and read access to Patient and "
        "Condition, by prefetch or through fhirServer + fhirAuthorization. Adults only."
    ),
    prefetch=PREFETCH,
    evaluate=evaluate,
)
