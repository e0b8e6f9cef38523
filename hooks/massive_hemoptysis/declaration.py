"""What `massive-hemoptysis` declares: its hook, its words in discovery, its prefetch and its routing."""
from __future__ import annotations

from ..service import CdsService
from .prefetch import PREFETCH
from .routing import evaluate

SERVICE = CdsService(
    id="massive-hemoptysis",
    hook="patient-view",
    title="Massive hemoptysis: escalation, antithrombotic reversal, underlying cause",
    description=(
        "For adults with hemoptysis on record: checks the blood's source first (hemoptysis vs hematemesis vs "
        "pseudohemoptysis), classifies massive vs non-massive by physiology (SpO2, respiratory rate, blood pressure, "
        "shock index) then by volume, raises severity for terrain and cause, gives the airway-first escalation or the "
        "first-line work-up, the special-population path (DAH/vasculitis, CF/bronchiectasis, post-TB/mycetoma, "
        "malignancy, iatrogenic pulmonary-artery rupture), the reversal of any active anticoagulant or antiplatelet "
        "agent with its lab and dose, the engine's phase report with NEWS2 / SOFA / HAS-BLED, and links to the engine "
        "of the underlying cause."
    ),
    usage_requirements=(
        "Needs read access to Patient, Condition, Observation, MedicationStatement, MedicationRequest, "
        "MedicationAdministration, Procedure, DiagnosticReport, ImagingStudy and QuestionnaireResponse, by prefetch or through "
        "fhirServer + fhirAuthorization. Hemoptysis volume uses the local code "
        "urn:hemoptysis-cds:CodeSystem:engine-inputs|hemoptysis-volume (no LOINC exists) or the intake questionnaire "
        "urn:hemoptysis-cds:Questionnaire:hemoptysis-intake (docs/engine.md). Adults only. Cards are decision support; "
        "they do not replace bedside assessment."
    ),
    prefetch=PREFETCH,
    evaluate=evaluate,
)
