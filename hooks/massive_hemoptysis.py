"""Service `massive-hemoptysis` on patient-view: escalation, antithrombotic reversal and sibling-engine cards.

Clinical logic lives in cql_equivalents/; this module turns its results into CDS Hooks cards.
"""
from __future__ import annotations

from cql_equivalents.care_context import care_context, context_observation_codes, paediatric_airway_emergency
from cql_equivalents.engine import Assessment, assess
from cql_equivalents.inputs import EngineInputs, map_inputs
from cql_equivalents.reversal import ReversalPlan, need_label
from cql_equivalents.severity import Level, Severity
from cql_equivalents.tables import tables
from cql_equivalents.terminology import active as site_terminology

from . import answer_guard as guard
from . import card_actions as actions
from . import card_kit as kit
from . import bleeding_cards as cards
from .cause_cards import causes_card
from .engine_cards import card_populations, data_quality_card, population_card, rules_text
from .service import CdsService, Evaluation

PHYSIOLOGY = ("spo2", "respiratory_rate", "heart_rate", "systolic_bp")
LABS = ("hemoglobin", "inr", "platelets", "fibrinogen", "aptt")
# Further inputs the prefetch asks for: vitals for NEWS2 / A-a gradient, labs for SOFA / HAS-BLED / reversal.
EXTRA_VITALS = ("diastolic_bp", "temperature", "fio2", "o2_flow", "body_weight")
EXTRA_LABS = ("pao2", "paco2", "creatinine", "bilirubin", "anti_xa_heparin", "anti_xa_drug", "dabigatran_level")


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
    """The templates, with the codes the installed site ConceptMap names (rebuilt when a map is installed)."""
    return {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "vitals": "Observation?patient={{context.patientId}}&code=" + _observation_codes("vitals") + "&_sort=-date&_count=50",
        "labs": "Observation?patient={{context.patientId}}&code=" + _observation_codes("labs") + "&_sort=-date&_count=50",
        # _include brings the Medication a medicationReference points to (otherwise the drug cannot be known)
        "medicationStatements": "MedicationStatement?patient={{context.patientId}}&_include=MedicationStatement:medication",
        "medicationRequests": "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
        "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}&_sort=-effective-time&_count=50"
                                     "&_include=MedicationAdministration:medication",
        "procedures": "Procedure?patient={{context.patientId}}&_sort=-date&_count=50",
        "diagnosticReports": "DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=50",
        "imagingStudies": "ImagingStudy?patient={{context.patientId}}&_count=20",
        "questionnaireResponses": "QuestionnaireResponse?patient={{context.patientId}}&_sort=-authored&_count=20",
        # respiratory support devices (support.toml): the Device each statement points to comes with it
        "deviceUseStatements": "DeviceUseStatement?patient={{context.patientId}}&_include=DeviceUseStatement:device",
        "deviceRequests": "DeviceRequest?patient={{context.patientId}}&_include=DeviceRequest:device",
    }


PREFETCH = prefetch_templates()

def evaluate(evaluation: Evaluation) -> list[dict]:
    inputs = map_inputs(evaluation.pool, evaluation.now)
    assessment = assess(inputs)
    severity = assessment.severity
    if severity.level is Level.NO_HEMOPTYSIS:
        return []  # nothing to say: this service speaks only when there is bleeding to manage
    base = evaluation.links.public_base_url
    if severity.level is Level.NOT_ADULT:
        # adult thresholds, doses and orders must not reach a child: the card declares every order against
        card = cards.not_adult_card(severity, inputs, base, paediatric_airway_emergency(inputs))
        return [actions.attach(guard.declare(card, cards.not_adult_declares()), evaluation, inputs, severity)]
    context = care_context(inputs, evaluation.pool)
    populations = [match.key for match in assessment.populations]
    ruled_out = [key for match in assessment.populations for key in match.advises_against]

    def actionable(card: dict, plan: ReversalPlan | None = None, against: tuple[str, ...] = (),
                   recommend: bool = True) -> dict:
        guard.declare(card, against)
        return actions.attach(card, evaluation, inputs, severity, plan, [*populations, *context.keys], recommend)

    if severity.level is Level.ROUTED_AWAY:
        # the blood's source is managed elsewhere (GI / ENT): one card, info unless there is compromise
        return [actionable(_frame_card(severity, inputs, base, assessment))]
    routed = severity.level is Level.SOURCE_UNCLEAR
    if routed:
        answer = [actionable(_frame_card(severity, inputs, base, assessment))]
    else:
        # the bleeding card's definitive-control step describes every population matched, so it declares theirs
        answer = [actionable(cards.bleeding_card(severity, inputs, base, assessment, context),
                             against=(*ruled_out, *_rules_against(assessment)),
                             recommend=not context.limits_escalation)]
    answer += [actionable(_reversal_card(plan, severity, inputs, base, assessment), plan,
                          against=tuple(_rules_against(assessment, *(f"`{use.reference}`" for use in plan.uses))))
               for plan in assessment.reversal]
    if not routed:
        causes = causes_card(assessment, evaluation)
        if causes:
            answer.append(actionable(causes))
        answer += [actionable(population_card(match, assessment, base), against=(*match.advises_against,))
                   for match in card_populations(assessment)]
    stale = data_quality_card(assessment, base)
    if stale:
        answer.append(stale)
    return kit.tidy(answer)


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
        summary = cards.fit(["Route to {route}: the blood points to {alt}, not hemoptysis", "Route to {route}: not hemoptysis"],
                            route=frame.routes[0].split(" (")[0], alt=" / ".join(alternatives))
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
    agents = sorted({plan.agent for plan in assessment.reversal}) if assessment else []
    agents_text = (f"**On {', '.join(agents)}**: hold it; the pathway of the source decides on reversal."
                   if agents and severity.level is Level.ROUTED_AWAY else "")
    # routed away: an info card (the service is not the pathway); unclear source: a warning to confirm it
    indicator = "critical" if compromise else "info" if severity.level is Level.ROUTED_AWAY else "warning"
    detail = kit.join(headline, "**Evidence read**\n\n" + evidence, compromise_text, agents_text,
                      kit.values_section(inputs, PHYSIOLOGY), kit.records_not_used(inputs))
    return kit.card(summary, indicator, detail, kit.source(base, topic))


# ------------------------------------------------------------------------------------------ reversal cards

def _lab_text(plan: ReversalPlan, inputs: EngineInputs | None = None) -> str:
    if plan.lab is None:
        spec = tables().reversal_classes[plan.drug_class]
        stale = inputs.stale.get(spec["lab"]) if inputs else None
        if stale:
            return (f"stale: {kit.observed_text(stale)} at {kit.when(stale.at)} (`{stale.reference}`), not used as "
                    "current; obtain now")
        return "not on record"
    return f"{kit.observed_text(plan.lab)} (`{plan.lab.reference}`, {kit.when(plan.lab.at)})"


def _reversal_card(plan: ReversalPlan, severity: Severity, inputs: EngineInputs, base: str,
                   assessment: Assessment | None = None) -> dict:
    assessment = assessment or assess(inputs)
    spec = tables().reversal_classes[plan.drug_class]
    lab_short = f" ({plan.lab.label} {kit.observed_text(plan.lab)})" if plan.lab else ""
    massive = severity.level is Level.MASSIVE
    # the FRAME gate may have routed the blood elsewhere: then it is "bleeding", not "hemoptysis"
    bleeding = "bleeding" if severity.level in (Level.ROUTED_AWAY, Level.SOURCE_UNCLEAR) else "hemoptysis"
    # action first, <= 80 characters: the first variant that fits
    if massive:
        summary = cards.fit(["Reverse {agent} now: {what}{lab}", "Reverse {agent} now: {what}",
                             "Reverse {agent} now: {first}", "Reverse {agent} now"],
                            agent=plan.agent, what=spec["summary"], lab=lab_short, first=spec["summary"].split(";")[0])
    else:
        summary = cards.fit(["Hold {agent}{lab}; if {bleeding} turns life-threatening: {what}",
                             "Hold {agent}; if {bleeding} turns life-threatening: {what}",
                             "Hold {agent}; if {bleeding} turns life-threatening: {first}",
                             "Hold {agent}; reverse if {bleeding} turns life-threatening"],
                            agent=plan.agent, what=spec["summary"], lab=lab_short, bleeding=bleeding,
                            first=spec["summary"].split(";")[0])
    uses = "\n".join(
        f"- {kit.plain(use.text)} (`{use.reference}`, {use.status}, {kit.when(use.at)}; matched by {use.matched_by})"
        for use in plan.uses)
    steps = "\n".join(
        f"{index}. **{line.agent}**: {line.dose}" + (f". {line.note}" if line.note else "")
        for index, line in enumerate(plan.steps, start=1))
    needs = sorted({need for line in plan.steps for need in line.needs})
    when_text = ("**Massive hemoptysis is life-threatening bleeding: reverse now** (ACC 2020 ECDP: a reversal agent "
                 "for life-threatening bleeding).") if massive else (
        "**When to reverse** (ACC 2020 ECDP): stop the drug; give a reversal agent if bleeding becomes "
        "life-threatening, or if major bleeding (haemodynamic instability, Hb drop >= 2 g/dL, >= 2 units RBC) "
        "does not resolve.")
    agent_rules = tuple(r.key for r in assessment.rules if any(f"`{use.reference}`" in " ".join(r.because) for use in plan.uses)
                        or r.intervention in ("4F-PCC", "4F-PCC / andexanet"))
    # do now -> why (the drug on record, its lab, the values used) -> what is missing -> sources
    reversal_names = ("inr", "aptt", "platelets", "fibrinogen", "hemoglobin", "body_weight")
    missing_parts = [("Obtain to complete the dose: " + ", ".join(need_label(n) for n in needs) + ".") if needs else "",
                     kit.missing_line(inputs, reversal_names)]
    detail = kit.join(
        "**Do now**\n\n" + when_text + "\n\n" + steps,
        f"**Why**\n\nActive {plan.class_label}:\n\n{uses}\n\nLab that tells its effect: {plan.lab_label}. "
        f"Value: {_lab_text(plan, inputs)}." + (f" {plan.lab_note}." if plan.lab_note else ""),
        rules_text(assessment, only=agent_rules) if agent_rules else "",
        kit.values_table(inputs, reversal_names),
        ("**What is missing**\n\n" + "\n\n".join(part for part in missing_parts if part))
        if any(missing_parts) else "",
        cards.sources("ACC 2020 Expert Consensus Decision Pathway on bleeding on oral anticoagulants (Tomaselli, "
                      "JACC 2020)", *(line.source for line in plan.steps)),
    )
    card = kit.card(summary, "critical" if massive else "warning", detail, kit.source(base, "antithrombotic-reversal"))
    # a rule this card shows (e.g. 4F-PCC contraindicated in HIT) rules its order out, on this card and answer-wide
    return guard.declare(card, [key for rule in assessment.rules if rule.key in agent_rules for key in rule.advises_against])


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
