"""Service `massive-hemoptysis` on patient-view: escalation, antithrombotic reversal and sibling-engine cards.

Clinical logic lives in cql_equivalents/; this module turns its results into CDS Hooks cards.
"""
from __future__ import annotations

from cql_equivalents.care_context import care_context, context_observation_codes, paediatric_airway_emergency
from cql_equivalents.engine import assess
from cql_equivalents.results import Assessment, HaemostaticPlan, Level, PatientReversal, Severity
from cql_equivalents.model import EngineInputs
from cql_equivalents.readers import map_inputs
from cql_equivalents import formulary
from cql_equivalents.patient_reversal import patient_reversal
from cql_equivalents.reversal_due import hold_text, reversal_card_due
from cql_equivalents.tables import tables
from cql_equivalents.terminology import active as site_terminology

from . import answer_guard as guard
from . import card_actions as actions
from . import card_kit as kit
from . import bleeding_cards as cards
from .cause_cards import causes_card
from .engine_cards import card_populations, data_quality_card, population_card
from .haemostasis_card import haemostasis_card
from .prefetch_keys import optional, required
from .reversal_card import reversal_card
from .unreadable_cards import unreadable_bleeding_card
from .service import CdsService, Evaluation

PHYSIOLOGY = ("spo2", "respiratory_rate", "heart_rate", "systolic_bp")
LABS = ("hemoglobin", "inr", "platelets", "fibrinogen", "aptt")
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


PREFETCH = prefetch_templates()

def evaluate(evaluation: Evaluation) -> list[dict]:
    inputs = map_inputs(evaluation.pool, evaluation.now)
    assessment = assess(inputs)
    severity = assessment.severity
    base = evaluation.links.public_base_url
    if severity.level is Level.NO_HEMOPTYSIS:
        # nothing to say unless a bleeding record was sent and could not be read (then it is not excluded)
        unreadable = unreadable_bleeding_card(inputs, base)
        return [actions.attach(unreadable, evaluation, inputs, severity)] if unreadable else []
    if severity.level is Level.NOT_ADULT:
        # adult thresholds, doses and orders must not reach a child: the card declares every order against
        card = cards.not_adult_card(severity, inputs, base, paediatric_airway_emergency(inputs))
        return kit.with_data_not_read(
            [actions.attach(guard.declare(card, cards.not_adult_declares()), evaluation, inputs, severity)], inputs)
    context = care_context(inputs, evaluation.pool)
    populations = [match.key for match in assessment.populations]
    ruled_out = [key for match in assessment.populations for key in match.advises_against]
    rules_against = tuple(assessment.advised_against or ())  # contraindication rules that apply (DIC, HIT...)

    def actionable(card: dict, plan: PatientReversal | None = None, against: tuple[str, ...] = (),
                   recommend: bool = True, haemostasis: HaemostaticPlan | None = None) -> dict:
        guard.declare(card, against)
        return actions.attach(card, evaluation, inputs, severity, plan, [*populations, *context.keys],
                              advised_against=rules_against, haemostasis=haemostasis, recommend=recommend)

    # one patient, one reversal plan (issue 14), cut to what the site's formulary stocks
    plans = [formulary.stocked(plan, evaluation.formulary) for plan in assessment.reversal] \
        if reversal_card_due(severity) else []
    reversal = patient_reversal(inputs, plans)

    def reversal_and_haemostasis() -> list[dict]:
        made = []
        if reversal is not None:
            records = [f"`{use.reference}`" for plan in reversal.plans for use in plan.uses]
            made.append(actionable(reversal_card(reversal, severity, inputs, base, assessment), reversal,
                                   against=tuple(_rules_against(assessment, *records))))
        if assessment.haemostasis is not None:
            made.append(actionable(haemostasis_card(assessment.haemostasis, severity, inputs, base, assessment),
                                   against=tuple(assessment.haemostasis.advised_against),
                                   haemostasis=assessment.haemostasis))
        return made

    if severity.level is Level.ROUTED_AWAY:
        # the blood's source is managed elsewhere (GI / ENT): one card, info unless there is compromise. With
        # compromise the bleeding is life-threatening whatever its source: its reversal comes too (ACC 2020)
        answer = [actionable(_frame_card(severity, inputs, base, assessment))]
        if severity.triggers:
            answer += reversal_and_haemostasis()
        return kit.tidy(kit.with_data_not_read(answer, inputs))
    routed = severity.level is Level.SOURCE_UNCLEAR
    if routed:
        answer = [actionable(_frame_card(severity, inputs, base, assessment))]
    else:
        # the bleeding card's definitive-control step describes every population matched, so it declares theirs
        answer = [actionable(cards.bleeding_card(severity, inputs, base, assessment, context),
                             against=(*ruled_out, *_rules_against(assessment)),
                             recommend=not context.limits_escalation)]
    answer += reversal_and_haemostasis()
    if not routed:
        causes = causes_card(assessment, evaluation)
        if causes:
            answer.append(actionable(causes))
        answer += [actionable(population_card(match, assessment, base), against=(*match.advises_against,))
                   for match in card_populations(assessment)]
    stale = data_quality_card(assessment, base)
    if stale:
        answer.append(stale)
    return kit.tidy(kit.with_data_not_read(answer, inputs))


def _rules_against(assessment: Assessment, *because: str) -> list[str]:
    """Orders ruled out by the contraindication rules a card shows (all of them, or those whose reasons
    mention one of `because`)."""
    return [key for rule in assessment.rules
            if not because or any(item in " ".join(rule.because) for item in because) for key in rule.advises_against]


# ------------------------------------------------------------------------------------------ FRAME gate

def _bleeding_text(severity: Severity) -> str:
    return cards.bleeding_text(severity)


def _trigger_short(severity: Severity) -> str:
    parts = []
    for trigger in severity.triggers:
        if trigger.key == "shock_index":
            parts.append(f"shock index {trigger.value:g}")
        elif trigger.kind in ("volume", "support"):
            parts.append(trigger.label)
        else:
            parts.append(f"{trigger.evidence[0].label} {kit.observed_text(trigger.evidence[0])}")
    return ", ".join(dict.fromkeys(parts))


def _frame_card(severity: Severity, inputs: EngineInputs, base: str, assessment: Assessment | None = None) -> dict:
    """FRAME gate (seed 004 phase 1): another source of blood routes away instead of escalating."""
    frame = severity.frame
    compromise = bool(severity.triggers)
    routes = "; ".join(frame.routes) or "the pathway of the blood's source"
    alternatives = sorted({e.points_to for e in frame.alternatives})
    if severity.level is Level.ROUTED_AWAY:
        route = frame.routes[0].split(" (")[0]
        summary = cards.fit(["Route to {route}: the blood points to {alt}, not hemoptysis", "Route to {route}: not hemoptysis",
                             "Route to {team}: not hemoptysis", "Route to the pathway of the source: not hemoptysis"],
                            route=route, team=route.split(" of ")[0], alt=" / ".join(alternatives))
        topic = "hemoptysis-frame-route-away"
        headline = (f"**FRAME gate: not true hemoptysis.** The record points to {' / '.join(alternatives)}"
                    + (" (decided by the intake questionnaire)" if frame.decided_by_answer else "")
                    + f". Route: {routes}. The massive-hemoptysis escalation (bronchial artery embolisation) does not "
                    "apply; misclassification sends the patient to the wrong pathway (seed 004 phase 1; Earwood 2015, "
                    "PMID 25955625).")
    else:
        summary = cards.fit(["Confirm the blood's source now: hemoptysis or {alt}?", "Confirm the blood's source now"],
                            alt=" / ".join(alternatives))
        topic = "hemoptysis-source-unclear"
        headline = ("**FRAME gate: the source of the blood is unclear.** The record holds features of true hemoptysis "
                    f"and of {' / '.join(alternatives)}. Confirm at the bedside (cough vs vomiting, frothy bright red vs "
                    "dark / coffee-ground, nasopharyngeal inspection) and record it in the intake questionnaire "
                    "(item blood-source) before the hemoptysis pathway escalates (Earwood 2015, PMID 25955625).")
    evidence = "\n".join(f"- {e.label} -> {e.points_to} (`{e.reference}`)" for e in (*frame.hemoptysis, *frame.alternatives))
    compromise_text = ""
    if compromise:
        compromise_text = ("**Physiologic compromise whatever the source**: " + _trigger_short(severity) + ". Protect the "
                           "airway, oxygen, resuscitate, and call the team of the source now.")
    # no reversal card: hold each antithrombotic on board, and say when reversal would be due (ACC 2020)
    agents_text = "" if reversal_card_due(severity) else hold_text(inputs)
    # routed away: an info card (the service is not the pathway); unclear source: a warning to confirm it
    indicator = "critical" if compromise else "info" if severity.level is Level.ROUTED_AWAY else "warning"
    detail = kit.join(headline, "**Evidence read**\n\n" + evidence, compromise_text, agents_text,
                      kit.values_section(inputs, PHYSIOLOGY), kit.records_not_used(inputs))
    return kit.card(summary, indicator, detail, kit.source(base, topic))




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
