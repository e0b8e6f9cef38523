"""The prefetch templates of `massive-hemoptysis`: the codes each asks for come from the input tables (and the
site ConceptMap when one is installed), so that prefetch and logic cannot drift."""
from __future__ import annotations

from cql_equivalents.care_context import context_observation_codes
from cql_equivalents.tables import tables
from cql_equivalents.terminology import active as site_terminology

from ..prefetch_keys import optional, required
from .sections import LABS, PHYSIOLOGY

# Further inputs the prefetch asks for: vitals for NEWS2 / A-a gradient, labs for SOFA / HAS-BLED / reversal.
EXTRA_VITALS = ("diastolic_bp", "temperature", "fio2", "o2_flow", "body_weight")
EXTRA_LABS = ("pao2", "paco2", "creatinine", "bilirubin", "anti_xa_heparin", "anti_xa_drug", "dabigatran_level",
              "pt", "d_dimer")


def _observation_codes(kind: str) -> str:
    """The codes the engine reads, derived from the input tables (so prefetch and logic cannot drift)."""
    specs = tables().observation_inputs
    names = (*PHYSIOLOGY, *EXTRA_VITALS) if kind == "vitals" else (*LABS, *EXTRA_LABS)
    codes: list[str] = []
    for name in names:
        for code in (*specs[name].loinc, *specs[name].panel):
            if code not in codes:
                codes.append(code)
    tokens = [f"http://loinc.org|{code}" for code in codes]
    if kind == "vitals":  # the local hemoptysis-volume code (no LOINC exists, clinical.md A1)
        volume = tables().bleeding["volume"]
        tokens += [f"{volume['local_system']}|{code}" for code in volume["local_codes"]]
        # every flowsheet row the site ConceptMap names (vitals, labs, volume, device rows)
        tokens += [f"{system}|{code}" for system, code in site_terminology().local_codes("observation")]
    else:  # results read as findings (type & screen, ANCA, anti-GBM) that have a LOINC code
        tokens += [f"http://loinc.org|{code}" for code in tables().finding_loinc if code not in codes]
        # pregnancy status and a DNR order (care_context.toml): they change how the escalation is carried out
        tokens += [f"http://loinc.org|{code}" for code in context_observation_codes() if code not in codes]
    return ",".join(dict.fromkeys(tokens))


def prefetch_templates() -> dict[str, str]:
    """The templates, with the codes the installed site ConceptMap names (rebuilt when a map is installed). Each key
    says what happens when its data cannot be had (hooks/prefetch_keys.py): the Patient (age gate: adult doses must
    not reach a child) and the Conditions (hemoptysis is the frame of every card) are required; without any other
    key the cards are still made and say which data are missing."""
    return {
        "patient": required("Patient/{{context.patientId}}", "the age gate: adult thresholds and doses"),
        "conditions": required("Condition?patient={{context.patientId}}",
                               "hemoptysis on record, the frame of every card"),
        "vitals": optional("Observation?patient={{context.patientId}}&code=" + _observation_codes("vitals")
                           + "&_sort=-date&_count=50", "vital signs (SpO2, respiratory rate, blood pressure, heart rate)"),
        "labs": optional("Observation?patient={{context.patientId}}&code=" + _observation_codes("labs")
                         + "&_sort=-date&_count=50", "laboratory results (INR, hemoglobin, platelets, fibrinogen)"),
        # _include brings the Medication a medicationReference points to (otherwise the drug cannot be known)
        "medicationStatements": optional(
            "MedicationStatement?patient={{context.patientId}}&_include=MedicationStatement:medication",
            "medication statements (anticoagulants and antiplatelet agents)"),
        "medicationRequests": optional(
            "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
            "medication orders (anticoagulants and antiplatelet agents)"),
        "medicationAdministrations": optional(
            "MedicationAdministration?patient={{context.patientId}}&_sort=-effective-time&_count=50"
            "&_include=MedicationAdministration:medication",
            "medication administrations (reversal already given)"),
        "procedures": optional("Procedure?patient={{context.patientId}}&_sort=-date&_count=50",
                               "procedures (embolisation, bronchoscopy)"),
        "diagnosticReports": optional("DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=50",
                                      "imaging and bronchoscopy reports (localisation)"),
        "imagingStudies": optional("ImagingStudy?patient={{context.patientId}}&_count=20",
                                   "imaging studies (localisation)"),
        "questionnaireResponses": optional(
            "QuestionnaireResponse?patient={{context.patientId}}&_sort=-authored&_count=20",
            "the hemoptysis intake questionnaire (volume, blood source)"),
        # respiratory support devices (support.toml): the Device each statement points to comes with it
        "deviceUseStatements": optional(
            "DeviceUseStatement?patient={{context.patientId}}&_include=DeviceUseStatement:device",
            "respiratory support devices in use (high-flow oxygen, ventilation)"),
        "deviceRequests": optional("DeviceRequest?patient={{context.patientId}}&_include=DeviceRequest:device",
                                   "respiratory support ordered (high-flow oxygen, ventilation)"),
    }


PREFETCH = prefetch_templates()  # rebuilt by hooks.install_site_terminology
